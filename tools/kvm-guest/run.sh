#!/bin/sh
# Run the real-kernel tests (tests/run-kvm.sh) against the KVM of a stock
# Debian kernel booted under QEMU TCG: the emulated CPU has AMD SVM, so the
# guest's kvm_amd gives a real /dev/kvm whether or not this host has one.
# The guest's root is this host's root, read-only over 9p under a RAM
# overlay, so the tests run the host's build unchanged, at the same paths.
#   tools/kvm-guest/run.sh [BUILD]          BUILD relative to the repo, default build
# Settings:
#   KVMSTATS_KVM_CACHE    guest kernel cache (default /var/cache/kvmstats/kvm-guest)
#   KVMSTATS_KVM_KERNEL   kernel metapackage (default linux-image-amd64)
#   KVMSTATS_KVM_TIMEOUT  seconds for the whole guest run (default 600; a run takes about 20 s)
#   KVMSTATS_KVM_MEM      guest MiB (default 2048), KVMSTATS_KVM_CPUS (default 2)
#   KVMSTATS_KVM_ACCEL    QEMU -accel (default tcg,thread=single; see below)
#   KVMSTATS_KVM_CPU      QEMU -cpu (default max: AMD SVM with nested paging)
# Other KVMSTATS_* variables are passed on to the tests in the guest
# (KVMSTATS_KVM_TEST_TIMEOUT: see tests/run-kvm.sh).
# Exits with the guest tests' status, or 1 if the guest never reported one.
# A guest that dies without a result before any test failed (the emulator
# or the guest kernel, not a test) is booted once more, with a warning.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
cache=${KVMSTATS_KVM_CACHE:-/var/cache/kvmstats/kvm-guest}
limit=${KVMSTATS_KVM_TIMEOUT:-600}
mem=${KVMSTATS_KVM_MEM:-2048}
cpus=${KVMSTATS_KVM_CPUS:-2}

say() { echo "kvm-guest: $*"; }
die() { say "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Sharing / with security_model=none makes QEMU read files as itself: only
# root reads all of them (and installs packages, and writes the cache).
[ "$(id -u)" -eq 0 ] || die "must run as root (QEMU shares / into the guest); with a usable /dev/kvm, 'make test-kvm-host' needs no guest"
case $build in /*) bdir=$build ;; *) bdir=$repo/$build ;; esac
[ -d "$bdir/tests" ] || die "no $build/tests: build first (make test-kvm does)"

t0=$(now)
sh "$here/install-deps.sh"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	die "qemu-system-x86_64 not found and not installable: the real-kernel tests need Debian's qemu-system-x86 package"

# One preparation at a time per cache (concurrent runs share it).
mkdir -p "$cache"
kit=$(flock "$cache/.lock" sh "$here/fetch-kernel.sh" | tail -n 1)
[ -f "$kit/ready" ] || die "guest kernel preparation failed"
release=$(cat "$kit/release")

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Initramfs: BusyBox, the modules, /init and its settings.  Left
# uncompressed: decompressing under emulation costs more than it saves.
st=$work/initramfs
mkdir -p "$st/bin" "$st/etc" "$st/modules" "$st/proc" "$st/sys" "$st/dev"
cp /bin/busybox "$st/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$st/bin/$a"
done
cp "$kit"/modules/*.ko "$kit/load-order" "$st/modules/"
cp "$here/init.sh" "$st/init"
chmod 755 "$st/init"
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
	echo "REPO=$(q "$repo")"
	echo "BUILD=$(q "$build")"
	for v in $(env | sed -n 's/^\(KVMSTATS_[A-Za-z0-9_]*\)=.*/\1/p'); do
		# This script's own settings stay here; run-kvm.sh sets the others.
		case $v in
		KVMSTATS_KVM_CACHE|KVMSTATS_KVM_KERNEL|KVMSTATS_KVM_TIMEOUT|KVMSTATS_KVM_MEM|KVMSTATS_KVM_CPUS|KVMSTATS_KVM_ACCEL|KVMSTATS_KVM_CPU) continue ;;
		KVMSTATS_SHM_DIR|KVMSTATS_BUILD) continue ;;
		esac
		val=""
		eval "val=\${$v}"
		echo "export $v=$(q "$val")"
	done
} > "$st/etc/kvm-guest.conf"
(cd "$st" && find . | cpio -o -H newc --quiet) > "$work/initramfs.cpio"
say "guest kernel $release ($(cat "$kit/package")); prepared in $(since "$t0") s"

