#!/bin/sh
# Prepare the guest kernel kit: Debian's current stock kernel (the package
# linux-image-amd64 points at), downloaded and unpacked, never installed,
# cut down to what the test guest boots with:
#   KIT/vmlinuz          the kernel
#   KIT/modules/*.ko     KVM (AMD SVM), virtio, 9p and overlay modules, and
#                        their dependencies, decompressed (BusyBox insmod
#                        reads plain .ko only)
#   KIT/load-order       module file names, dependencies first
#   KIT/release          the kernel release (uname -r in the guest)
# The kit is cached in $KVMSTATS_KVM_CACHE (default /var/cache/kvmstats/kvm-guest)
# under the package name, so a new kernel ABI gets a new kit and an old one
# is reused as is.
#   tools/kvm-guest/fetch-kernel.sh     prints KIT on its last line
set -eu

cache=${KVMSTATS_KVM_CACHE:-/var/cache/kvmstats/kvm-guest}
say() { echo "kvm-guest: $*" >&2; }
die() { say "$*"; exit 1; }

# Modules the guest needs; their dependencies come from modules.dep.
WANT="kvm_amd virtio_pci 9pnet_virtio 9p overlay"

# The ABI name (6.1.0-NN) changes with every kernel update: ask apt which
# package the metapackage points at.  KVMSTATS_KVM_KERNEL picks another
# metapackage, e.g. linux-image-6.12-amd64 (bookworm's newer kernel).
meta=${KVMSTATS_KVM_KERNEL:-linux-image-amd64}
resolve() {
	apt-cache depends "$meta" 2>/dev/null |
		sed -n 's/^ *Depends: *\(linux-image-[^ ]*\).*/\1/p' | head -n 1
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
	# A fresh machine may have no package lists yet.
	say "no package lists for $meta; running apt-get update"
	apt-get update -qq >&2 || true
	pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
	# Offline: any kit prepared earlier still boots.
	kit=""
	for d in "$cache"/linux-image-*; do
		[ -f "$d/ready" ] && kit=$d
	done
	[ -n "$kit" ] || die "cannot resolve $meta (apt-cache depends) and no cached kernel in $cache"
	say "cannot resolve $meta; using cached $(basename "$kit")"
	echo "$kit"
	exit 0
fi

kit=$cache/$pkg
if [ -f "$kit/ready" ]; then
	say "guest kernel $pkg (cached in $kit)"
	echo "$kit"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.prepare.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

say "downloading $pkg (not installed, only unpacked)"
download() {
	# As root apt drops to the _apt user for downloads, which cannot write
	# into our root-owned directory; downloading as root here is harmless.
	(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
}
if ! download; then
	# Stale lists name a version the mirror no longer has.
	apt-get update -qq >&2 || true
	download || die "apt-get download $pkg failed (is Debian's repository reachable?)"
fi
deb=$(ls "$work"/*.deb)
dpkg -x "$deb" "$work/root"
rm -f "$deb"

release=$(ls "$work/root/lib/modules")
[ "$(echo "$release" | wc -l)" -eq 1 ] || die "$pkg: expected one module tree, found: $release"
vmlinuz=$work/root/boot/vmlinuz-$release
[ -f "$vmlinuz" ] || die "$pkg: no boot/vmlinuz-$release"
# The package carries no modules.dep: it is made at install time.
depmod -b "$work/root" "$release"
moddir=$work/root/lib/modules/$release

# Dependencies first, each module once (depth-first over modules.dep).
# Targets built into the kernel are listed in modules.builtin and skipped.
order=$(awk -v want="$WANT" '
	function norm(p,  n) {
		n = p; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n)
		gsub(/-/, "_", n); return n
	}
	function visit(p,  i, n, d) {
		if (p in seen) return
		seen[p] = 1
		n = split(deps[p], d, " ")
		for (i = 1; i <= n; i++) visit(d[i])
		print p
	}
	FILENAME ~ /modules\.builtin$/ { builtin[norm($1)] = 1; next }
	{
		p = $1; sub(/:$/, "", p)
		deps[p] = $0; sub(/^[^:]*:[ ]*/, "", deps[p])
		path[norm(p)] = p
	}
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			if (w[i] in path) visit(path[w[i]])
			else if (!(w[i] in builtin)) { print "MISSING " w[i]; exit 1 }
		}
	}' "$moddir/modules.builtin" "$moddir/modules.dep") ||
	die "$pkg: module missing from modules.dep: $(echo "$order" | grep MISSING)"

mkdir -p "$work/kit/modules"
: > "$work/kit/load-order"
for m in $order; do
	base=$(basename "$m")
	case $base in
	*.ko)     cp "$moddir/$m" "$work/kit/modules/$base" ;;
	*.ko.xz)  base=${base%.xz};  xz -dc "$moddir/$m" > "$work/kit/modules/$base" ;;
	*.ko.zst) base=${base%.zst}; zstd -qdc "$moddir/$m" > "$work/kit/modules/$base" ;;
	*.ko.gz)  base=${base%.gz};  gzip -dc "$moddir/$m" > "$work/kit/modules/$base" ;;
	*) die "$pkg: unexpected module file $m" ;;
	esac
	echo "$base" >> "$work/kit/load-order"
done
cp "$vmlinuz" "$work/kit/vmlinuz"
echo "$release" > "$work/kit/release"
echo "$pkg" > "$work/kit/package"
touch "$work/kit/ready"

# Only the small kit is kept, not the 400 MB module tree.
rm -rf "$kit"
mv "$work/kit" "$kit"
say "guest kernel $pkg ($release) prepared in $kit; modules: $(tr '\n' ' ' < "$kit/load-order")"
echo "$kit"
