#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the suites that fork, use pipes and sockets, or race a publisher
# against readers, many times, so that a test that fails by chance fails
# here, not in CI.
#   tests/repeat.sh BUILD N [SUITE...]
# SUITE: a test program of BUILD/tests (test_daemon, ...), "cli" (the
# golden tests), "python" (the independent reader), "exporter" (the
# exporter over HTTP with Prometheus, tests/exporter/test_http.py), "top"
# (top in tmux and watch, tests/top/test_top_watch.py), "qmp" (kvmstats qmp
# over its sockets, tests/qmp/test_qmp.py), "shim-qmp" (QEMU's vCPU names
# through the shim and attach, tests/preload/test_shim_qmp.py), "kvm" (the real-kernel suite in
# its QEMU guest, tools/kvm-guest/run.sh) or "qemu" (real QEMUs 7.2 and 10
# against their own QMP, tests/qemu/test_qemu.py).  Default: every
# multi-process program, the real-kernel ones (they skip without /dev/kvm),
# cli, python, exporter, top, qmp, shim-qmp and qemu (they skip without /dev/kvm too).
# Rounds run the suites in turn, each in a
# fresh segment directory; the torture runs 1 M reads a round unless
# KVMSTATS_TORTURE_READS says otherwise.
# Prints one line per failure (its log is kept) and "repeat: N runs, N
# failed"; exits non-zero if any run failed.
set -u
build=$1
rounds=$2
shift 2
if [ $# -eq 0 ]; then
	set -- test_daemon test_intake test_lifecycle test_engine test_embed test_noscall test_handles \
		test_torture test_real_attach test_real_intake test_real_preload \
		test_real_own_vm test_real_embed test_real_statsfd test_real_exporter test_exporter cli \
		python exporter top qmp shim-qmp qemu
fi
KVMSTATS_BUILD=$build
KVMSTATS_TORTURE_READS=${KVMSTATS_TORTURE_READS:-1000000}
export KVMSTATS_BUILD KVMSTATS_TORTURE_READS
logs=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-repeat.XXXXXX")
shmroot=$(mktemp -d /dev/shm/kvmstats-repeat.XXXXXX)
trap 'rm -rf "$shmroot"' EXIT INT TERM
runs=0
failed=0

run_one() {
	dir=$shmroot/$1.$2
	mkdir -p "$dir"
	case $1 in
	cli)	KVMSTATS_SHM_DIR=$dir sh tests/cli/run.sh "$build" ;;
	python)	KVMSTATS_SHM_DIR=$dir sh tests/test_python_reader.sh "$build" ;;
	exporter) KVMSTATS_SHM_DIR=$dir /usr/bin/python3 tests/exporter/test_http.py "$build" ;;
	top)	KVMSTATS_SHM_DIR=$dir /usr/bin/python3 tests/top/test_top_watch.py "$build" ;;
	qmp)	KVMSTATS_SHM_DIR=$dir /usr/bin/python3 tests/qmp/test_qmp.py "$build" ;;
	shim-qmp) /usr/bin/python3 tests/preload/test_shim_qmp.py "$build" ;;
	kvm)	sh tools/kvm-guest/run.sh "$build" ;;
	qemu)	/usr/bin/python3 tests/qemu/test_qemu.py "$build" ;;
	*)	KVMSTATS_SHM_DIR=$dir "$build/tests/$1" ;;
	esac
}

start=$(date +%s)
r=1
while [ "$r" -le "$rounds" ]; do
	for s in "$@"; do
		runs=$((runs + 1))
		log=$logs/$s.$r.log
		if run_one "$s" "$r" >"$log" 2>&1; then
			rm -f "$log"
		else
			failed=$((failed + 1))
			echo "repeat: round $r: $s FAILED (log: $log)"
		fi
		rm -rf "$shmroot/$s.$r"
	done
	echo "repeat: round $r of $rounds done ($(($(date +%s) - start)) s, $failed failed so far)"
	r=$((r + 1))
done
[ "$failed" -eq 0 ] && rmdir "$logs" 2>/dev/null
echo "repeat: $runs runs, $failed failed"
[ "$failed" -eq 0 ]
