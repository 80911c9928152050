#!/bin/sh
# SPDX-License-Identifier: MIT
# Each shared library exports exactly the functions its public headers
# declare, no fewer and no other symbol (issue 8: a program linked
# against an internal symbol breaks on any change).
#   tests/check-exports.sh BUILD
set -u
build=$1
fail=0

# The functions a header declares: declarations start at column 0.
declared() {
	for h in "$@"; do
		grep -E '^[a-z].*\bkvmstats_[a-z0-9_]+\(' "include/kvmstats/$h" |
			sed -E 's/.*\b(kvmstats_[a-z0-9_]+)\(.*/\1/'
	done | sort -u
}

# What a library exports, less its version nodes (absolute symbols).
exported() {
	nm -D --defined-only "$1" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' | sort -u
}

check() {
	lib=$1
	shift
	if [ ! -f "$lib" ]; then
		echo "check-exports: $lib is missing: build it first (make)"
		fail=1
		return
	fi
	declared "$@" >"$tmp/want"
	exported "$lib" >"$tmp/got"
	if ! cmp -s "$tmp/want" "$tmp/got"; then
		echo "check-exports: $lib: exports differ from include/kvmstats/{$*}"
		echo "  (< declared but not exported, > exported but not declared)"
		diff "$tmp/want" "$tmp/got" | grep '^[<>]' | sed 's/^/  /'
		fail=1
	else
		echo "ok   $lib: $(wc -l <"$tmp/got") symbols, exactly those of $*"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
check "$build/libkvmstats.so.1" types.h reader.h
check "$build/libkvmstats-publisher.so.1" publisher.h intake.h
# The shim shows a VMM nothing but the function it wraps.
if [ "$(exported "$build/libkvmstats-preload.so" | tr '\n' ' ')" = "ioctl " ]; then
	echo "ok   $build/libkvmstats-preload.so: ioctl only"
else
	echo "check-exports: $build/libkvmstats-preload.so exports more than ioctl:"
	exported "$build/libkvmstats-preload.so" | sed 's/^/  /'
	fail=1
fi
exit $fail
