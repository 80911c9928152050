#!/bin/sh
# /init of the test guest (BusyBox sh, PID 1).  Loads KVM and the 9p/overlay
# modules, makes the host's root file system the guest's root (read-only
# over 9p, writable through an overlay whose changes stay in guest RAM),
# runs tests/run-kvm.sh in it against the guest kernel's real /dev/kvm, and
# leaves the exit status and the log in the results share for the host.
# Settings come from /etc/kvm-guest.conf, written by run.sh:
#   REPO, BUILD, and exported KVMSTATS_* settings passed on to the tests
export PATH=/bin:/sbin
. /etc/kvm-guest.conf

say() { echo "kvm-guest: $*"; }
# Without this, a failure before the results share is mounted would leave
# the host waiting for the timeout: end the guest, the host reports it.
fail() {
	say "FAILED: $*"
	[ -n "${results_up:-}" ] && echo "guest setup failed: $*" >> /results/setup.err
	poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug

for m in $(cat /modules/load-order); do
	insmod "/modules/$m" || fail "insmod $m"
done
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm-amd (dmesg: $(dmesg | grep -i -E 'kvm|svm' | tail -n 3))"

# 9p: msize 512000 is the virtio transport's largest on 6.1 (fewer round
# trips for the host's binaries); cache=loose, the host does not change
# them under us.
P9="trans=virtio,version=9p2000.L,msize=512000,cache=loose"
mkdir -p /results /host /rw /root
# The results share without cache: what the guest writes must be on the
# host before poweroff.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results ||
	fail "mount the results share"
results_up=1
mount -t 9p -o "$P9,ro" hostroot /host || fail "mount the host root"

# Upper layer in RAM.  index=off and redirect_dir=off: 9p has no file
# handles for overlay's index, and nothing here renames directories.
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay \
	-o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work,index=off,redirect_dir=off,xino=off \
	/root || fail "mount the overlay root"

# The guest's own kernel interfaces, not the host's seen through 9p.
# /tmp stays the overlay's (writable, changes in RAM): a tmpfs there would
# hide a repository or build cloned under the host's /tmp.
mkdir -p /dev/pts /dev/shm
mount -o bind /dev /root/dev || fail "bind /dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts /root/dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /root/dev/shm || fail "mount /dev/shm"
mount -o bind /proc /root/proc || fail "bind /proc"
mount -o bind /sys /root/sys || fail "bind /sys"
mount -t debugfs debugfs /root/sys/kernel/debug || fail "mount debugfs"

log=/results/test.log
{
	echo "guest: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs," \
		"uptime $(cut -d' ' -f1 /proc/uptime) s at test start"
	echo "guest: /dev/kvm: $(ls -l /dev/kvm)"
	echo "guest: kvm_amd: nested=$(cat /sys/module/kvm_amd/parameters/nested)" \
		"npt=$(cat /sys/module/kvm_amd/parameters/npt)"
	dmesg | grep -i -E 'kvm|svm' | sed 's/^/guest dmesg: /'
} > "$log" 2>&1

chroot /root /usr/bin/env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TMPDIR=/tmp KVMSTATS_REQUIRE_KVM=1 \
	/bin/sh -c 'cd "$1" && exec sh tests/run-kvm.sh "$2"' sh "$REPO" "$BUILD" \
	>> "$log" 2>&1 < /dev/null
rc=$?
echo "guest: tests ended with status $rc at uptime $(cut -d' ' -f1 /proc/uptime) s" >> "$log"
# The status file last: its presence tells the host that the log is whole.
echo "$rc" > /results/status.tmp && mv /results/status.tmp /results/status
sync
poweroff -f
