#!/bin/sh
# SPDX-License-Identifier: MIT
# The shared libraries' ABI against the baseline checked in under
# tests/abi-baseline/ (abidw dumps of the public types and functions, as
# liburcu keeps): any difference fails, so an ABI change is always on
# purpose.  After one (a new symbol version node, or a new SONAME), make
# the new baseline with `make abi-baseline` and commit it with the change.
#   tests/check-abi.sh BUILD [update]
set -u
build=$1
mode=${2:-check}
libs="libkvmstats.so.1 libkvmstats-publisher.so.1"
if ! command -v abidw >/dev/null 2>&1; then
	echo "check-abi: abidw is missing: make deps installs abigail-tools"
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
for lib in $libs; do
	# Only what include/kvmstats/ declares; no build paths in the dump.
	if ! abidw --headers-dir include/kvmstats --drop-private-types --no-corpus-path \
		--out-file "$tmp/$lib.abi" "$build/$lib"; then
		echo "check-abi: abidw failed on $build/$lib"
		fail=1
		continue
	fi
	if [ "$mode" = update ]; then
		mkdir -p tests/abi-baseline
		cp "$tmp/$lib.abi" "tests/abi-baseline/$lib.abi"
		echo "abi-baseline: wrote tests/abi-baseline/$lib.abi"
		continue
	fi
	abidiff "tests/abi-baseline/$lib.abi" "$tmp/$lib.abi" >"$tmp/diff" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok   $lib: the ABI of tests/abi-baseline/$lib.abi"
	else
		# abidiff's exit status is a bit mask: 4 an ABI change, 8 an incompatible one.
		echo "check-abi: $lib differs from tests/abi-baseline/$lib.abi (abidiff $rc):"
		sed 's/^/  /' "$tmp/diff"
		echo "  if this is on purpose, run 'make abi-baseline' and commit the new baseline"
		fail=1
	fi
done
exit $fail
