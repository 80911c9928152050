#!/bin/sh
# SPDX-License-Identifier: MIT
# Golden tests of the kvmstats command.
#   tests/cli/run.sh BUILD
# Makes fixed segments with BUILD/tests/tools/ks_fixture in $KVMSTATS_SHM_DIR
# (else a temporary directory), runs BUILD/kvmstats on them and compares the
# output with tests/cli/golden/*; then checks error messages and exit codes.
# KVMSTATS_CLI_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full"
# runs every kvmstats command under that wrapper.
# UPDATE_GOLDEN=1 rewrites the golden files instead: review every diff
# against docs before committing them.
# Last line: "cli: N passed, N failed"; non-zero exit on any failure.
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
golden=$here/golden
kvmstats=$build/kvmstats
fixture=$build/tests/tools/ks_fixture
pass=0
fail=0

if [ ! -x "$kvmstats" ] || [ ! -x "$fixture" ]; then
	echo "cli: $kvmstats or $fixture missing: build them first"
	echo "cli: 0 passed, 1 failed"
	exit 1
fi

if [ -n "${KVMSTATS_SHM_DIR:-}" ]; then
	root=$KVMSTATS_SHM_DIR/cli-golden
	own_root=
else
	root=$(mktemp -d /dev/shm/kvmstats-cli.XXXXXX 2>/dev/null || mktemp -d)
	own_root=$root
