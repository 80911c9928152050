#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""abi_reader.py - an independent kvmstats segment reader, written from
docs/ABI.md alone (Python 3 standard library only).

It opens a segment read-only, makes every attach-time check of ABI.md
section 8, decodes the schema, reads the newest sample of each target and
one VM-wide consistent cut with the seqlock recipe of section 9, judges its
publisher (section 11: the liveness lock, the heartbeat) and prints a JSON
dump.  Stats whose type, unit or base ABI 1.x does not define are checked
like the others but left out of the dump (section 5.3).

Python has no memory model: the seqlock reads below rely on x86-64 TSO and
on CPython copying each aligned native 8-byte field with one load (ABI.md
section 10.6).  That is adequate on x86-64 in practice, not a language
guarantee.

Usage:
    abi_reader.py [--dir DIR] [--owner UID] VM
    abi_reader.py --file PATH

Exit status: 0 success; 1 the segment is valid but has no readable sample
(no sweep yet, or no consistent read within the retry bound); 2 the segment
fails a check (or cannot be opened), or the command line is wrong.
"""

import argparse
import fcntl
import json
import mmap
import os
import stat
import struct
import sys
import time

# ---- constants of ABI 1.1 (docs/ABI.md) ------------------------------------

MAGIC = b"KVMSTATS"
ABI_MAJOR = 1
ENDIAN_MARK = 0x01020304
READY_MAGIC = 0x59444552
HEADER_SIZE = 256
DATA_ALIGN = 4096
SLOT_ALIGN = 64
SLOT_HEADER = 32
VCPU_INDEX_NONE = 0xFFFFFFFF
STATE_NAMES = ("building", "live", "ended", "superseded")
KIND_NAMES = ("vm", "vcpu")
TYPE_NAMES = ("cumulative", "instant", "peak", "linear-histogram", "log2-histogram")
UNIT_NAMES = (None, "bytes", "seconds", "cycles", "boolean")
TYPE_LINEAR_HIST = 3
UNIT_BOOLEAN = 4
BASES = (2, 10)
SLOT_STALE = 1

# Sanity limits (section 8, check 10-11, 24).
SCHEMA_MAX = 256 << 20
RING_DEPTH_MAX = 1024
PROVIDERS_MAX = 65535
TARGETS_MAX = 65536
STATS_MAX = 1 << 22
STAT_REFS_MAX = 1 << 24

READ_RETRIES = 64
READY_TRIES = 10
READY_WAIT_S = 0.01

# Section 11.2: stale after max(4 periods, 1 s) without a sweep.
STALE_PERIODS = 4
STALE_MIN_NS = 1000000000

# struct flock on Linux x86-64: l_type, l_whence (short), l_start, l_len
# (off_t), l_pid (pid_t), padded to 32 bytes.
FLOCK_FMT = "=hhxxxxqqi4x"
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2

# Field offsets of the header's atomics.
OFF_READY = 16
OFF_STATE = 140
OFF_SWEEP = 192
OFF_HEARTBEAT = 200

# Header, lines 0-2 (native byte order, standard sizes, no padding).
HEADER_FMT = "=8sHHIIIQiIQQQ" + "QIIIIIIIIIHHHHIQ" + "QIIII40x" + "QQQQ32x"
HEADER_FIELDS = (
    "magic abi_major abi_minor header_size ready endian segment_size "
    "publisher_pid flags incarnation generation created_mono_ns "
    "poll_period_ns ring_depth nr_providers nr_targets nr_stats "
    "providers_off targets_off stats_off strings_off strings_size "
    "provider_entry_size target_entry_size stat_entry_size reserved0 "
    "vm_name_off data_off data_size vm_name_len state note_off note_len "
    "sweep heartbeat_ns overruns read_errors").split()
PROVIDER_FMT = "=II8x"            # 16 bytes known
TARGET_FMT = "=IIIIIIIIIIQ16x"    # 64 bytes known
STAT_FMT = "=IIHBBBxhHxxII4x"    # 32 bytes known

assert struct.calcsize(HEADER_FMT) == HEADER_SIZE
assert struct.calcsize(PROVIDER_FMT) == 16
assert struct.calcsize(TARGET_FMT) == 64
assert struct.calcsize(STAT_FMT) == 32


class SegmentError(Exception):
    """A segment that fails an attach-time check."""

    def __init__(self, err, msg):
        super().__init__(msg)
        self.err = err


class NoSample(Exception):
    """A valid segment without a readable sample (ENODATA / EAGAIN)."""

    def __init__(self, err, msg):
        super().__init__(msg)
        self.err = err


def bad(msg):
    return SegmentError("EBADMSG", msg)


# ---- the shared words: one aligned native 8-byte load each -----------------

_U64 = struct.Struct("@Q")
_U32 = struct.Struct("@I")


def load64(mm, off):
    """An 8-byte load; off is 8-aligned (checked at attach)."""
    return _U64.unpack_from(mm, off)[0]


def load32(mm, off):
    return _U32.unpack_from(mm, off)[0]


# ---- opening: ABI.md section 2.2, checks 1-3 -------------------------------

def segment_path(vm, directory):
    """The file of VM @vm (three spellings accepted, section 2.1)."""
    if vm.startswith("/"):
        vm = vm[1:]
    if vm.startswith("kvmstats."):
        vm = vm[len("kvmstats."):]
    # Section 2.1: 1 to 128 bytes of printable text, no "/", no leading ".".
    if (not vm or len(vm.encode("utf-8", "surrogateescape")) > 128 or "/" in vm
            or vm.startswith(".") or vm.startswith("kvmstats.") or text_fault(vm)):
        raise SegmentError("EINVAL", "bad VM name %r" % vm)
    if not directory:
        directory = os.environ.get("KVMSTATS_SHM_DIR") or "/dev/shm"
    return os.path.join(directory, "kvmstats." + vm)


def open_segment(path, owner):
    """Checks 1-3: open O_RDONLY|O_NOFOLLOW|O_NONBLOCK, fstat, owner, mode, map
    PROT_READ.  Returns the mapping, the size and the descriptor, kept open
    to ask for the liveness lock (section 11.1)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        err = {2: "ENOENT", 13: "EACCES", 40: "ELOOP"}.get(e.errno, "EIO")
        raise SegmentError(err, "%s: cannot open: %s" % (path, e.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise bad("%s: not a regular file" % path)
        allowed = (owner,) if owner is not None else (0, os.getuid())
        if st.st_uid not in allowed:
            raise SegmentError("EPERM", "%s: owned by uid %d, expected uid %s: "
                               "refusing a segment anybody could have planted"
                               % (path, st.st_uid, " or ".join(map(str, allowed))))
        if st.st_mode & 0o022:
            raise SegmentError("EACCES", "%s: mode %04o is writable by group or others, "
                               "who could change or truncate it: refused"
                               % (path, st.st_mode & 0o7777))
        if st.st_size < HEADER_SIZE:
            raise bad("%s: %d bytes, shorter than the %d-byte header"
                      % (path, st.st_size, HEADER_SIZE))
        mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ)
    except BaseException:
        os.close(fd)
        raise
    return mm, st.st_size, fd


# ---- attach: checks 4-31 ---------------------------------------------------

def text_fault(text):
    """Section 5.4: what keeps @text from being printable, or None."""
    for i, ch in enumerate(text):
        cp = ord(ch)
        if cp < 0x20 or 0x7F <= cp <= 0x9F:
            return "a control character (U+%04X) at character %d" % (cp, i)
        if (cp in (0x061C, 0x200E, 0x200F) or 0x202A <= cp <= 0x202E
                or 0x2066 <= cp <= 0x2069):
            return "a bidirectional formatting character (U+%04X) at character %d" % (cp, i)
    return None


def string_at(copy, h, what, off, length, nonempty):
    """A valid string (section 8): inside the table, NUL after, none inside,
    printable text (section 5.4)."""
    size = h["strings_size"]
    if off + length >= size:
        raise bad("%s: string [%d, +%d] outside the %d-byte string table"
                  % (what, off, length, size))
    base = h["strings_off"] + off
    raw = copy[base:base + length + 1]
    if raw[length] != 0:
        raise bad("%s: string at %d not NUL-terminated at length %d" % (what, off, length))
    if b"\0" in raw[:length]:
        raise bad("%s: string at %d has a NUL inside its %d bytes" % (what, off, length))
    if nonempty and length == 0:
        raise bad("%s: empty name" % what)
    try:
        # Python's codec refuses overlong forms, surrogates and > U+10FFFF.
        text = raw[:length].decode("utf-8")
    except UnicodeDecodeError:
        raise bad("%s: string at %d is not UTF-8" % (what, off))
    fault = text_fault(text)
    if fault:
        raise bad("%s: string at %d has %s" % (what, off, fault))
    return text


def wait_ready(mm):
    """Check 4, with a bounded wait (section 7.1)."""
    for i in range(READY_TRIES):
        if load32(mm, OFF_READY) == READY_MAGIC:
            return
        if i + 1 < READY_TRIES:
            time.sleep(READY_WAIT_S)
    raise SegmentError("EAGAIN", "not ready: its publisher is still building it, "
                       "or died doing so")


def copy_header(mm):
    """The header, its atomics each read with one load of its width (section 8)."""
    b = bytearray(mm[0:HEADER_SIZE])
    struct.pack_into("@I", b, OFF_READY, load32(mm, OFF_READY))
    struct.pack_into("@I", b, OFF_STATE, load32(mm, OFF_STATE))
    for off in range(OFF_SWEEP, OFF_SWEEP + 32, 8):
        struct.pack_into("@Q", b, off, load64(mm, off))
    return bytes(b)


def check_header(mm, file_size):
    """Checks 4-13; returns the header as a dict (from a private copy)."""
    # Check 4 first: nothing else of the mapping is looked at before it.
    wait_ready(mm)
    # Every load below comes after the load of ready (TSO keeps the order).
    if bytes(mm[0:8]) != MAGIC:
        raise bad("bad magic %r: not a kvmstats segment" % bytes(mm[0:8]))
    major, minor = struct.unpack_from("=HH", mm, 8)
    endian = struct.unpack_from("=I", mm, 20)[0]
    if endian != ENDIAN_MARK:
        raise SegmentError("EPROTO", "endian mark 0x%08x is not 0x%08x: written with "
                           "another byte order" % (endian, ENDIAN_MARK))
    if major != ABI_MAJOR:
        raise SegmentError("EPROTO", "ABI version %d.%d, this reader reads %d.x"
                           % (major, minor, ABI_MAJOR))
    h = dict(zip(HEADER_FIELDS, struct.unpack_from(HEADER_FMT, copy_header(mm))))
    if h["header_size"] < HEADER_SIZE:
        raise bad("header_size %d below %d" % (h["header_size"], HEADER_SIZE))
    if h["segment_size"] != file_size:
        raise bad("segment_size %d differs from the file size %d"
                  % (h["segment_size"], file_size))
    if h["state"] > 3:
        raise bad("state %d unknown" % h["state"])
    if h["state"] == 0:             # check 9: a MUST since 1.1 (section 7.2)
        raise SegmentError("EAGAIN", "state building behind an open ready gate: not ready")
    d_off, d_size, seg = h["data_off"], h["data_size"], h["segment_size"]
    if d_off % DATA_ALIGN or not h["header_size"] <= d_off <= seg:
        raise bad("data_off %d is not a page-aligned offset in [%d, %d]"
                  % (d_off, h["header_size"], seg))
    if d_off > SCHEMA_MAX:
        raise bad("data_off %d exceeds the schema limit %d" % (d_off, SCHEMA_MAX))
    if d_off + d_size != seg:
        raise bad("data_off %d + data_size %d != segment_size %d" % (d_off, d_size, seg))
    if not 2 <= h["ring_depth"] <= RING_DEPTH_MAX:
        raise bad("ring_depth %d outside 2..%d" % (h["ring_depth"], RING_DEPTH_MAX))
    if not 1 <= h["nr_providers"] <= PROVIDERS_MAX:
        raise bad("nr_providers %d outside 1..%d" % (h["nr_providers"], PROVIDERS_MAX))
    if not 1 <= h["nr_targets"] <= TARGETS_MAX:
        raise bad("nr_targets %d outside 1..%d" % (h["nr_targets"], TARGETS_MAX))
    if h["nr_stats"] > STATS_MAX:
        raise bad("nr_stats %d above %d" % (h["nr_stats"], STATS_MAX))
    if (h["provider_entry_size"] < 16 or h["target_entry_size"] < 64
            or h["stat_entry_size"] < 32):
        raise bad("entry sizes provider %d target %d stat %d below 16 64 32"
                  % (h["provider_entry_size"], h["target_entry_size"],
                     h["stat_entry_size"]))
    for name, off, count, size in (
            ("provider table", h["providers_off"], h["nr_providers"], h["provider_entry_size"]),
            ("target table", h["targets_off"], h["nr_targets"], h["target_entry_size"]),
            ("stat table", h["stats_off"], h["nr_stats"], h["stat_entry_size"]),
            ("string table", h["strings_off"], h["strings_size"], 1)):
        end = off + count * size
        if off < h["header_size"] or end > d_off:
            raise bad("%s [%d, %d) outside the schema section [%d, %d)"
                      % (name, off, end, h["header_size"], d_off))
    return h


def decode_schema(mm, file_size):
    """Checks 4-31 on a private copy of [0, data_off); returns the segment."""
    h = check_header(mm, file_size)
    # The private copy; the validated header h locates everything in it.
    # The header's changing words are in h already; the rest is immutable.
    copy = bytes(mm[0:h["data_off"]])

    vm = string_at(copy, h, "vm_name", h["vm_name_off"], h["vm_name_len"], True)
    # Check 14, from 1.2: the note.  Before 1.2 those words are reserved.
    note = ""
    if h["abi_minor"] >= 2 and h["note_len"] > 0:
        note = string_at(copy, h, "note", h["note_off"], h["note_len"], False)

    providers = []
    for i in range(h["nr_providers"]):
        off = h["providers_off"] + i * h["provider_entry_size"]
        name_off, name_len = struct.unpack_from(PROVIDER_FMT, copy, off)
        providers.append(string_at(copy, h, "provider %d" % i, name_off, name_len, True))
    if len(set(providers)) != len(providers):
        raise bad("two providers have the same name: %s" % providers)

    stats = []
    for i in range(h["nr_stats"]):
        off = h["stats_off"] + i * h["stat_entry_size"]
        (name_off, name_len, prov, typ, unit, base, exponent, size, bucket_size,
         value_index) = struct.unpack_from(STAT_FMT, copy, off)
        what = "stat %d" % i
        name = string_at(copy, h, what, name_off, name_len, True)
        if prov >= h["nr_providers"]:
            raise bad("%s: provider %d but nr_providers is %d" % (what, prov, h["nr_providers"]))
        if size < 1:
            raise bad("%s: size 0" % what)
        # Checks 18-19: a type, unit or base of a later minor version makes
        # the stat unknown, not the segment invalid (section 5.3).
        known = typ < len(TYPE_NAMES) and unit < len(UNIT_NAMES) and base in BASES
        if known and (bucket_size != 0) != (typ == TYPE_LINEAR_HIST):
            raise bad("%s: bucket_size %d with type %d (non-zero iff linear histogram)"
                      % (what, bucket_size, typ))
        stats.append(dict(name=name, provider=prov, type=typ, unit=unit, base=base,
                          exponent=exponent, size=size, bucket_size=bucket_size,
                          value_index=value_index, known=known))

    targets = []
    refs = 0
    seg_size = h["segment_size"]
    for t in range(h["nr_targets"]):
        off = h["targets_off"] + t * h["target_entry_size"]
        (kind, vcpu_index, label_off, label_len, id_off, id_len, first, count,
         words, stride, ring_off) = struct.unpack_from(TARGET_FMT, copy, off)
        what = "target %d" % t
        if kind > 1:
            raise bad("%s: kind %d unknown" % (what, kind))
        if (kind == 0) != (vcpu_index == VCPU_INDEX_NONE):
            raise bad("%s: vcpu_index %d does not fit kind %d" % (what, vcpu_index, kind))
        label = string_at(copy, h, what + " label", label_off, label_len, False)
        ident = string_at(copy, h, what + " id", id_off, id_len, False)
        if first + count > h["nr_stats"]:
            raise bad("%s: stats [%d, +%d) beyond the %d entries of the stat table"
                      % (what, first, count, h["nr_stats"]))
        refs += count
        if refs > STAT_REFS_MAX:
            raise bad("targets reference more than %d stats in all" % STAT_REFS_MAX)
        for j in range(first, first + count):
            s = stats[j]
            if s["value_index"] + s["size"] > words:
                raise bad("%s: stat %d values [%d, +%d) beyond record_words %d"
                          % (what, j, s["value_index"], s["size"], words))
        if stride % SLOT_ALIGN or stride < SLOT_HEADER + 8 * words:
            raise bad("%s: slot_stride %d is not a multiple of %d of at least %d bytes"
                      % (what, stride, SLOT_ALIGN, SLOT_HEADER + 8 * words))
        ring_bytes = (h["ring_depth"] - 1) * stride + SLOT_HEADER + 8 * words
        if (ring_off % SLOT_ALIGN or ring_off < h["data_off"] or ring_off > seg_size
                or ring_bytes > seg_size - ring_off):
            raise bad("%s: ring [%d, %d) outside the data section [%d, %d) or not "
                      "64-byte aligned" % (what, ring_off, ring_off + ring_bytes,
                                           h["data_off"], seg_size))
        targets.append(dict(index=t, kind=kind, vcpu_index=vcpu_index, label=label,
                            id=ident, stats_first=first, stats_count=count,
                            record_words=words, slot_stride=stride, ring_off=ring_off))

    # Check 28: (provider, name) unique within each distinct stat range.
    for rng in {(t["stats_first"], t["stats_count"]) for t in targets}:
        seen = set()
        for j in range(rng[0], rng[0] + rng[1]):
            key = (stats[j]["provider"], stats[j]["name"])
            if key in seen:
                raise bad("stat range [%d, +%d): two stats named %s/%s"
                          % (rng[0], rng[1], providers[key[0]], key[1]))
            seen.add(key)
    # Check 29: the data section is ring_depth frames of one stride, and no
    # two targets' slots 0 overlap (check 27 keeps each inside frame 0).
    frame = targets[0]["slot_stride"]
    for t in targets:
        if t["slot_stride"] != frame:
            raise bad("target %d: slot_stride %d differs from target 0's %d"
                      % (t["index"], t["slot_stride"], frame))
    if h["data_size"] != h["ring_depth"] * frame:
        raise bad("data_size %d is not ring_depth %d frames of %d bytes"
                  % (h["data_size"], h["ring_depth"], frame))
    by_off = sorted(targets, key=lambda t: t["ring_off"])
    for a, b in zip(by_off, by_off[1:]):
        a_end = a["ring_off"] + SLOT_HEADER + 8 * a["record_words"]
        if a_end > b["ring_off"]:
            raise bad("target %d: slot [%d, %d) overlaps the slot of target %d at %d"
                      % (a["index"], a["ring_off"], a_end, b["index"], b["ring_off"]))
    # Checks 30-31 (1.1): at most one VM target, vCPU indices unique.
    if sum(1 for t in targets if t["kind"] == 0) > 1:
        raise bad("more than one VM target")
    vcpus = [t["vcpu_index"] for t in targets if t["kind"] == 1]
    if len(set(vcpus)) != len(vcpus):
        raise bad("two vCPU targets have the same vcpu_index")

    return dict(header=h, vm=vm, note=note, providers=providers, stats=stats, targets=targets)


# ---- reading: ABI.md section 9 ---------------------------------------------

def read_slot(mm, target, slot_index, want_sweep):
    """One seqlock read of a slot (9.1); None if it must be retried."""
    slot = target["ring_off"] + slot_index * target["slot_stride"]
    q1 = load64(mm, slot)                      # acquire (TSO: loads stay in order)
    if q1 & 1:
        return None
    sweep = load64(mm, slot + 8)
    time_ns = load64(mm, slot + 16)
    flags = load64(mm, slot + 24)
    n = target["record_words"]
    values = struct.unpack_from("@%dQ" % n, mm, slot + SLOT_HEADER)
    # (acquire fence: nothing to emit on x86-64 TSO from Python)
    q2 = load64(mm, slot)
    if q2 != q1 or sweep != want_sweep:
        return None
    return dict(sweep=sweep, time_ns=time_ns, flags=flags, values=values)


def read_latest(mm, seg, target):
    """The newest sample of one target (9.2)."""
    depth = seg["header"]["ring_depth"]
    for attempt in range(READ_RETRIES):
        s = load64(mm, OFF_SWEEP)
        if s == 0:
            raise NoSample("ENODATA", "no sample published yet (sweep 0)")
        r = read_slot(mm, target, s % depth, s)
        if r is not None:
            r["retries"] = attempt
            return r
    raise NoSample("EAGAIN", "no consistent sample of target %d in %d tries"
                   % (target["index"], READ_RETRIES))


def read_cut(mm, seg):
    """Every target as of one sweep (9.3)."""
    depth = seg["header"]["ring_depth"]
    for attempt in range(READ_RETRIES):
        s = load64(mm, OFF_SWEEP)
        if s == 0:
            raise NoSample("ENODATA", "no sample published yet (sweep 0)")
        cut = []
        for t in seg["targets"]:
            r = read_slot(mm, t, s % depth, s)
            if r is None:
                break
            cut.append(r)
        else:
            return s, cut, attempt
    raise NoSample("EAGAIN", "no consistent cut in %d tries" % READ_RETRIES)


def read_history(mm, seg, target, n):
    """Up to min(n, ring_depth - 1) consecutive samples, newest first (9.4)."""
    depth = seg["header"]["ring_depth"]
    if n == 0:
        return []                   # nothing asked, nothing to fail
    for _ in range(READ_RETRIES):
        s = load64(mm, OFF_SWEEP)
        if s == 0:
            raise NoSample("ENODATA", "no sample published yet (sweep 0)")
        out = []
        for k in range(min(n, depth - 1, s)):
            r = read_slot(mm, target, (s - k) % depth, s - k)
            if r is None:
                break
            out.append(r)
        if out:
            return out
    raise NoSample("EAGAIN", "no consistent history in %d tries" % READ_RETRIES)


# ---- liveness: ABI.md section 11 -----------------------------------------------

def lock_held(fd):
    """Section 11.1: does anybody hold the publisher's write lock?"""
    probe = struct.pack(FLOCK_FMT, F_RDLCK, os.SEEK_SET, 0, 0, 0)
    got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe)
    return struct.unpack(FLOCK_FMT, got)[0] == F_WRLCK


