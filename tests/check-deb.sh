#!/bin/sh
# SPDX-License-Identifier: MIT
# The Debian packages as a user gets them: install the ones `make deb`
# built with dpkg -i, then the installed kvmstats runs, its manual is
# found, systemd-analyze verifies the installed unit, the service's user
# and runtime directory exist, a reader and a publisher written outside
# the tree build with pkg-config against the installed libraries and the
# reader reads a live segment of the installed kvmstatsd, and the shim
# loads into a program; then purge them, and leave the machine as it was
# (the service's user and group too, if they were not there before).
#   tests/check-deb.sh BUILD VERSION
# Needs root (CI runs as root); says so and skips otherwise.
set -u
build=$1
version=$2
pkgs="kvmstats libkvmstats1 libkvmstats-publisher1 libkvmstats-dev kvmstats-preload prometheus-kvmstats-exporter"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg --print-architecture)
if [ "$(id -u)" -ne 0 ]; then
	echo "check-deb: skipped: installing packages needs root (CI runs as root)"
	exit 0
fi
for p in $pkgs; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok"; then
		echo "check-deb: $p is installed on this machine already: not touching it" \
			"(dpkg --purge $p, then run again)"
		exit 1
	fi
done
# dpkg itself does not wait for its lock (1.21 has no lock timeout): if
# apt or another dpkg holds it, wait up to 600 s as the project's own apt
# calls do (tools/install-deps.sh), then give up with dpkg's message.
#   dpkg_waiting LOG ARGS...
dpkg_waiting() {
	log=$1
	shift
	waited=0
	while :; do
		dpkg "$@" >"$log" 2>&1 && return 0
		if ! grep -q 'locked by another process' "$log" || [ $waited -ge 600 ]; then
			return 1
		fi
		[ $waited -eq 0 ] && echo "check-deb: the dpkg lock is held: waiting up to 600 s"
		sleep 2
		waited=$((waited + 2))
	done
}
fail=0
bad() {
	echo "check-deb: $*"
	fail=1
}
had_user=$(getent passwd kvmstats >/dev/null && echo 1)
had_group=$(getent group kvmstats >/dev/null && echo 1)
had_run=$([ -e /run/kvmstats ] && echo 1)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-deb.XXXXXX")
daemon=""
purge() {
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	daemon=""
	# shellcheck disable=SC2086
	dpkg_waiting "$tmp/purge.log" --purge $pkgs || { bad "dpkg --purge failed:"; cat "$tmp/purge.log"; }
	[ -n "$had_user" ] || userdel kvmstats 2>/dev/null
	[ -n "$had_group" ] || groupdel kvmstats 2>/dev/null
	[ -n "$had_run" ] || rm -rf /run/kvmstats
}
trap 'purge; rm -rf "$tmp"' EXIT INT TERM

debs=""
for p in $pkgs; do
	debs="$debs $build/deb/${p}_${version}_$arch.deb"
done
# shellcheck disable=SC2086
if ! dpkg_waiting "$tmp/install.log" -i $debs; then
	bad "dpkg -i failed:"
	sed 's/^/  /' "$tmp/install.log"
	exit 1
fi
echo "ok   dpkg -i: $pkgs"

out=$(/usr/bin/kvmstats --version 2>&1)
case $out in
*"$version"*) echo "ok   kvmstats --version: $out" ;;
*) bad "/usr/bin/kvmstats --version says \"$out\", not $version" ;;
esac
# Minimal images tell dpkg to drop manuals (path-exclude): then there is none to find.
if grep -qs '^path-exclude[= ]*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
	echo "note check-deb: this machine's dpkg drops /usr/share/man (path-exclude in" \
		"/etc/dpkg/dpkg.cfg.d): man -w not tried"
else
	for page in "1 kvmstats" "1 kvmstats-exporter" "8 kvmstatsd" "8 kvmstats-preload" \
		"3 libkvmstats" "3 libkvmstats-publisher"; do
		# shellcheck disable=SC2086
		man -w $page >/dev/null 2>&1 || bad "man -w $page finds no page"
	done
	[ $fail -eq 0 ] && echo "ok   man -w finds kvmstats(1), kvmstats-exporter(1), kvmstatsd(8), kvmstats-preload(8)," \
		"libkvmstats(3), libkvmstats-publisher(3)"
