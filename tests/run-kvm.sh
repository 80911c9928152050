#!/bin/sh
# Run every real-kernel test program of a build (BUILD/tests/test_real_*)
# against this machine's /dev/kvm: in the QEMU guest of tools/kvm-guest/run.sh
# (make test-kvm), or directly on a host with KVM (make test-kvm-host).
#   tests/run-kvm.sh BUILD
# KVMSTATS_REQUIRE_KVM=1 (set by both targets) makes a missing /dev/kvm a
# failure, not a skip: these runs exist to reach a real kernel.
# KVMSTATS_KVM_TEST_TIMEOUT: seconds per program (default 240), so one hung
# program cannot take the others' results with it.
# Prints one "kvm: N passed, N failed" line at the end; exits non-zero on any failure.
set -u
build=$1
per_test=${KVMSTATS_KVM_TEST_TIMEOUT:-240}
KVMSTATS_BUILD=$build
export KVMSTATS_BUILD
pass=0
fail=0
failed=""

echo "kvm: kernel $(uname -r)"
if [ "${KVMSTATS_REQUIRE_KVM:-0}" = 1 ]; then
	if ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
		echo "kvm: KVMSTATS_REQUIRE_KVM=1 but /dev/kvm is missing or not read-writable"
		echo "kvm: 0 passed, 1 failed"
		exit 1
	fi
fi

# Each program gets a private segment directory, so runs never collide.
shmroot=$(mktemp -d /dev/shm/kvmstats-kvm.XXXXXX) || exit 1
trap 'rm -rf "$shmroot"' EXIT
trap 'exit 130' INT TERM

for t in "$build"/tests/test_real_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	dir="$shmroot/$name"
	mkdir -p "$dir"
	echo "== $name"
	start=$(date +%s)
	KVMSTATS_SHM_DIR="$dir" timeout -k 10 "$per_test" "$t"
	rc=$?
	secs=$(($(date +%s) - start))
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		echo "-- $name: passed (${secs} s)"
	else
		fail=$((fail + 1))
		failed="$failed $name"
		[ "$rc" -eq 124 ] && echo "-- $name: timed out after $per_test s"
		echo "-- $name: FAILED (status $rc, ${secs} s)"
	fi
done

if [ $((pass + fail)) -eq 0 ]; then
	echo "kvm: no $build/tests/test_real_* programs (build them first)"
	fail=1
	failed=" (none built)"
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "kvm: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
