#!/bin/sh
# SPDX-License-Identifier: MIT
# Prepare, once, a current QEMU for the tests against real QEMUs
# (tests/qemu/): a Debian trixie chroot (debootstrap --variant=minbase)
# holding qemu-system-x86 and the firmware it boots with, installed from
# Debian's repository without recommends.  The host's own QEMU (bookworm:
# 7.2) is the old one; this one (trixie: 10.x) has the QEMU >= 8.1 vCPU
# stats fds that kvmstatsd --attach duplicates.
#   tools/qemu/prepare-trixie.sh      prints ROOT on its last line
# ROOT is $KVMSTATS_QEMU_CACHE (default /var/cache/kvmstats/qemu-trixie).
# It is built in a sibling directory and renamed into place only once
# complete (ROOT/.kvmstats-ready holds the QEMU version), so a chroot left
# half-made by a failure or a kill is never used: it is removed and made
# again by the next run.
# The repository is the one this machine's apt uses for Debian
# (KVMSTATS_QEMU_MIRROR overrides it).
# Exits 0 with ROOT; 77 when it cannot be made here (not root, or the
# repository unreachable: the tests SKIP, saying why); 1 on other failures.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=${KVMSTATS_QEMU_CACHE:-/var/cache/kvmstats/qemu-trixie}
suite=trixie
say() { echo "qemu-trixie: $*" >&2; }
die() { say "$*"; exit 1; }
skip() { say "$*"; exit 77; }

# What the chroot holds.  qemu-system-x86 without recommends still depends
# on its data and firmware; seabios (bios-256k.bin) and ipxe-qemu (the
# option ROMs a device_add'ed NIC would want) are named so that they are
# there whatever trixie's dependency lists say.  liburcu8t64 and
# libjansson4: the shim's libraries beyond libc, so that LD_PRELOAD works
# inside the chroot too.  A cached chroot made with another list is made
# again: ROOT/.kvmstats-packages records the list it was made with.
packages="qemu-system-x86 seabios ipxe-qemu liburcu8t64 libjansson4"
ready() {
	[ -f "$root/.kvmstats-ready" ] &&
		[ "$(cat "$root/.kvmstats-packages" 2>/dev/null)" = "$packages" ]
}

if ready; then
	say "QEMU $(cat "$root/.kvmstats-ready") (cached in $root)"
	echo "$root"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || skip "building the trixie chroot needs root (debootstrap, chroot)"

# The Debian mirror apt uses here (deb822 or one-line sources), else Debian's CDN.
mirror=${KVMSTATS_QEMU_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/* *$/\1/p' | head -n 1)
fi
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -n 's/^deb  *\(http[^ ]*\/debian\)\/*  *.*/\1/p' | head -n 1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

status=0
sh "$here/../install-deps.sh" --tag qemu-trixie debootstrap >&2 || status=$?
case $status in
0) ;;
1) skip "debootstrap is missing and cannot be installed without root" ;;
*) skip "could not install debootstrap (is Debian's repository reachable?)" ;;
esac

# One small file says whether the repository answers, before 100 MB are asked of it.
wget -q -T 20 -t 2 -O /dev/null "$mirror/dists/$suite/InRelease" ||
	skip "$mirror/dists/$suite/InRelease is not reachable: no repository, no trixie QEMU"

parent=$(dirname "$root")
mkdir -p "$parent"
# One builder at a time; whoever waited finds the chroot made.
exec 9>"$parent/.$(basename "$root").lock"
flock 9
if ready; then
	say "QEMU $(cat "$root/.kvmstats-ready") (made meanwhile in $root)"
	echo "$root"
	exit 0
fi
# Remove a work directory.  debootstrap mounts /proc (and may mount /sys)
# inside its target; killed, it leaves them mounted, and removing the
# tree would then fail on /proc, or worse walk into a mounted /dev.  So:
# unmount whatever is mounted below it (deepest first, lazily: a process
# may still use it), then remove it without crossing into another file
# system, whatever is still mounted.
remove_work() {
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" || say "could not unmount $m"; done
	rm -rf --one-file-system "$1"
}
# Whatever an earlier, interrupted run left: never used, removed now.
for old in "$parent/.$(basename "$root").prepare."*; do
	[ -d "$old" ] || continue
	remove_work "$old" || die "could not remove $old, left by an interrupted run: remove it by hand"
done
work=$(mktemp -d "$parent/.$(basename "$root").prepare.XXXXXX")
trap 'remove_work "$work"' EXIT INT TERM

start=$(date +%s)
say "debootstrap --variant=minbase $suite from $mirror into $work"
debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
	"$suite" "$work" "$mirror" >"$work.log" 2>&1 || {
	tail -n 20 "$work.log" >&2
	rm -f "$work.log"
	die "debootstrap failed"
}
rm -f "$work.log"

# apt inside the chroot needs /proc and /dev; a private mount namespace
# takes them away with it whatever happens to this script.
unshare -m --propagation private sh -eu -c '
	r=$1
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -eu -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends \
			$2 && apt-get clean"
' sh "$work" "$packages" >"$work.log" 2>&1 || {
	tail -n 20 "$work.log" >&2
	rm -f "$work.log"
	die "apt-get install qemu-system-x86 in the chroot failed"
}
rm -f "$work.log"
rm -rf "$work/var/lib/apt/lists/"*

version=$(unshare -m --propagation private sh -c \
	'mount -t proc proc "$1/proc" && chroot "$1" qemu-system-x86_64 --version' sh "$work" |
	sed -n '1s/^QEMU emulator version *//p')
[ -n "$version" ] || die "the chroot's qemu-system-x86_64 --version printed nothing"
echo "$packages" > "$work/.kvmstats-packages"
echo "$version" > "$work/.kvmstats-ready"

rm -rf "$root"
mv "$work" "$root"
trap - EXIT INT TERM
say "QEMU $version prepared in $root in $(($(date +%s) - start)) s"
echo "$root"
