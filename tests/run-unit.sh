#!/bin/sh
# Run every cmocka test program of a build, then the CLI golden tests.
#   tests/run-unit.sh BUILD [valgrind]
# Prints one "N passed, N failed" line at the end; exits non-zero on any failure.
set -u
build=$1
mode=${2:-}
# Tests that run the programs find them here.
KVMSTATS_BUILD=$build
export KVMSTATS_BUILD
pass=0
fail=0
failed=""

# Each test gets a private segment directory, so runs never collide.
shmroot=$(mktemp -d /dev/shm/kvmstats-test.XXXXXX)
trap 'rm -rf "$shmroot"' EXIT INT TERM

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	dir="$shmroot/$name"
	mkdir -p "$dir"
	if [ "$mode" = valgrind ]; then
		# Reads under valgrind are ~50x slower: the torture count shrinks,
		# the checks do not.
		set -- env KVMSTATS_SHM_DIR="$dir" KVMSTATS_UNDER_VALGRIND=1 \
			KVMSTATS_TORTURE_READS=200000 \
			valgrind --quiet --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite --track-fds=no "$t"
	else
		set -- env KVMSTATS_SHM_DIR="$dir" "$t"
	fi
	echo "== $name${mode:+ ($mode)}"
	if "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $name"
	fi
done

# The suites that run the programs themselves (not under valgrind: they
# start daemons and time their answers).  suite NAME TITLE COMMAND...
suite() {
	name=$1
	echo "== $2"
	shift 2
	if "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $name"
	fi
}

if [ "$mode" != valgrind ]; then
	if [ -f tests/cli/run.sh ]; then
		suite cli "cli golden tests" env KVMSTATS_SHM_DIR="$shmroot/cli" sh tests/cli/run.sh "$build"
	fi
	suite python-reader "independent Python reader (docs/ABI.md) against the C tools" \
		env KVMSTATS_SHM_DIR="$shmroot/python" sh tests/test_python_reader.sh "$build"
	suite top-watch "kvmstats top (in tmux) and kvmstats watch" \
		env KVMSTATS_SHM_DIR="$shmroot" /usr/bin/python3 tests/top/test_top_watch.py "$build"
	suite exporter-http "kvmstats-exporter over HTTP, with promtool and a real Prometheus" \
		env KVMSTATS_SHM_DIR="$shmroot" /usr/bin/python3 tests/exporter/test_http.py "$build"
	suite qmp "kvmstats qmp over its sockets" \
		env KVMSTATS_SHM_DIR="$shmroot" /usr/bin/python3 tests/qmp/test_qmp.py "$build"
	suite shim-qmp "QEMU's vCPU names through the shim and attach (a fake QEMU)" \
		/usr/bin/python3 tests/preload/test_shim_qmp.py "$build"
fi

[ -n "$failed" ] && echo "failed:$failed"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