fi
tmp=$(mktemp -d)
mkdir "$tmp/servers"
# Fixtures that stay live are served by a ks_fixture child each (--serve).
stop_servers() {
	for f in "$tmp"/servers/*; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
}
cleanup() {
	stop_servers
	rm -rf "$tmp"
	[ -n "$own_root" ] && rm -rf "$own_root"
	[ -z "$own_root" ] && rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Directories: two (x86 + formats + one unreadable file), one (x86 only),
# ended (x86, marked ended), empty; states (live, stale, dead, ended);
# planted (x86 and files anybody could plant: empty, forged names); links
# (a symbolic link); unreadable (only a planted file); nolive (dead, ended).
rm -rf "$root"
mkdir -p "$root/two" "$root/one" "$root/ended" "$root/empty" "$root/states" \
	"$root/planted" "$root/links" "$root/unreadable" "$root/nolive"
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

servers=0
make_fixture() {
	if ! "$fixture" --keep --dir "$@" >"$tmp/fixture.out" 2>&1; then
		bad "ks_fixture --dir $*: $(cat "$tmp/fixture.out")"
		echo "cli: $pass passed, $fail failed"
		exit 1
	fi
}
# A live one: its server holds the segment until the end (pid file first).
serve_fixture() {
	servers=$((servers + 1))
	make_fixture "$@" --serve "$tmp/servers/$servers"
}
serve_fixture "$root/two"
serve_fixture "$root/two" --mode formats
serve_fixture "$root/one"
make_fixture "$root/ended" --ended
serve_fixture "$root/states" --name kvm-live
serve_fixture "$root/states" --name kvm-stale --stale
make_fixture "$root/states" --name kvm-dead
make_fixture "$root/states" --name kvm-ended --ended
serve_fixture "$root/planted"
# Not a segment: list must show it with its error, not drop it.
printf 'garbage\n' >"$root/two/kvmstats.broken"
# What anybody can plant in /dev/shm: an empty segment, a name that would
# forge a row of "kvmstats list" and hide the rest, a name that is no UTF-8.
: >"$root/planted/kvmstats.zzz"
printf 'x' >"$root/planted/$(printf 'kvmstats.\rprod-db        4242  live\033[8m')"
: >"$root/planted/$(printf 'kvmstats.\377\376')"
ln -s "$root/one/kvmstats.kvm-4242" "$root/links/kvmstats.link"
: >"$root/unreadable/kvmstats.zzz"
: >"$root/unreadable/kvmstats.yyy"
make_fixture "$root/nolive" --name kvm-dead
make_fixture "$root/nolive" --name kvm-ended --ended

have_python=
command -v python3 >/dev/null 2>&1 && have_python=1

# Normalise what changes from run to run: pids and heartbeat ages.
normalise_list() {
	case $1 in
	*.json)	sed -E -e 's/"pid": [0-9]+/"pid": PID/' \
		       -e 's/"age-ms": [0-9]+/"age-ms": AGE/' \
		       -e 's/"sweep": [0-9]+/"sweep": SWEEP/' ;;
	*)	awk 'NR > 1 && !/  error: / { $2 = "PID"; $7 = "AGE" } { print }' ;;
	esac
}

# golden NAME DIR ARGS...: the output of "kvmstats ARGS" in DIR must equal
# golden/NAME, with exit status 0 and nothing on stderr.
golden() {
	name=$1
	dir=$2
	shift 2
	KVMSTATS_SHM_DIR=$dir ${KVMSTATS_CLI_WRAPPER:-} "$kvmstats" "$@" >"$tmp/raw" 2>"$tmp/err"
	rc=$?
	case $name in
	list*)	normalise_list "$name" <"$tmp/raw" >"$tmp/out" ;;
	*)	cp "$tmp/raw" "$tmp/out" ;;
	esac
	if [ $rc -ne 0 ] || [ -s "$tmp/err" ]; then
		bad "$name: kvmstats $* exited $rc: $(cat "$tmp/err")"
		return
	fi
	case $name in
	*.json)
		if [ -n "$have_python" ] &&
		   ! python3 -m json.tool <"$tmp/raw" >/dev/null 2>"$tmp/jerr"; then
			bad "$name: not valid JSON: $(cat "$tmp/jerr")"
			return
		fi ;;
	esac
	if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
		cp "$tmp/out" "$golden/$name"
		ok
		return
	fi
	if diff -u "$golden/$name" "$tmp/out" >"$tmp/diff" 2>&1; then
		ok
	else
		bad "$name: kvmstats $* differs from golden/$name:"
		cat "$tmp/diff"
	fi
}

# fails CODE PATTERN DIR ARGS...: exit status CODE, one line on stderr that
# starts with "kvmstats: " and contains PATTERN, nothing on stdout.
fails() {
	code=$1
	pattern=$2
	dir=$3
	shift 3
	KVMSTATS_SHM_DIR=$dir ${KVMSTATS_CLI_WRAPPER:-} "$kvmstats" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne "$code" ]; then
		bad "kvmstats $*: exit $rc, want $code ($(cat "$tmp/err"))"
	elif [ -s "$tmp/out" ]; then
		bad "kvmstats $*: printed on stdout: $(head -c 200 "$tmp/out")"
	elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q '^kvmstats: ' "$tmp/err"; then
		bad "kvmstats $*: want one 'kvmstats: ' line on stderr, got: $(cat "$tmp/err")"
	elif ! grep -qF -- "$pattern" "$tmp/err"; then
		bad "kvmstats $*: stderr lacks '$pattern': $(cat "$tmp/err")"
	else
		ok
	fi
}

# helps ARGS...: exit 0 with a usage text on stdout.
helps() {
	if "$kvmstats" "$@" >"$tmp/out" 2>"$tmp/err" && grep -q '^Usage: kvmstats' "$tmp/out" &&
	   [ ! -s "$tmp/err" ]; then
		ok
	else
		bad "kvmstats $*: no usage text with exit 0"
	fi
}

two=$root/two
one=$root/one
x86=kvm-4242
fmt=kvm-formats

# ---- list
golden list.txt "$two" list
golden list.json "$two" list --json
golden list-empty.txt "$root/empty" list
golden list-dir.txt /nonexistent list --dir "$one"
golden list-states.txt "$root/states" list
golden list-states.json "$root/states" list --json
golden list-planted.txt "$root/planted" list
golden list-planted.json "$root/planted" list --json
# Escaped: not one control byte of the planted names reaches the terminal.
KVMSTATS_SHM_DIR=$root/planted "$kvmstats" list >"$tmp/out" 2>&1
if LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" "$tmp/out"; then
	bad "list printed a control byte of a planted name"
else
	ok
fi

# ---- schema
golden schema-x86.json "$two" schema $x86
golden schema-x86.json "$one" schema
golden schema-x86.json "$one" --dir "$one" schema
golden schema-formats.json "$two" schema $fmt
golden schema-formats-synth.json "$two" schema $fmt --provider synth

# ---- query
golden query-x86-vm.json "$two" query $x86 --target vm
golden query-x86-vm-names.json "$two" query $x86 --target vm \
	--names max_mmu_page_hash_collisions,pages_4k,no_such_stat,max_mmu_rmap_size
golden query-x86-vcpu.json "$two" query $x86 --target vcpu
golden query-x86-vcpu1.json "$two" query $x86 --target vcpu \
	--vcpus '/machine/unattached/device[1]' --names exits,guest_mode,halt_wait_hist,blocking,nope
golden query-x86-vcpu-index.json "$two" query $x86 -t vcpu --vcpus 0 -n exits,halt_poll_fail_ns -p kvm
golden query-nothing.json "$two" query $x86 --target vcpu --names ''
golden query-nothing.json "$two" query $x86 --target vcpu --vcpus ''
golden query-nothing.json "$two" query $x86 --target vm --names nope,none
golden query-formats-vm.json "$two" query $fmt --target vm
golden query-formats-vcpu.json "$two" query $fmt --target vcpu --provider kvm
golden query-formats-vcpu-id.json "$two" query $fmt --target vcpu --vcpus 4,formats/vcpu-4 \
	--names steal_kcycles

# ---- info
golden info-x86-vm.txt "$two" info $x86 vm
golden info-x86-vcpu.txt "$two" info $x86 vcpu
golden info-x86-vcpu-names.txt "$two" info $x86 vcpu halt_poll_fail_ns,exits,guest_mode kvm
golden info-x86-vcpu1.txt "$two" info $x86 vcpu 'exits,halt_wait_hist' --vcpu 1
golden info-x86-vcpu1.txt "$two" info $x86 vcpu 'exits,halt_wait_hist' \
	--vcpu '/machine/unattached/device[1]'
golden info-formats-vm.txt "$two" info $fmt vm
golden info-formats-vm-synth.txt "$two" info $fmt vm '*' synth
golden info-formats-vcpu.txt "$two" info $fmt vcpu
golden info-one.txt "$one" info vm pages_4k,pages_2m
golden info-one.txt "$one" info --vm $x86 vm pages_4k,pages_2m
# Planted files that do not attach are no choice: still the only VM.
golden info-one.txt "$root/planted" info vm pages_4k,pages_2m
# Of live, stale, dead and ended, only the live one is a choice.
golden info-one.txt "$root/states" info vm pages_4k,pages_2m
golden info-one.txt "$root/states" info kvm-live vm pages_4k,pages_2m

# ---- stale, dead: refused, or with --stale-ok shown and said so
# stale_ok NAME: exit 0, the values of a live one, one warning on stderr.
stale_ok() {
	KVMSTATS_SHM_DIR=$root/states "$kvmstats" info "$1" vm pages_4k,pages_2m --stale-ok \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ]; then
		bad "info $1 --stale-ok: exit $rc: $(cat "$tmp/err")"
	elif ! diff -u "$golden/info-one.txt" "$tmp/out" >"$tmp/diff"; then
		bad "info $1 --stale-ok: values differ:"; cat "$tmp/diff"
	elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q "^kvmstats: info: warning: VM '$1' $2" "$tmp/err"; then
		bad "info $1 --stale-ok: want one warning '$2', got: $(cat "$tmp/err")"
	else
		ok
	fi
}
stale_ok kvm-stale "is stale"
stale_ok kvm-dead "is dead"
stale_ok kvm-ended "has ended"

# ---- a segment truncated under the reader: an error, not a crash
# gdb stops kvmstats after it attached and checked the segment, before it
# reads the values (ks_cli_read_cut); the segment's owner shrinks it to its
# first page (header and schema), and kvmstats goes on.  SIGBUS passes to
# kvmstats' own handler.
if command -v gdb >/dev/null 2>&1; then
	mkdir -p "$root/shrink"
	serve_fixture "$root/shrink" --name kvm-shrink
	KVMSTATS_SHM_DIR=$root/shrink gdb -q -batch -nx -ex 'set breakpoint pending on' \
		-ex 'handle SIGBUS nostop noprint pass' -ex 'break ks_cli_read_cut' -ex run \
		-ex "shell truncate -s 4096 '$root/shrink/kvmstats.kvm-shrink'" -ex continue \
		--args "$kvmstats" info kvm-shrink vm >"$tmp/out" 2>&1
	if grep -q "exited with code 01" "$tmp/out" &&
	   grep -q "kvmstats: info: VM 'kvm-shrink': its segment was truncated under this reader" \
		"$tmp/out" && ! grep -q "pages_4k" "$tmp/out"; then
		ok
	else
		bad "kvmstats info on a segment truncated under it:"; cat "$tmp/out"
	fi
else
	bad "gdb is missing (make deps installs it): the truncation test cannot run"
fi

# ---- a slot of the newest sweep that stays odd: not blamed on lapping
mkdir -p "$root/odd"
serve_fixture "$root/odd" --name kvm-odd --stale --odd
KVMSTATS_SHM_DIR=$root/odd "$kvmstats" query kvm-odd --target vm --stale-ok >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ ! -s "$tmp/out" ] &&
   tail -n 1 "$tmp/err" | grep -q "a slot of sweep 1 stays half-written: its publisher stopped"; then
	ok
else
	bad "query of a slot that stays odd: exit $rc: $(cat "$tmp/err")"
fi

# ---- errors: runtime (1)
fails 1 "'nope'" "$two" query nope --target vm
fails 1 "'nope'" "$two" info nope vm
fails 1 "no VM segments" "$root/empty" schema
fails 1 "has ended" "$root/ended" query --target vm
fails 1 "has ended" "$root/ended" info vm
fails 1 "no vCPU 'device[7]'" "$two" query $x86 --target vcpu --vcpus 'device[7]'
fails 1 "no vCPU '9'" "$two" query $x86 --target vcpu --vcpus 0,9
fails 1 "no vCPU '2'" "$two" info $x86 vcpu --vcpu 2
fails 1 "no provider 'xen'" "$two" query $x86 --target vm --provider xen
fails 1 "no provider 'xen'" "$two" schema $x86 --provider xen
fails 1 "no provider 'xen'" "$two" info $x86 vm '*' xen
fails 1 "no vcpu stat 'exitz'" "$two" info $x86 vcpu exits,exitz
fails 1 "no vm stat 'exits'" "$two" info $x86 vm exits
fails 1 "VM 'kvm-4242'" "$one" --owner 4242 schema
fails 1 "is stale: its publisher" "$root/states" query kvm-stale --target vm
fails 1 "is dead: its publisher" "$root/states" info kvm-dead vm
fails 1 "--stale-ok shows its last values" "$root/states" info kvm-dead vm
fails 1 "has ended" "$root/states" query kvm-ended --target vcpu
fails 1 "shorter than the 256-byte header" "$root/planted" info zzz vm
fails 1 "no VM segment in" "$root/unreadable" info vm
fails 1 "symbolic link: refused" "$root/links" info link vm
if grep -q -- "--owner" "$tmp/err"; then bad "a symbolic link is no owner problem"; else ok; fi
fails 1 "no live VM in" "$root/nolive" info vm

# ---- errors: usage (2)
fails 2 "kvm-4242, kvm-formats" "$two" query --target vm
fails 2 "--target 'cpu'" "$two" query $x86 --target cpu
fails 2 "--target vm|vcpu is required" "$two" query $x86
fails 2 "TARGET 'cpu'" "$two" info $x86 cpu
fails 2 "TARGET (vm or vcpu) is required" "$two" info $x86
fails 2 "--vcpus needs --target vcpu" "$two" query $x86 --target vm --vcpus 0
fails 2 "--vcpu needs TARGET vcpu" "$two" info $x86 vm --vcpu 0
fails 2 "empty name" "$two" query $x86 --target vm --names 'a,,b'
fails 2 "empty name" "$two" info $x86 vm 'a,'
fails 2 "empty vCPU" "$two" query $x86 --target vcpu --vcpus ','
fails 2 "unexpected argument 'extra'" "$two" info $x86 vm '*' kvm extra
fails 2 "unexpected argument 'extra'" "$two" query $x86 extra --target vm
fails 2 "unexpected argument 'x'" "$two" list x
fails 2 "--owner 'abc'" "$two" --owner abc list
fails 2 "--owner '-1'" "$two" list --owner -1
fails 2 "--owner '4294967295'" "$two" list --owner 4294967295
fails 2 "--owner '99999999999999999999'" "$two" list --owner 99999999999999999999
fails 2 "--owner ' 1'" "$two" list --owner ' 1'
fails 2 "unknown option '--bogus'" "$two" query --bogus
fails 2 "unknown option '-x'" "$two" -x list
fails 2 "needs a value" "$two" query $x86 --target
fails 2 "unknown command 'frobnicate'" "$two" frobnicate
fails 2 "no command given" "$two"
fails 2 "VM 'a/b' contains '/'" "$two" info a/b vm
fails 2 "VM '.hidden' starts with '.'" "$two" query .hidden --target vm
fails 2 "VM 'kvmstats.' is empty" "$two" schema kvmstats.
fails 2 "4 VMs in" "$root/states" info vm --stale-ok

# ---- help and version
helps --help
helps -h
for c in list schema query info; do
	helps $c --help
	helps $c -h
done
if "$kvmstats" --version | grep -q '^kvmstats [0-9]'; then ok; else bad "--version"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
