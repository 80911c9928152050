#!/bin/sh
# Install what `make bench` needs beyond the build's own packages, only
# what is missing: gnuplot (no X) for the report's plots, and liburing for
# the batched-read (io_uring) variant measured beside plain pread().
# The build's and the tests' packages are tools/install-deps.sh's job; it
# installs these too.
# A failed install leaves the benchmarks runnable: plots and the io_uring
# variant are skipped, the rest is measured.
set -eu

PKGS="gnuplot-nox liburing-dev"

# shellcheck disable=SC2086
exec sh "$(dirname "$0")/../tools/install-deps.sh" --tag "bench install-deps" \
	--optional "benchmarks run without (no plots, no io_uring variant)" $PKGS