fi
for unit in kvmstatsd.service kvmstats-exporter.service; do
	out=$(systemd-analyze verify /lib/systemd/system/$unit 2>&1)
	if [ $? -ne 0 ] || [ -n "$out" ]; then
		bad "systemd-analyze verify of the installed $unit:"
		echo "$out" | sed 's/^/  /'
	else
		echo "ok   systemd-analyze verify /lib/systemd/system/$unit: no complaint"
	fi
done
getent passwd kvmstats >/dev/null || bad "the package made no user kvmstats (sysusers.d)"
[ -d /run/kvmstats ] || bad "the package made no /run/kvmstats (tmpfiles.d)"

# Outside the tree, against what is installed, and nothing else.
cp tests/dist/external_reader.c tests/dist/external_publisher.c "$tmp/"
cd "$tmp" || exit 1
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Wextra -Werror -o reader external_reader.c \
	$(pkg-config --cflags --libs kvmstats) >cc.log 2>&1 &&
   cc -std=c11 -Wall -Wextra -Werror -o publisher external_publisher.c \
	$(pkg-config --cflags --libs kvmstats-publisher) >>cc.log 2>&1; then
	echo "ok   built outside the tree: cc \$(pkg-config --cflags --libs kvmstats) ..."
else
	bad "external programs do not build against the packages:"
	sed 's/^/  /' cc.log
fi
# The library the loader picks is the package's (/lib may be /usr/lib's link).
lib=$(ldd ./reader | sed -n 's/.*libkvmstats.so.1 => \([^ ]*\).*/\1/p')
[ -n "$lib" ] && [ "$(readlink -f "$lib")" = "$(readlink -f "/usr/lib/$multiarch/libkvmstats.so.1")" ] ||
	bad "the external reader does not use the installed libkvmstats.so.1 ($(ldd ./reader))"
# Segments as the service makes them: group kvmstats may read them (and
# so the exporter below, as a member of it, not as their owner).
mkdir shm
chmod 0711 "$tmp"
chgrp kvmstats shm && chmod 0750 shm
/usr/sbin/kvmstatsd --simulate 2 --name deb-check --dir "$tmp/shm" --group kvmstats --quiet \
	>daemon.log 2>&1 &
daemon=$!
for _ in $(seq 1 200); do
	[ -e shm/kvmstats.deb-check ] && break
	sleep 0.05
done
if out=$(KVMSTATS_SHM_DIR=$tmp/shm ./reader deb-check 2>&1); then
	echo "ok   the external reader reads the installed kvmstatsd: $out"
else
	bad "the external reader failed: $out ($(cat daemon.log))"
fi
if out=$(KVMSTATS_SHM_DIR=$tmp/shm ./publisher 2>&1); then
	echo "ok   the external publisher runs against libkvmstats-publisher.so.1"
else
	bad "the external publisher failed: $out"
fi
# The exporter as its unit runs it: not the daemon's user, but in its group.
if out=$(setpriv --reuid=nobody --regid=nogroup --groups="$(getent group kvmstats | cut -d: -f3)" \
	/usr/bin/kvmstats-exporter --once --dir "$tmp/shm" --owner root 2>&1) &&
   echo "$out" | grep -q '^kvm_vcpu_exits_total{vm="deb-check"} [0-9]'; then
	echo "ok   the installed exporter, as a member of group kvmstats: $(echo "$out" | grep -c '^[a-z]') samples"
else
	bad "the installed exporter does not read the daemon's segment: $out"
fi
out=$(LD_PRELOAD=/usr/lib/$multiarch/kvmstats/libkvmstats-preload.so /usr/bin/kvmstats --version 2>&1) ||
	bad "a program does not run with the installed shim preloaded: $out"
cd - >/dev/null || exit 1

purge
left=""
for f in /usr/bin/kvmstats /usr/bin/kvmstats-exporter /usr/sbin/kvmstatsd /etc/default/kvmstatsd \
	/lib/systemd/system/kvmstatsd.service /lib/systemd/system/kvmstats-exporter.service \
	"/usr/lib/$multiarch/libkvmstats.so.1" /usr/include/kvmstats; do
	[ -e "$f" ] && left="$left $f"
done
[ -z "$left" ] || bad "purged, yet still there:$left"
[ -n "$had_user" ] || ! getent passwd kvmstats >/dev/null || bad "user kvmstats left behind"
[ $fail -eq 0 ] && echo "ok   dpkg --purge: nothing left, the machine as it was"
trap 'rm -rf "$tmp"' EXIT INT TERM
rm -rf "$tmp"
exit $fail