def health(mm, seg, fd):
    """Section 11.3, in its order: broken, ended, superseded, dead, stale, live."""
    h = seg["header"]
    state = load32(mm, OFF_STATE)
    if state not in (1, 2, 3):
        return "broken"
    if state == 2:
        return "ended"
    if state == 3:
        return "superseded"
    if h["abi_minor"] >= 1 and not lock_held(fd):
        return "dead"
    since = load64(mm, OFF_HEARTBEAT) if load64(mm, OFF_SWEEP) else h["created_mono_ns"]
    age = time.clock_gettime_ns(time.CLOCK_MONOTONIC) - since
    if age > max(STALE_PERIODS * h["poll_period_ns"], STALE_MIN_NS):
        return "stale"
    return "live"


# ---- the dump ----------------------------------------------------------------

def stat_value(s, values):
    v = list(values[s["value_index"]:s["value_index"] + s["size"]])
    if s["size"] == 1:
        return bool(v[0]) if s["unit"] == UNIT_BOOLEAN else v[0]
    return v


def dump(mm, seg, fd):
    h = seg["header"]
    latest = [read_latest(mm, seg, t) for t in seg["targets"]]
    sweep, cut, retries = read_cut(mm, seg)
    targets = []
    for t, r, new in zip(seg["targets"], cut, latest):
        stats = []
        for j in range(t["stats_first"], t["stats_first"] + t["stats_count"]):
            s = seg["stats"][j]
            if not s["known"]:
                continue            # its words are a hole to this reader
            stats.append(dict(name=s["name"], provider=seg["providers"][s["provider"]],
                              type=TYPE_NAMES[s["type"]], unit=UNIT_NAMES[s["unit"]],
                              base=s["base"], exponent=s["exponent"], size=s["size"],
                              bucket_size=s["bucket_size"],
                              value=stat_value(s, r["values"])))
        targets.append(dict(
            kind=KIND_NAMES[t["kind"]],
            vcpu_index=None if t["vcpu_index"] == VCPU_INDEX_NONE else t["vcpu_index"],
            label=t["label"], id=t["id"],
            record_words=t["record_words"], slot_stride=t["slot_stride"],
            ring_off=t["ring_off"],
            sample=dict(sweep=r["sweep"], time_ns=r["time_ns"],
                        stale=bool(r["flags"] & SLOT_STALE)),
            latest=dict(sweep=new["sweep"], time_ns=new["time_ns"],
                        stale=bool(new["flags"] & SLOT_STALE)),
            stats=stats))
    return dict(
        vm=seg["vm"],
        note=seg["note"],
        abi="%d.%d" % (h["abi_major"], h["abi_minor"]),
        state=STATE_NAMES[load32(mm, OFF_STATE)] if load32(mm, OFF_STATE) < 4 else None,
        health=health(mm, seg, fd),
        publisher_pid=h["publisher_pid"],
        incarnation=h["incarnation"],
        generation=h["generation"],
        poll_period_ns=h["poll_period_ns"],
        ring_depth=h["ring_depth"],
        segment_size=h["segment_size"],
        data_off=h["data_off"],
        heartbeat_ns=load64(mm, OFF_HEARTBEAT),
        providers=seg["providers"],
        targets=targets,
        sweep=sweep,
        cut_retries=retries)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Dump a kvmstats segment as JSON, read per docs/ABI.md.")
    ap.add_argument("vm", nargs="?", help="VM name, kvmstats.<vm> or /kvmstats.<vm>")
    ap.add_argument("--dir", help="segment directory (default $KVMSTATS_SHM_DIR or /dev/shm)")
    ap.add_argument("--file", help="open this segment file instead of a VM's")
    ap.add_argument("--owner", type=int, help="uid that must own the file "
                    "(default: root or the caller)")
    ap.add_argument("--history", type=int, default=0, metavar="N",
                    help="also print up to N samples of each target's history")
    args = ap.parse_args(argv)
    if (args.vm is None) == (args.file is None):
        ap.error("give a VM name or --file PATH")
    try:
        path = args.file if args.file else segment_path(args.vm, args.dir)
        mm, size, fd = open_segment(path, args.owner)
        seg = decode_schema(mm, size)
    except SegmentError as e:
        print("abi_reader: %s: %s" % (e.err, e), file=sys.stderr)
        return 2
    try:
        out = dump(mm, seg, fd)
        if args.history:
            for t, d in zip(seg["targets"], out["targets"]):
                d["history"] = [dict(sweep=r["sweep"], time_ns=r["time_ns"])
                                for r in read_history(mm, seg, t, args.history)]
    except NoSample as e:
        print("abi_reader: %s: %s: %s" % (e.err, path, e), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
