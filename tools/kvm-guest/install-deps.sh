#!/bin/sh
# Install the Debian 12 packages the real-KVM test guest needs, only those
# missing: QEMU (TCG emulates an AMD SVM CPU, so the guest kernel gets a real
# /dev/kvm even on hosts without one), a static BusyBox for the initramfs,
# cpio to pack it, kmod for depmod, xz-utils for .ko.xz modules.
# The build's own packages are tools/install-deps.sh's job.
set -eu

PKGS="qemu-system-x86 busybox-static cpio kmod xz-utils"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "kvm-guest: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "kvm-guest: need root (or sudo) to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! { $SUDO apt-get update -qq &&
       $SUDO apt-get install -y -qq --no-install-recommends $missing; }; then
	echo "kvm-guest: could not install:$missing" >&2
	echo "kvm-guest: the real-kernel tests boot a Debian kernel under QEMU and need" >&2
	echo "kvm-guest: these packages from Debian's repository (is it reachable?)" >&2
	exit 1
fi
