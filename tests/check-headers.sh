#!/bin/sh
# SPDX-License-Identifier: MIT
# Every public header compiles on its own, first in a translation unit,
# as C99, C11 and C++11 (pedantic, warnings as errors): a program in any
# of them can include it without another header before it.
#   tests/check-headers.sh [CC [CXX]]
set -u
cc=${1:-cc}
cxx=${2:-c++}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-headers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
n=0
for h in include/kvmstats/*.h; do
	name=${h#include/}
	printf '#include <%s>\nint main(void) { return 0; }\n' "$name" >"$tmp/t.c"
	cp "$tmp/t.c" "$tmp/t.cpp"
	for lang in c99 c11 c++11; do
		case $lang in
		c++*)	set -- "$cxx" -std=$lang -x c++ "$tmp/t.cpp" ;;
		*)	set -- "$cc" -std=$lang "$tmp/t.c" ;;
		esac
		n=$((n + 1))
		if ! "$@" -pedantic -Wall -Wextra -Werror -Iinclude -c -o "$tmp/t.o" \
			>"$tmp/out" 2>&1; then
			echo "check-headers: $name does not compile alone as $lang:"
			sed 's/^/  /' "$tmp/out"
			fail=1
		fi
	done
done
[ $fail -eq 0 ] && echo "ok   $n compiles: every public header alone, as C99, C11 and C++11"
exit $fail
