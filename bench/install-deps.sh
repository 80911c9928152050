#!/bin/sh
# Install what `make bench` needs beyond the build's own packages, only
# what is missing: gnuplot (no X) for the report's plots, and liburing for
# the batched-read (io_uring) variant measured beside plain pread().
# The build's and the tests' packages are tools/install-deps.sh's job.
set -eu

PKGS="gnuplot-nox liburing-dev"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "bench install-deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "bench install-deps: need root (or sudo) to install:$missing;" \
	     "benchmarks run without (no plots, no io_uring variant)" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# A failed install leaves the benchmarks runnable: plots and the io_uring
# variant are skipped, the rest is measured.
# shellcheck disable=SC2086
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing; }; then
	echo "bench install-deps: could not install:$missing" >&2
fi
exit 0
