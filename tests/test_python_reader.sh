#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-check the independent Python reader (tests/abi_reader.py, written
# from docs/ABI.md alone) against segments it did not make:
#
#   1. segments built in Python by a small writer that follows docs/ABI.md
#      (schema, a hole in the record, histograms, a stale slot, a minor
#      version with larger entries): every value and schema field as written;
#   2. corrupted copies of such a segment and of a C-made one: exit 2;
#      copies with a stat of a type, unit or base that 1.0 does not define
#      (a later minor version's): that stat is skipped, the rest is read,
#      and the C CLI agrees;
#   3. when the C tools are built: segments made by the C publisher (the
#      ks_fixture test tool, both modes, and a live kvmstatsd --simulate),
#      and the Python-written ones, dumped by abi_reader.py and by
#      "kvmstats query/schema"; every value and schema field must agree.
#
#   tests/test_python_reader.sh [BUILD]       (BUILD defaults to "build")
#
# The last line is "python-reader: N passed, N failed"; the exit status is
# non-zero if anything failed.  Without python3 the test is skipped.
set -u
build=${1:-build}

if ! command -v python3 >/dev/null 2>&1; then
	echo "skipped: python3 is missing"
	echo "python-reader: 0 passed, 0 failed"
	exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
reader="$here/abi_reader.py"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmstats-pyreader.XXXXXX")
shm=$(mktemp -d /dev/shm/kvmstats-pyreader.XXXXXX 2>/dev/null || mktemp -d "$work/shm.XXXXXX")
daemon=""
cleanup() {
	if [ -n "$daemon" ]; then
		kill -CONT "$daemon" 2>/dev/null	# a stopped daemon would never exit
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	rm -rf "$work" "$shm"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

# ---- helpers in Python --------------------------------------------------

# A segment writer that follows docs/ABI.md (not the C code).
cat >"$work/writer.py" <<'EOF'
import json, struct, sys

def rup(x, a):
    return (x + a - 1) // a * a

# name, type, unit, base, exponent, size, bucket_size, value_index
VM_STATS = [("remote_tlb_flush", 0, 0, 10, 0, 1, 0, 0),
            ("pages_4k", 1, 0, 10, 0, 1, 0, 1),
            ("max_mmu_rmap_size", 2, 0, 10, 0, 1, 0, 3)]          # word 2 is a hole
VCPU_STATS = [("exits", 0, 0, 10, 0, 1, 0, 12),
              ("halt_wait_ns", 0, 2, 10, -9, 1, 0, 13),
              ("guest_mode", 1, 4, 10, 0, 1, 0, 14),
              ("halt_wait_hist", 4, 2, 10, -9, 8, 0, 0),
              ("mem_hist", 3, 1, 2, 10, 4, 16, 8)]
TARGETS = [(0, 0xffffffff, "", "kvm-77", VM_STATS, 4),
           (1, 0, "/machine/cpu[0]", "kvm-77/vcpu-0", VCPU_STATS, 15),
           (1, 2, "/machine/cpu[2]", "kvm-77/vcpu-2", VCPU_STATS, 15)]
DEPTH, LAST = 4, 6

def value(s, t, i, unit):
    return (s % 2) if unit == 4 else s * 1000 + t * 100 + i

def build(variant):
    ext = variant == "extended"
    pe, te, se = (24, 80, 40) if ext else (16, 64, 32)
    hsize = 320 if ext else 256
    strings = bytearray()
    def put(s):
        off = len(strings)
        strings.extend(s.encode() + b"\0")
        return off, len(s.encode())
    vm_name = put("kvm-77")
    # ABI 1.2's note; the extended segment (minor 7) carries one.
    note = put("a note from the publisher: caf\u00e9") if ext else (0, 0)
    prov = [put("kvm")]
    tents, sents, ranges = [], [], {}
    for kind, idx, label, ident, stats, words in TARGETS:
        lo, io = put(label), put(ident)
        if id(stats) not in ranges:
            ranges[id(stats)] = len(sents)
            for st in stats:
                sents.append((put(st[0]),) + st[1:])
        tents.append((kind, idx, lo, io, ranges[id(stats)], len(stats), words))
    providers_off = hsize
    targets_off = rup(providers_off + pe * len(prov), 64)
    stats_off = rup(targets_off + te * len(tents), 64)
    strings_off = rup(stats_off + se * len(sents), 64)
    data_off = rup(strings_off + len(strings), 4096)
    # Frames (ABI.md section 6): slot k of every target side by side; the
    # extended segment leaves a gap after each slot, which readers must
    # take from the declared offsets.
    rings, frame = [], 0
    for t in tents:
        rings.append(data_off + frame)
        frame += rup(32 + 8 * t[6], 64) + (64 if ext else 0)
    strides = [frame] * len(tents)
    size = data_off + DEPTH * frame
    b = bytearray(size)
    nonzero = 0xA5 if ext else 0
    b[0:8] = b"KVMSTATS"
    struct.pack_into("=HHI", b, 8, 1, 7 if ext else 1, hsize)
    struct.pack_into("=IQiIQQQ", b, 20, 0x01020304, size, 4242,
                     0x80000000 if ext else 0, 1111, 3, 5)
    struct.pack_into("=QIIIIIIIIIHHHHIQ", b, 64, 10000000, DEPTH, len(prov),
                     len(tents), len(sents), providers_off, targets_off, stats_off,
                     strings_off, len(strings), pe, te, se, nonzero, vm_name[0], data_off)
    struct.pack_into("=QII", b, 128, size - data_off, vm_name[1], 1)
    if ext:
        struct.pack_into("=II", b, 144, note[0], note[1])
        b[152:192] = b"\x5a" * 40
        b[224:hsize] = b"\x5a" * (hsize - 224)
    for i, (o, l) in enumerate(prov):
        struct.pack_into("=II", b, providers_off + i * pe, o, l)
        if ext:
            b[providers_off + i * pe + 8:providers_off + (i + 1) * pe] = b"\x5a" * (pe - 8)
    for i, t in enumerate(tents):
        e = targets_off + i * te
        struct.pack_into("=IIIIIIIIIIQ", b, e, t[0], t[1], t[2][0], t[2][1], t[3][0],
                         t[3][1], t[4], t[5], t[6], strides[i], rings[i])
        if ext:
            b[e + 48:e + te] = b"\x5a" * (te - 48)
    for i, s in enumerate(sents):
        e = stats_off + i * se
        (no, nl), typ, unit, base, exp, sz, bs, vi = s
        struct.pack_into("=IIHBBBxhHxxII", b, e, no, nl, 0, typ, unit, base, exp, sz, bs, vi)
        if ext:
            b[e + 13] = 1
            b[e + 28:e + se] = b"\x5a" * (se - 28)
    b[strings_off:strings_off + len(strings)] = strings
    # Sweeps 1..LAST, every target in each, seq odd/even as a real writer leaves it.
    expect = {"vm": "kvm-77", "generation": 3, "sweep": LAST, "targets": []}
    for s in range(1, LAST + 1):
        for ti, t in enumerate(tents):
            slot = rings[ti] + (s % DEPTH) * strides[ti]
            seq = struct.unpack_from("=Q", b, slot)[0]
            words = [0] * t[6]
            stats = TARGETS[ti][4]
            for st in stats:
                for k in range(st[5]):
                    words[st[7] + k] = value(s, ti, st[7] + k, st[2])
            flags = 1 if (s == LAST and ti == 2) else 0
            if ext:
                flags |= 1 << 5
            struct.pack_into("=QQQQ%dQ" % t[6], b, slot, seq + 2, s, 1000 + s, flags, *words)
    struct.pack_into("=QQQQ", b, 192, LAST, 1000 + LAST, 0, 1)
    for ti, (kind, idx, label, ident, stats, words) in enumerate(TARGETS):
        out = []
        for st in stats:
            v = [value(LAST, ti, st[7] + k, st[2]) for k in range(st[5])]
            v = v if st[5] > 1 else (bool(v[0]) if st[2] == 4 else v[0])
            typ = ["cumulative", "instant", "peak", "linear-histogram", "log2-histogram"][st[1]]
            unit = [None, "bytes", "seconds", "cycles", "boolean"][st[2]]
            out.append({"name": st[0], "provider": "kvm", "type": typ, "unit": unit,
                        "base": st[3], "exponent": st[4], "size": st[5],
                        "bucket_size": st[6], "value": v})
        expect["targets"].append({"kind": ["vm", "vcpu"][kind],
                                  "vcpu_index": None if kind == 0 else idx,
                                  "label": label, "id": ident, "stats": out,
                                  "stale": ti == 2})
    if variant == "notready":
        struct.pack_into("=I", b, 16, 0)
    else:
        struct.pack_into("=I", b, 16, 0x59444552)
    if variant == "nosweep":
        struct.pack_into("=Q", b, 192, 0)
    if variant == "writing":        # the newest slot of vCPU 0 stays odd
        slot = rings[1] + (LAST % DEPTH) * strides[1]
        struct.pack_into("=Q", b, slot, struct.unpack_from("=Q", b, slot)[0] + 1)
    return bytes(b), expect

data, expect = build(sys.argv[2])
open(sys.argv[1], "wb").write(data)
json.dump(expect, open(sys.argv[3], "w"))
EOF

# Compare a dump with what the writer wrote.
cat >"$work/check_expect.py" <<'EOF'
import json, sys
got, exp = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = []
for k in ("vm", "generation", "sweep"):
    if got[k] != exp[k]:
        bad.append("%s: %r != %r" % (k, got[k], exp[k]))
if got["providers"] != ["kvm"]:
    bad.append("providers %r" % got["providers"])
# Written by a process that is gone, holding no liveness lock (ABI.md 11.1).
if got["health"] != "dead":
    bad.append("health %r, not dead" % got["health"])
if len(got["targets"]) != len(exp["targets"]):
    bad.append("targets: %d != %d" % (len(got["targets"]), len(exp["targets"])))
for g, e in zip(got["targets"], exp["targets"]):
    for k in ("kind", "vcpu_index", "label", "id"):
        if g[k] != e[k]:
            bad.append("target %s %s: %r != %r" % (e["id"], k, g[k], e[k]))
    if g["sample"]["stale"] != e["stale"]:
        bad.append("target %s stale %r" % (e["id"], g["sample"]["stale"]))
    if g["stats"] != e["stats"]:
        bad.append("target %s stats differ:\n  got %s\n  exp %s" % (e["id"], g["stats"], e["stats"]))
    if [h["sweep"] for h in g.get("history", [])] != [6, 5, 4]:
        bad.append("target %s history %r" % (e["id"], g.get("history")))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
EOF

# Corrupt a copy of a segment in one documented way.
cat >"$work/corrupt.py" <<'EOF'
import struct, sys
src, dst, kind = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
H = dict(zip("ring_depth nr_providers nr_targets nr_stats providers_off targets_off "
             "stats_off strings_off strings_size pe te se".split(),
             struct.unpack_from("=IIIIIIIIIHHH", b, 72)))
seg, data_off = struct.unpack_from("=Q", b, 24)[0], struct.unpack_from("=Q", b, 120)[0]
tgt = lambda i: H["targets_off"] + i * H["te"]
stat = lambda i: H["stats_off"] + i * H["se"]
def put(fmt, off, v):
    struct.pack_into("=" + fmt, b, off, v)
if kind == "truncated":
    del b[len(b) - 64:]
elif kind == "short-header":
    del b[200:]
elif kind == "magic":
    b[7:8] = b"X"
elif kind == "major":
    put("H", 8, 2)
elif kind == "endian":
    put("I", 20, 0x04030201)
elif kind == "not-ready":
    put("I", 16, 0)
elif kind == "segment-size":
    put("Q", 24, seg + 4096)
elif kind == "data-off-unaligned":
    put("Q", 120, data_off - 8)
elif kind == "header-size":
    put("I", 12, 128)
elif kind == "ring-depth":
    put("I", 72, 1)
elif kind == "strings-oob":
    put("I", 100, seg)
elif kind == "stats-table-oob":
    put("I", 84, 1 << 20)
elif kind == "entry-size":
    put("H", 110, 32)
elif kind == "vm-name-oob":
    put("I", 116, H["strings_size"])
elif kind == "vm-name-no-nul":
    name_off, name_len = struct.unpack_from("=I", b, 116)[0], struct.unpack_from("=I", b, 136)[0]
    b[H["strings_off"] + name_off + name_len] = ord("x")
elif kind == "stat-name-oob":
    put("I", stat(0), H["strings_size"] - 1)
elif kind == "stat-provider":
    put("H", stat(0) + 8, 9)
elif kind == "stat-type":          # skipped, not refused (ABI.md 5.3)
    put("B", stat(0) + 10, 9)
elif kind == "stat-unit":
    put("B", stat(0) + 11, 9)
elif kind == "stat-base":
    put("B", stat(0) + 12, 3)
elif kind == "unknown-name-oob":   # unknown stats are still checked
    put("B", stat(0) + 10, 9)
    put("I", stat(0), H["strings_size"] - 1)
elif kind == "unknown-provider":
    put("B", stat(0) + 11, 9)
    put("H", stat(0) + 8, 9)
elif kind == "unknown-size":
    put("B", stat(0) + 12, 3)
    put("H", stat(0) + 16, 0)
elif kind == "unknown-value-index-oob":
    put("B", stat(0) + 10, 9)
    put("I", stat(0) + 24, 100000)
elif kind == "unknown-dup":        # stat 1 takes stat 0's provider and name
    b[stat(1):stat(1) + 10] = b[stat(0):stat(0) + 10]
    put("B", stat(1) + 10, 9)
elif kind == "stat-size":
    put("H", stat(0) + 16, 0)
elif kind == "stat-bucket":
    put("I", stat(0) + 20, 8)
elif kind == "value-index-oob":
    put("I", stat(0) + 24, 100000)
elif kind == "target-kind":
    put("I", tgt(0), 5)
elif kind == "target-vcpu-index":
    put("I", tgt(0) + 4, 0)
elif kind == "target-stats-oob":
    put("I", tgt(0) + 24, H["nr_stats"])
elif kind == "ring-oob":
    put("Q", tgt(H["nr_targets"] - 1) + 40, seg - 64)
elif kind == "ring-unaligned":
    put("Q", tgt(0) + 40, struct.unpack_from("=Q", b, tgt(0) + 40)[0] + 8)
elif kind == "ring-overlap":
    put("Q", tgt(1) + 40, struct.unpack_from("=Q", b, tgt(0) + 40)[0])
elif kind == "stride-small":
    put("I", tgt(1) + 36, 64)
elif kind == "stride-differs":     # still room for the slot, but not the frame
    put("I", tgt(1) + 36, struct.unpack_from("=I", b, tgt(1) + 36)[0] - 64)
elif kind == "frames-short":       # one frame fewer than the data section holds
    put("I", 72, H["ring_depth"] - 1)
elif kind == "state":
    put("I", 140, 7)
elif kind == "state-building":     # not ready behind an open gate (1.1)
    put("I", 140, 0)
elif kind == "label-ctrl":         # strings are printable text (1.1)
    lo = struct.unpack_from("=I", b, tgt(1) + 8)[0]
    b[H["strings_off"] + lo] = 0x1B
elif kind == "name-utf8":
    b[H["strings_off"] + struct.unpack_from("=I", b, stat(0))[0]] = 0xFF
elif kind == "provider-bidi":      # "kvm" -> U+202E (three bytes)
    po = struct.unpack_from("=I", b, H["providers_off"])[0]
    b[H["strings_off"] + po:H["strings_off"] + po + 3] = b"\xe2\x80\xae"
elif kind == "two-vms":            # at most one VM target (1.1)
    put("I", tgt(1), 0)
    put("I", tgt(1) + 4, 0xFFFFFFFF)
elif kind == "dup-vcpu":           # unique vCPU indices (1.1)
    put("I", tgt(2) + 4, struct.unpack_from("=I", b, tgt(1) + 4)[0])
else:
    sys.exit("unknown corruption " + kind)
open(dst, "wb").write(b)
EOF

# A dump of a copy whose stat 0 has a type, unit or base 1.0 does not
# define: exactly that stat is gone from the targets whose range holds it.
cat >"$work/check_skip.py" <<'EOF'
import json, struct, sys
ref, got = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
b = open(sys.argv[3], "rb").read()
nr_targets, _, prov_off, tgt_off, stats_off, str_off = struct.unpack_from("=IIIIII", b, 80)
pe, te = struct.unpack_from("=HH", b, 108)
name_off, name_len, prov = struct.unpack_from("=IIH", b, stats_off)
pname_off, pname_len = struct.unpack_from("=II", b, prov_off + prov * pe)
name = b[str_off + name_off:str_off + name_off + name_len].decode()
pname = b[str_off + pname_off:str_off + pname_off + pname_len].decode()
bad, gone = [], 0
for t, (r, g) in enumerate(zip(ref["targets"], got["targets"])):
    first, count = struct.unpack_from("=II", b, tgt_off + t * te + 24)
    want = r["stats"]
    if first == 0 and count > 0:
        want = [s for s in want if (s["provider"], s["name"]) != (pname, name)]
        gone += len(r["stats"]) - len(want)
    if g["stats"] != want:
        bad.append("target %d: stats differ from the reference less %s/%s" % (t, pname, name))
if len(ref["targets"]) != len(got["targets"]):
    bad.append("%d targets, expected %d" % (len(got["targets"]), len(ref["targets"])))
if gone == 0:
    bad.append("%s/%s was not in the reference dump" % (pname, name))
for m in bad:
    print("  " + m)
sys.exit(1 if bad else 0)
EOF

# Compare abi_reader.py's dump with "kvmstats query" (vm, vcpu) and "kvmstats schema".
cat >"$work/compare_cli.py" <<'EOF'
import json, sys
py = json.load(open(sys.argv[1]))
qvm, qvcpu, schema = (json.load(open(f)) for f in sys.argv[2:5])
bad, n = [], 0
def cmp(what, a, b):
    global n
    n += 1
    if a != b:
        bad.append("%s: python %r, C %r" % (what, a, b))
# Values: one result per provider and target; vm results have no qom-path.
results = {("vm", None, r["provider"]): r for r in qvm}
for r in qvcpu:
    results[("vcpu", r.get("qom-path"), r["provider"])] = r
seen = set()
for t in py["targets"]:
    by_prov = {}
    for s in t["stats"]:
        by_prov.setdefault(s["provider"], []).append(s)
    for prov, stats in by_prov.items():
        key = (t["kind"], None if t["kind"] == "vm" else t["label"], prov)
        r = results.get(key)
        if r is None:
            bad.append("no C result for %s" % (key,))
            continue
        seen.add(key)
        cvals = {s["name"]: s["value"] for s in r["stats"]}
        cmp("%s stat names" % (key,), sorted(s["name"] for s in stats), sorted(cvals))
        for s in stats:
            cmp("%s %s value" % (key, s["name"]), s["value"], cvals.get(s["name"]))
for key in results:
    if key not in seen:
        bad.append("C result %s unknown to python" % (key,))
# Schema: QMP rules (unit absent for none, base only with a non-zero exponent,
# bucket-size only for linear histograms).
sch = {}
for e in schema:
    for s in e["stats"]:
        sch[(e["provider"], e["target"], s["name"])] = s
for t in py["targets"]:
    for s in t["stats"]:
        c = sch.get((s["provider"], t["kind"], s["name"]))
        if c is None:
            bad.append("schema: no C entry for %s/%s/%s" % (s["provider"], t["kind"], s["name"]))
            continue
        w = "schema %s/%s" % (t["kind"], s["name"])
        cmp(w + " type", s["type"], c.get("type"))
        cmp(w + " unit", s["unit"], c.get("unit"))
        cmp(w + " exponent", s["exponent"], c.get("exponent"))
        cmp(w + " base", s["base"] if s["exponent"] != 0 else None, c.get("base"))
        cmp(w + " bucket-size",
            s["bucket_size"] if s["type"] == "linear-histogram" else None, c.get("bucket-size"))
        if isinstance(s["value"], list):
            cmp(w + " size", s["size"], len(s["value"]))
for b in bad[:20]:
    print("  " + b)
print("  compared %d fields, %d differ" % (n, len(bad)))
sys.exit(1 if bad else 0)
EOF

# ---- 1. segments written in Python from the document ---------------------

pyseg() {	# pyseg VARIANT -> $shm/py-VARIANT/kvmstats.kvm-77
	mkdir -p "$shm/py-$1"
	python3 "$work/writer.py" "$shm/py-$1/kvmstats.kvm-77" "$1" "$work/py-$1.expect"
	chmod 0640 "$shm/py-$1/kvmstats.kvm-77"
}

for v in normal extended; do
	pyseg $v
	if python3 "$reader" --dir "$shm/py-$v" --history 4 kvm-77 >"$work/$v.json" 2>"$work/$v.err" &&
	   python3 "$work/check_expect.py" "$work/$v.json" "$work/py-$v.expect"; then
		ok "python-written segment ($v): values, schema, stale flag, history"
	else
		cat "$work/$v.err"
		ko "python-written segment ($v)"
	fi
done

# The three spellings of a VM name and $KVMSTATS_SHM_DIR.
for name in kvm-77 kvmstats.kvm-77 /kvmstats.kvm-77; do
	if KVMSTATS_SHM_DIR="$shm/py-normal" python3 "$reader" "$name" >/dev/null 2>&1; then
		ok "name spelling $name"
	else
		ko "name spelling $name"
	fi
done

expect_rc() {	# expect_rc RC WHAT CMD...
	want=$1 what=$2
	shift 2
	"$@" >"$work/out" 2>"$work/err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$what: exit $rc ($(head -c 110 "$work/err" | tr '\n' ' '))"
	else
		ko "$what: exit $rc, expected $want"
		head -5 "$work/err"
	fi
}

for v in notready nosweep writing; do
	pyseg $v
done
expect_rc 2 "not ready (ready == 0)" python3 "$reader" --dir "$shm/py-notready" kvm-77
expect_rc 1 "no sample yet (sweep 0)" python3 "$reader" --dir "$shm/py-nosweep" kvm-77
expect_rc 1 "newest slot stays odd (bounded retries)" python3 "$reader" --dir "$shm/py-writing" kvm-77
expect_rc 2 "no such VM" python3 "$reader" --dir "$shm/py-normal" kvm-78

ln -s "$shm/py-normal/kvmstats.kvm-77" "$shm/py-normal/kvmstats.link"
expect_rc 2 "symbolic link (O_NOFOLLOW)" python3 "$reader" --dir "$shm/py-normal" link

mkdir -p "$shm/gw"
cp "$shm/py-normal/kvmstats.kvm-77" "$shm/gw/"
chmod 0660 "$shm/gw/kvmstats.kvm-77"
expect_rc 2 "group-writable segment" python3 "$reader" --dir "$shm/gw" kvm-77

if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$shm/owner"
	cp "$shm/py-normal/kvmstats.kvm-77" "$shm/owner/"
	chown 4242 "$shm/owner/kvmstats.kvm-77"
	expect_rc 2 "owned by another uid" python3 "$reader" --dir "$shm/owner" kvm-77
	expect_rc 0 "owned by the configured uid" python3 "$reader" --dir "$shm/owner" --owner 4242 kvm-77
fi

# ---- 2. corrupted copies ---------------------------------------------------

corruptions="truncated short-header magic major endian not-ready segment-size
data-off-unaligned header-size ring-depth strings-oob stats-table-oob entry-size
vm-name-oob vm-name-no-nul stat-name-oob stat-provider stat-size stat-bucket
value-index-oob unknown-name-oob unknown-provider unknown-size
unknown-value-index-oob unknown-dup target-kind target-vcpu-index
target-stats-oob ring-oob ring-unaligned ring-overlap stride-small stride-differs
frames-short state state-building label-ctrl name-utf8 provider-bidi two-vms dup-vcpu"
# A later minor version's type, unit or base: that stat is skipped.
skips="stat-type stat-unit stat-base"

# skip_one LABEL SEGMENT KIND: the copy reads like the original less stat 0,
# through abi_reader.py and, when it is built, through the C CLI.
skip_one() {
	f="$shm/bad/kvmstats.$1-$3"
	python3 "$work/corrupt.py" "$2" "$f" "$3" || { ko "corrupt $3"; return; }
	python3 "$reader" --file "$f" >"$work/skip.json" 2>"$work/err"
	rc=$?
	# A copy of a live segment may hold a slot mid-write (exit 1): the
	# original then fails the same way, and only "not refused" is checked.
	if [ "$rc" -ne "$ref_rc" ]; then
		ko "$1 segment, $3 skipped: exit $rc, the original exits $ref_rc"
		head -5 "$work/err"
		return
	fi
	if [ "$rc" -ne 0 ]; then
		ok "$1 segment, $3 skipped: exit $rc like the original"
		return
	fi
	if ! python3 "$work/check_skip.py" "$work/skip-ref.json" "$work/skip.json" "$f"; then
		ko "$1 segment, $3 skipped: abi_reader.py"
		return
	fi
	if [ ! -x "$build/kvmstats" ]; then
		ok "$1 segment, $3 skipped: abi_reader.py"
		return
	fi
	if "$build/kvmstats" --dir "$shm/bad" query "$1-$3" --target vm --stale-ok >"$work/s-vm.json" 2>"$work/s.err" &&
	   "$build/kvmstats" --dir "$shm/bad" query "$1-$3" --target vcpu --stale-ok >"$work/s-vcpu.json" 2>>"$work/s.err" &&
	   "$build/kvmstats" --dir "$shm/bad" schema "$1-$3" >"$work/s-schema.json" 2>>"$work/s.err" &&
	   python3 "$work/compare_cli.py" "$work/skip.json" "$work/s-vm.json" \
		"$work/s-vcpu.json" "$work/s-schema.json"; then
		ok "$1 segment, $3 skipped: abi_reader.py, kvmstats query/schema agree"
	else
		cat "$work/s.err"
		ko "$1 segment, $3 skipped: kvmstats query/schema"
	fi
}

corrupt_all() {	# corrupt_all LABEL SEGMENT
	mkdir -p "$shm/bad"
	for k in $corruptions; do
		f="$shm/bad/kvmstats.$1-$k"
		python3 "$work/corrupt.py" "$2" "$f" "$k" || { ko "corrupt $k"; continue; }
		expect_rc 2 "$1 segment, $k" python3 "$reader" --file "$f"
	done
	python3 "$reader" --file "$2" >"$work/skip-ref.json" 2>/dev/null
	ref_rc=$?
	for k in $skips; do
		skip_one "$1" "$2" "$k"
	done
}
corrupt_all py "$shm/py-normal/kvmstats.kvm-77"

# ---- 3. the C publisher and the C CLI --------------------------------------

kvmstats="$build/kvmstats"
kvmstatsd="$build/kvmstatsd"
fixture="$build/tests/tools/ks_fixture"

# compare_c DIR WHAT: the one segment in DIR, through abi_reader.py and
# through "kvmstats query/schema".  A live segment may move on between the
# reads: two python dumps of the same sweep bracket the CLI's reads.
compare_c() {
	vm=$(cd "$1" && ls | sed -n 's/^kvmstats\.//p' | head -1)
	if [ -z "$vm" ]; then
		ko "$2: no segment in $1"
		return
	fi
	agreed=""
	for try in 1 2 3 4 5; do
		python3 "$reader" --dir "$1" "$vm" >"$work/c-py1.json" 2>"$work/c-py.err" || break
		"$kvmstats" --dir "$1" query "$vm" --target vm --stale-ok >"$work/c-vm.json" 2>"$work/c-cli.err" &&
		"$kvmstats" --dir "$1" query "$vm" --target vcpu --stale-ok >"$work/c-vcpu.json" 2>>"$work/c-cli.err" &&
		"$kvmstats" --dir "$1" schema "$vm" >"$work/c-schema.json" 2>>"$work/c-cli.err" || break
		python3 "$reader" --dir "$1" "$vm" >"$work/c-py2.json" 2>>"$work/c-py.err" || break
		s1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sweep"])' "$work/c-py1.json")
		s2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sweep"])' "$work/c-py2.json")
		if [ "$s1" = "$s2" ]; then
			agreed=$s1
			break
		fi
	done
	# Both readers judge the publisher alike (ABI.md section 11.3).
	"$kvmstats" --dir "$1" list --json >"$work/c-list.json" 2>>"$work/c-cli.err"
	if python3 -c 'import json, sys
py, cl = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
c = [r for r in cl if r.get("vm") == py["vm"]]
sys.exit(0 if c and c[0]["state"] == py["health"] else "python %s, C %s" % (py["health"], c[0]["state"] if c else None))' \
		"$work/c-py1.json" "$work/c-list.json"; then
		ok "$2 $vm: both readers judge its publisher alike"
	else
		ko "$2 $vm: the readers judge its publisher differently"
	fi
	# And read the same note (ABI 1.2; "" where there is none).
	if python3 -c 'import json, sys
py, cl = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
c = [r for r in cl if r.get("vm") == py["vm"]]
sys.exit(0 if c and c[0].get("note", "") == py["note"] else "python %r, C %r" % (py["note"], c[0].get("note") if c else None))' \
		"$work/c-py1.json" "$work/c-list.json"; then
		ok "$2 $vm: both readers read the same note"
	else
		ko "$2 $vm: the readers read different notes"
	fi
	if [ -z "$agreed" ]; then
		cat "$work/c-py.err" "$work/c-cli.err" 2>/dev/null
		ko "$2 $vm: no stable sweep to compare (or a reader failed)"
	elif python3 "$work/compare_cli.py" "$work/c-py1.json" "$work/c-vm.json" \
		"$work/c-vcpu.json" "$work/c-schema.json"; then
		ok "$2 $vm (sweep $agreed): abi_reader.py == kvmstats query/schema"
	else
		ko "$2 $vm: abi_reader.py and kvmstats disagree"
	fi
	cp "$1/kvmstats.$vm" "$work/c-copy"
}

if [ ! -x "$kvmstats" ]; then
	echo "note: $kvmstats is not built: C cross-check skipped"
else
	# The C reader on segments written from the document (one of them a
	# later minor version with larger entries and non-zero reserved fields).
	for v in normal extended; do
		d="$shm/py-$v"
		if "$kvmstats" --dir "$d" query kvm-77 --target vm --stale-ok >"$work/p-vm.json" 2>"$work/p.err" &&
		   "$kvmstats" --dir "$d" query kvm-77 --target vcpu --stale-ok >"$work/p-vcpu.json" 2>>"$work/p.err" &&
		   "$kvmstats" --dir "$d" schema kvm-77 >"$work/p-schema.json" 2>>"$work/p.err" &&
		   python3 "$work/compare_cli.py" "$work/$v.json" "$work/p-vm.json" \
			"$work/p-vcpu.json" "$work/p-schema.json"; then
			ok "python-written segment ($v): kvmstats query/schema == abi_reader.py"
		else
			cat "$work/p.err"
			ko "python-written segment ($v): kvmstats query/schema"
		fi
		# The note (ABI 1.2): the extended segment's, through both readers.
		want=""
		[ $v = extended ] && want="a note from the publisher: caf\u00e9"
		if "$kvmstats" --dir "$d" list --json >"$work/p-list.json" 2>>"$work/p.err" &&
		   python3 -c 'import json, sys
py, cl, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
want = json.loads("\"%s\"" % want)
sys.exit(0 if py["note"] == want and cl[0].get("note", "") == want else "python %r, C %r" % (py["note"], cl[0].get("note")))' \
			"$work/$v.json" "$work/p-list.json" "$want"; then
			ok "python-written segment ($v): the same note through both readers"
		else
			ko "python-written segment ($v): the readers read different notes"
		fi
	done

	# The deterministic fixture: the real x86 tables, and two providers
	# with every unit rule.
	if [ -x "$fixture" ]; then
		for m in x86 formats; do
			d="$shm/fixture-$m"
			mkdir -p "$d"
			if "$fixture" --dir "$d" --mode "$m" --keep >"$work/fixture.out" 2>&1; then
				compare_c "$d" "ks_fixture --mode $m"
				[ "$m" = x86 ] && corrupt_all fixture "$work/c-copy"
			else
				cat "$work/fixture.out"
				ko "ks_fixture --mode $m"
			fi
		done
	else
		echo "note: $fixture is not built: fixture cross-check skipped"
	fi

	# A live publisher with a simulated VM (x86 layout), 1 sweep a second.
	if [ -x "$kvmstatsd" ]; then
		d="$shm/live"
		mkdir -p "$d"
		"$kvmstatsd" --simulate 3 --hz 1 --dir "$d" -q &
		daemon=$!
		for _ in $(seq 100); do
			[ -n "$(ls "$d")" ] && break
			sleep 0.1
		done
		# Stopped while the readers compare: however slow they are, no
		# sweep comes between them (the newest complete sweep stays).
		kill -STOP "$daemon"
		compare_c "$d" "kvmstatsd --simulate 3"
		# Two providers (kvm, then sched) in that segment: both readers saw both.
		if python3 -c 'import json, sys
py = json.load(open(sys.argv[1]))
cl = json.load(open(sys.argv[2])) + json.load(open(sys.argv[3]))
want = ["kvm", "sched"]
sys.exit(0 if sorted({e["provider"] for e in cl}) == want and
         json.dumps(py).count("\"sched\"") > 0 else "providers: %s" % sorted({e["provider"] for e in cl}))' \
			"$work/c-py1.json" "$work/c-vm.json" "$work/c-vcpu.json"; then
			ok "kvmstatsd --simulate 3: providers kvm and sched, read by both readers"
		else
			ko "kvmstatsd --simulate 3: not the two providers kvm and sched"
		fi
		kill -CONT "$daemon"
		[ -f "$work/c-copy" ] && corrupt_all live "$work/c-copy"
	fi
fi

echo "python-reader: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
