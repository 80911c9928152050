#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the binary packages (tools/debian/, debhelper) from a copy of the
# source, under BUILD/deb, and check them with lintian.
#   tools/make-deb.sh BUILD VERSION
# Leaves BUILD/deb/*.deb, the .changes and lintian.txt; exits non-zero if
# the build fails or lintian reports an error.  The source tree is not
# touched: dpkg-buildpackage runs in BUILD/deb/kvmstats-VERSION, which holds
# the files git knows (tracked or new, not ignored) and tools/debian as
# debian/ (the top level of the tree has no debian/ of its own).
set -eu
build=$1
version=$2
out=$build/deb
stage=$out/kvmstats-$version
rm -rf "$out"
mkdir -p "$stage"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 cp --parents -t "$stage" 2>/dev/null ||
		{ echo "make-deb: copying the source failed" >&2; exit 1; }
	# Deleted but not yet committed: cp skipped them (and said so); nothing else.
else
	tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$stage"
fi
rm -rf "$stage/build"
cp -r tools/debian "$stage/debian"
# dh_installsysusers and dh_installtmpfiles install these and run them in
# postinst (the service's user, /run/kvmstats); make install's copies are
# not packaged (debian/not-installed).
cp publisher/daemon/kvmstats.sysusers "$stage/debian/kvmstats.sysusers"
cp publisher/daemon/kvmstats.tmpfiles "$stage/debian/kvmstats.tmpfiles"
# The version is the Makefile's (its one place); the date the last commit's.
when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
cat >"$stage/debian/changelog" <<EOT
kvmstats ($version) unstable; urgency=medium

  * Packaged from the source tree; its history is the git log.

 -- kvmstats maintainers <maintainers@kvmstats.example.org>  $(date -u -R -d "@$when")
EOT
root=""
[ "$(id -u)" -ne 0 ] && root="-rfakeroot"
echo "make-deb: dpkg-buildpackage in $stage"
(cd "$stage" && dpkg-buildpackage -b -us -uc $root) >"$out/build.log" 2>&1 || {
	echo "make-deb: dpkg-buildpackage failed; the end of $out/build.log:" >&2
	tail -30 "$out/build.log" >&2
	exit 1
}
ls "$out"/*.deb
changes=$(ls "$out"/kvmstats_"$version"_*.changes)
# Every tag lintian knows, pedantic included, so nothing is left unseen.
lintian --info --display-info --pedantic "$changes" >"$out/lintian.txt" 2>&1 || true
echo "make-deb: lintian: $(grep -c '^E:' "$out/lintian.txt") errors," \
	"$(grep -c '^W:' "$out/lintian.txt") warnings," \
	"$(grep -c '^I:' "$out/lintian.txt") info, $(grep -c '^P:' "$out/lintian.txt") pedantic" \
	"($out/lintian.txt)"
grep '^[EW]:' "$out/lintian.txt" || true
if grep -q '^E:' "$out/lintian.txt"; then
	echo "make-deb: lintian reports errors" >&2
	exit 1
fi