# One host thread runs both guest CPUs in turn.  With QEMU 7.2's default
# multi-threaded TCG, about 3 boots in 10 went wrong once the guest's KVM
# ran vCPUs of its own (nested SVM): an RCU stall in the guest kernel, a
# guest reset, or a hang mid-test (the tests had passed up to there).
# Single-threaded TCG passed 70 boots in 70, and was no slower here: the
# tests spend their time in the guest kernel, not in parallel guest code.
accel=${KVMSTATS_KVM_ACCEL:-tcg,thread=single}
cpu=${KVMSTATS_KVM_CPU:-max}
# boot N: one guest run, its log and status in $work/results.  Returns
# the tests' status, or 255 if the guest never reported one (said why).
boot() {
	rm -rf "$work/results" && mkdir "$work/results"
	say "booting the guest (QEMU -accel $accel, -cpu $cpu: AMD SVM), up to $limit s${1:+ ($1)}"
	t1=$(now)
	rc=0
	timeout --kill-after=10 "$limit" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" \
		-m "$mem" -smp "$cpus" -nographic -no-reboot -net none \
		-kernel "$kit/vmlinuz" -initrd "$work/initramfs.cpio" \
		-append 'console=ttyS0 quiet panic=-1' \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$work/results,mount_tag=results,security_model=none" \
		< /dev/null > "$work/console.log" 2>&1 || rc=$?
	took=$(since "$t1")

	if [ -f "$work/results/test.log" ]; then
		say "guest test log:"
		cat "$work/results/test.log"
	fi
	if [ -f "$work/results/status" ]; then
		say "guest run took $took s (QEMU start to power-off); whole test-kvm $(since "$t0") s"
		return "$(cat "$work/results/status")"
	fi

	# No status: the guest never got to report.  Say why as well as we can.
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		say "ERROR: the guest did not finish within $limit s (KVMSTATS_KVM_TIMEOUT)" >&2
	elif [ -f "$work/results/setup.err" ]; then
		say "ERROR: $(cat "$work/results/setup.err")" >&2
	elif grep -q "^kvm-guest: FAILED:" "$work/console.log"; then
		# Failed before the results share was up (module load, 9p mount).
		say "ERROR: guest setup failed: $(grep -m 1 "^kvm-guest: FAILED:" "$work/console.log" | cut -d' ' -f3-)" >&2
	elif grep -q "Kernel panic" "$work/console.log"; then
		say "ERROR: the guest kernel panicked" >&2
	else
		say "ERROR: the guest stopped without reporting a result (QEMU status $rc)" >&2
	fi
	# A stuck guest kernel says so on the console (quiet hides lesser messages).
	trouble=$(grep -m 1 -E "stall|soft lockup|blocked for more than|BUG:|Oops" "$work/console.log" || true)
	[ -z "$trouble" ] || say "the guest kernel reported: $trouble" >&2
	say "guest console (last 150 lines):" >&2
	tail -n 150 "$work/console.log" >&2
	return 255
}

status=0
boot "" || status=$?
# A guest that died without a result, with no test failed before it and
# no setup error, failed below the tests (the emulator or the guest
# kernel): boot once more, and say so.  A test that fails or hangs is
# reported by tests/run-kvm.sh with a status, and never retried.
if [ "$status" -eq 255 ] && ! [ -f "$work/results/setup.err" ] &&
   ! grep -q "FAILED" "$work/results/test.log" 2>/dev/null &&
   ! grep -q "^kvm-guest: FAILED:" "$work/console.log"; then
	say "WARNING: the guest died before it could report (above); no test had failed. Booting once more." >&2
	status=0
	boot "second boot" || status=$?
	[ "$status" -eq 0 ] && say "WARNING: passed on the second boot; the first died without a result (see above)" >&2
fi
[ "$status" -eq 255 ] && exit 1
exit "$status"
