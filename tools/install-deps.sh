#!/bin/sh
# Install Debian 12 packages, only those missing.  Runs apt-get as root, or
# through sudo.
#   tools/install-deps.sh [--tag TAG] [--optional NOTE] [PKG...]
# With no PKG: the packages kvmstats needs to build, test and run.
# Other lists (tools/kvm-guest/install-deps.sh, bench/install-deps.sh) call
# this script with their own.
#   --tag TAG        prefix of the messages (default install-deps)
#   --optional NOTE  the packages are not required: without root or sudo,
#                    say so followed by NOTE, and exit 0; a failed install
#                    is reported and exits 0 too
# Exits 0 when nothing is missing or all is installed, 1 without root or
# sudo, 2 when apt-get fails.
set -eu

tag=install-deps
optional=""
note=""
while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=$2; shift 2 ;;
	--optional) optional=1; note=$2; shift 2 ;;
	--) shift; break ;;
	-*) echo "$tag: unknown option $1" >&2; exit 1 ;;
	*) break ;;
	esac
done

if [ $# -eq 0 ]; then
	# gdb: the CLI test that truncates a segment between attach and read.
	# g++: public headers compile as C++.  abigail-tools: the ABI baseline.
	# mandoc, groff-base, man-db: man pages linted and found.  systemd:
	# systemd-analyze verify.  debhelper, dpkg-dev, fakeroot, lintian: the
	# Debian packages.  libmicrohttpd-dev: the exporter's HTTP server.
	# prometheus (promtool too), python3-prometheus-client (a strict
	# OpenMetrics parser): the exporter's tests.  libncurses-dev: kvmstats
	# top; tmux: its tests drive it in a terminal.  libjansson-dev: parsing
	# QMP, both QEMU's replies (vCPU names) and the commands kvmstats qmp
	# serves.
	set -- make gcc g++ clang libc6-dev linux-libc-dev pkg-config liburcu-dev libmicrohttpd-dev \
		libcmocka-dev valgrind libclang-rt-14-dev gdb abigail-tools mandoc groff-base \
		man-db systemd debhelper dpkg-dev fakeroot lintian prometheus python3-prometheus-client \
		libncurses-dev tmux libjansson-dev
fi

missing=""
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "$tag: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
elif [ -n "$optional" ]; then
	echo "$tag: need root (or sudo) to install:$missing;" "$note" >&2
	exit 0
else
	echo "$tag: need root (or sudo) to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
# A fresh machine's apt-daily may hold the dpkg lock for a while: wait for it.
lock="-o DPkg::Lock::Timeout=600"
# shellcheck disable=SC2086
if ! { $SUDO apt-get $lock update -qq &&
       $SUDO apt-get $lock install -y -qq --no-install-recommends $missing; }; then
	echo "$tag: could not install:$missing" >&2
	[ -n "$optional" ] && exit 0
	exit 2
fi
