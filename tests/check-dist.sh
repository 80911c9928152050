#!/bin/sh
# SPDX-License-Identifier: MIT
# What a distribution packages, checked without installing anything on the
# machine: the man pages lint clean; `make install` into a private prefix
# puts every file where it belongs, with a systemd unit that
# systemd-analyze verifies; a reader and a publisher written outside the
# tree build with pkg-config against that prefix, and the reader reads a
# live segment; `make uninstall` takes every file away again.
#   tests/check-dist.sh BUILD
set -u
build=$(cd "$1" && pwd)
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-dist.XXXXXX")
daemon=""
cleanup() {
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
bad() {
	echo "check-dist: $*"
	fail=1
}

# ---- man pages: mandoc and groff both say nothing ----
for page in "$build"/man/*.[0-9]; do
	out=$(mandoc -Tlint -W style "$page" 2>&1; groff -ww -z -man "$page" 2>&1)
	if [ -n "$out" ]; then
		bad "$(basename "$page") does not lint clean:"
		echo "$out" | sed 's/^/  /'
	fi
done
[ $fail -eq 0 ] && echo "ok   $(ls "$build"/man/*.[0-9] | wc -l) man pages lint clean (mandoc -Tlint -W style, groff -ww)"

# ---- install into a private prefix: every file, and only those ----
prefix=$tmp/prefix
if ! make -s --no-print-directory install BUILD="$build" PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
	bad "make install PREFIX=$prefix failed:"
	sed 's/^/  /' "$tmp/install.log"
	exit 1
fi
(cd "$prefix" && find . -type f -o -type l | sed 's|^\./||' | sort) >"$tmp/files"
cat >"$tmp/want" <<EOT
bin/kvmstats
bin/kvmstats-exporter
etc/default/kvmstats-exporter
etc/default/kvmstatsd
include/kvmstats/intake.h
include/kvmstats/publisher.h
include/kvmstats/reader.h
include/kvmstats/types.h
lib/kvmstats/libkvmstats-preload.so
lib/libkvmstats-publisher.a
lib/libkvmstats-publisher.so
lib/libkvmstats-publisher.so.1
lib/libkvmstats-publisher.so.1.0.0
lib/libkvmstats.a
lib/libkvmstats.so
lib/libkvmstats.so.1
lib/libkvmstats.so.1.0.0
lib/pkgconfig/kvmstats-publisher.pc
lib/pkgconfig/kvmstats.pc
lib/systemd/system/kvmstats-exporter.service
lib/systemd/system/kvmstatsd.service
lib/sysusers.d/kvmstats.conf
lib/tmpfiles.d/kvmstats.conf
sbin/kvmstatsd
share/doc/kvmstats/ABI.md
share/doc/kvmstats/INTAKE.md
share/doc/kvmstats/PRELOAD.md
share/doc/kvmstats/README.md
share/man/man1/kvmstats-exporter.1
share/man/man1/kvmstats.1
share/man/man3/libkvmstats-publisher.3
share/man/man3/libkvmstats.3
share/man/man8/kvmstats-preload.8
share/man/man8/kvmstatsd.8
EOT
if cmp -s "$tmp/want" "$tmp/files"; then
	echo "ok   make install: $(wc -l <"$tmp/files") files, each where it belongs"
else
	bad "make install put other files than expected (< missing, > extra):"
	diff "$tmp/want" "$tmp/files" | grep '^[<>]' | sed 's/^/  /'
fi
[ "$(readlink "$prefix/lib/libkvmstats.so.1")" = libkvmstats.so.1.0.0 ] ||
	bad "libkvmstats.so.1 does not point at libkvmstats.so.1.0.0"
"$prefix/bin/kvmstats" --version >/dev/null || bad "the installed kvmstats does not run"
"$prefix/bin/kvmstats-exporter" --version >/dev/null || bad "the installed kvmstats-exporter does not run"

# ---- the units: systemd-analyze verify says nothing (it runs man, too) ----
if command -v systemd-analyze >/dev/null 2>&1; then
	for unit in kvmstatsd.service kvmstats-exporter.service; do
		out=$(MANPATH=$prefix/share/man systemd-analyze verify \
			"$prefix/lib/systemd/system/$unit" 2>&1)
		rc=$?
		if [ $rc -ne 0 ] || [ -n "$out" ]; then
			bad "systemd-analyze verify $unit (exit $rc):"
			echo "$out" | sed 's/^/  /'
		else
			echo "ok   systemd-analyze verify $unit: no complaint"
		fi
	done
else
	bad "systemd-analyze is missing: make deps installs systemd"
fi

# ---- programs from outside the tree, built with pkg-config ----
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cp tests/dist/external_reader.c tests/dist/external_publisher.c "$tmp/"
# shellcheck disable=SC2046
if ! (cd "$tmp" && cc -std=c11 -Wall -Wextra -Werror -o reader external_reader.c \
	$(pkg-config --cflags --libs kvmstats) &&
      cc -std=c11 -Wall -Wextra -Werror -o publisher external_publisher.c \
	$(pkg-config --cflags --libs kvmstats-publisher) &&
      cc -std=c11 -Wall -Wextra -Werror -o reader-static external_reader.c \
	$(pkg-config --cflags kvmstats) "$prefix/lib/libkvmstats.a" \
	$(pkg-config --static --libs-only-other kvmstats)) >"$tmp/cc.log" 2>&1; then
	bad "an external program does not build with pkg-config:"
	sed 's/^/  /' "$tmp/cc.log"
else
	echo "ok   external reader and publisher build with pkg-config (shared and static)"
	mkdir -p "$tmp/shm"
	"$build/kvmstatsd" --simulate 2 --name dist-check --dir "$tmp/shm" --quiet \
		>"$tmp/daemon.log" 2>&1 &
	daemon=$!
	ok=""
	for _ in $(seq 1 200); do
		[ -e "$tmp/shm/kvmstats.dist-check" ] && ok=1 && break
		sleep 0.05
	done
	[ -n "$ok" ] || bad "kvmstatsd did not publish: $(cat "$tmp/daemon.log")"
	for r in reader reader-static; do
		if out=$(KVMSTATS_SHM_DIR=$tmp/shm LD_LIBRARY_PATH=$prefix/lib \
			"$tmp/$r" dist-check 2>&1); then
			echo "ok   $r: $out"
		else
			bad "the external $r failed: $out"
		fi
	done
	if out=$(KVMSTATS_SHM_DIR=$tmp/shm LD_LIBRARY_PATH=$prefix/lib "$tmp/publisher" 2>&1); then
		echo "ok   external publisher: $(echo "$out" | tr '\n' ' ')"
	else
		bad "the external publisher failed: $out"
	fi
	# It linked the installed libraries, not the build's.
	LD_LIBRARY_PATH=$prefix/lib ldd "$tmp/reader" | grep -q "$prefix/lib/libkvmstats.so.1" ||
		bad "the external reader did not link the installed libkvmstats.so.1"
	kill "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=""
fi

# ---- uninstall: no file of ours left ----
make -s --no-print-directory uninstall BUILD="$build" PREFIX="$prefix" >/dev/null 2>&1
left=$(find "$prefix" -type f -o -type l)
if [ -n "$left" ]; then
	bad "make uninstall left:"
	echo "$left" | sed 's/^/  /'
else
	echo "ok   make uninstall: nothing left"
fi
exit $fail
