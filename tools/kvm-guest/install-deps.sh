#!/bin/sh
# Install the Debian 12 packages the real-KVM test guest needs, only those
# missing: QEMU (TCG emulates an AMD SVM CPU, so the guest kernel gets a real
# /dev/kvm even on hosts without one), a static BusyBox for the initramfs,
# cpio to pack it, kmod for depmod, xz-utils for .ko.xz modules.
# The build's own packages are tools/install-deps.sh's job; it installs
# these too.
set -eu

here=$(dirname "$0")
status=0
sh "$here/../install-deps.sh" --tag kvm-guest \
	qemu-system-x86 busybox-static cpio kmod xz-utils || status=$?
if [ "$status" -eq 2 ]; then
	echo "kvm-guest: the real-kernel tests boot a Debian kernel under QEMU and need" >&2
	echo "kvm-guest: these packages from Debian's repository (is it reachable?)" >&2
fi
[ "$status" -eq 0 ] || exit 1
