#!/bin/sh
# Install what `make bench` needs beyond the build's own packages, only
# what is missing: gnuplot (no X) for the report's plots, liburing for
# the batched-read (io_uring) variant measured beside plain pread(), and
# Debian 12's QEMU with binutils (its test firmware is assembled) for the
# real-QEMU rows (QEMU 10 comes from tools/qemu/prepare-trixie.sh's chroot).
# The build's and the tests' packages are tools/install-deps.sh's job; it
# installs these too.
# A failed install leaves the benchmarks runnable: plots, the io_uring
# variant or the real-QEMU rows are skipped, the rest is measured.
set -eu

PKGS="gnuplot-nox liburing-dev qemu-system-x86 binutils"

# shellcheck disable=SC2086
exec sh "$(dirname "$0")/../tools/install-deps.sh" --tag "bench install-deps" \
	--optional "benchmarks run without (no plots, io_uring variant or QEMU 7.2 rows)" $PKGS
