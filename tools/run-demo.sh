#!/bin/sh
# make run: publish a 4-vCPU VM and show its live statistics for a
# few seconds, the way a monitor would read them: kvmstats, no privileges,
# no syscall per read.
#   tools/run-demo.sh BUILD
set -eu
build=$1
secs=${DEMO_SECONDS:-5}
dir=$(mktemp -d /dev/shm/kvmstats-demo.XXXXXX)
export KVMSTATS_SHM_DIR="$dir"
pid=""
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# A real VM of our own where /dev/kvm works; otherwise kvmstatsd says why and
# publishes a simulated VM whose stats files have the kernel's exact layout.
echo "== kvmstatsd --spawn-vm 4 --fallback-simulate --hz 1000"
"$build/kvmstatsd" --spawn-vm 4 --fallback-simulate --hz 1000 &
pid=$!
for _ in $(seq 50); do
	[ -n "$(ls "$dir" 2>/dev/null)" ] && break
	sleep 0.1
done

echo
echo "== kvmstats list"
"$build/kvmstats" list
i=1
while [ "$i" -le "$secs" ]; do
	sleep 1
	echo
	echo "== kvmstats info vcpu exits,io_exits,halt_exits,halt_wait_ns,guest_mode --vcpu 0   ($i s)"
	"$build/kvmstats" info vcpu exits,io_exits,halt_exits,halt_wait_ns,guest_mode --vcpu 0
	i=$((i + 1))
done
echo
echo "== kvmstats query --target vcpu --vcpus 1 --names exits,halt_wait_hist   (QMP shape)"
"$build/kvmstats" query --target vcpu --vcpus 1 --names exits,halt_wait_hist
echo
echo "== kvmstats info vm   (HMP shape)"
"$build/kvmstats" info vm
