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

if [ -x tests/cli/run.sh ] || [ -f tests/cli/run.sh ]; then
	if [ "$mode" != valgrind ]; then
		echo "== cli golden tests"
		if KVMSTATS_SHM_DIR="$shmroot/cli" sh tests/cli/run.sh "$build"; then
			pass=$((pass + 1))
		else
			fail=$((fail + 1))
			failed="$failed cli"
		fi
	fi
fi

if [ "$mode" != valgrind ]; then
	echo "== independent Python reader (docs/ABI.md) against the C tools"
	if KVMSTATS_SHM_DIR="$shmroot/python" sh tests/test_python_reader.sh "$build"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed python-reader"
	fi
fi

if [ "$mode" != valgrind ]; then
	echo "== kvmstats top (in tmux) and kvmstats watch"
	if KVMSTATS_SHM_DIR="$shmroot" /usr/bin/python3 tests/top/test_top_watch.py "$build"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed top-watch"
	fi
fi

if [ "$mode" != valgrind ]; then
	echo "== kvmstats-exporter over HTTP, with promtool and a real Prometheus"
	if KVMSTATS_SHM_DIR="$shmroot" /usr/bin/python3 tests/exporter/test_http.py "$build"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed exporter-http"
	fi
fi

if [ "$mode" != valgrind ]; then
	echo "== kvmstats qmp over its sockets"
	if KVMSTATS_SHM_DIR="$shmroot" /usr/bin/python3 tests/qmp/test_qmp.py "$build"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed qmp"
	fi
fi

[ -n "$failed" ] && echo "failed:$failed"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
