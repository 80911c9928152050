# SPDX-License-Identifier: MIT
"""Comparisons of a kvmstats segment with the QMP answers of the same QEMU
about the same VM.  Each returns a list of problems (empty: they agree),
so a caller prints them under one check; none of them asserts an order,
since neither QMP nor kvmstats makes order a contract (QEMU 7.2 builds its
lists with QAPI_LIST_PREPEND, kvmstats keeps descriptor order).
"""
import re

SCHEMA_KEYS = ("type", "unit", "base", "exponent", "bucket-size")


def schema_by_target(schemas, provider="kvm"):
    """query-stats-schemas' (or kvmstats schema's) list -> {target: {name: entry}},
    and {target: [names in the order given]}."""
    by, order = {}, {}
    for s in schemas:
        if s.get("provider") != provider:
            continue
        by[s["target"]] = {x["name"]: {k: x.get(k) for k in SCHEMA_KEYS} for x in s["stats"]}
        order[s["target"]] = [x["name"] for x in s["stats"]]
    return by, order


def compare_schema(qemu, ours):
    """Two {name: entry} maps of one target: names, types, units, base,
    exponent and bucket-size identical (absent keys must be absent on both)."""
    problems = []
    for n in sorted(set(qemu) | set(ours)):
        if n not in ours:
            problems.append("%s: in QEMU's schema, not in ours" % n)
        elif n not in qemu:
            problems.append("%s: in ours, not in QEMU's schema" % n)
        elif qemu[n] != ours[n]:
            problems.append("%s: QEMU %s, ours %s" % (n, qemu[n], ours[n]))
    return problems


def compare_labels(qemu_cpus_fast, segment_targets):
    """query-cpus-fast's list and the segment's vCPU labels (kvmstats query's
    "qom-path" members) -> ({qom-path: label}, problems).

    Every way in labels vCPUs with QEMU's QOM paths (kvmstatsd --qmp,
    KVMSTATS_PRELOAD_QMP), so a label must equal the qom-path of one of
    QEMU's vCPUs; one that is a KVM id string (kvm-<tid>/vcpu-<n>, the
    fallback where QEMU cannot be asked) is a problem."""
    problems = []
    labels = list(segment_targets)
    if len(set(labels)) != len(labels):
        problems.append("labels not unique: %s" % labels)
    paths = [c["qom-path"] for c in qemu_cpus_fast]
    if sorted(labels) != sorted(paths):
        problems.append("labels %s are not QEMU's QOM paths %s" % (sorted(labels),
                                                                    sorted(paths)))
    return {p: p for p in paths if p in labels}, problems


def values_by_name(result):
    return {s["name"]: s["value"] for s in result["stats"]}


def hist_orientation(q, k):
    """How QEMU's list q shows the buckets of our list k: "same", "reversed",
    "both" (a palindrome: cannot tell) or None."""
    same, rev = q == k, list(reversed(q)) == k
    if same and rev:
        return "both"
    return "same" if same else "reversed" if rev else None


def compare_values(types, qemu, ours, mode, hist_order="same"):
    """One target's {name: value} from QEMU and from us.
    mode "equal": every stat equal (a paused VM).
    mode "monotonic": QEMU read first, so for cumulative and peak stats
    (and every histogram bucket) ours is never behind; instant stats are
    not compared.  hist_order: "reversed" when QEMU lists buckets last
    first (as found on the paused VM)."""
    problems = []
    for n, qv in sorted(qemu.items()):
        if n not in ours:
            problems.append("%s: QEMU has it, we do not" % n)
            continue
        kv = ours[n]
        t = types.get(n)
        # The value's shape: a JSON bool, number or list (True == 1 in Python).
        if type(qv) is not type(kv):
            problems.append("%s: QEMU's is a %s, ours a %s" % (n, type(qv).__name__,
                                                             type(kv).__name__))
            continue
        if isinstance(qv, list) and hist_order == "reversed":
            qv = list(reversed(qv))
        if mode == "equal":
            if qv != kv:
                problems.append("%s: QEMU %s, ours %s" % (n, short(qv), short(kv)))
        elif t in ("cumulative", "peak") or t.endswith("histogram"):
            if isinstance(qv, list):
                if len(qv) != len(kv) or any(a > b for a, b in zip(qv, kv)):
                    problems.append("%s: QEMU %s ahead of ours %s" % (n, short(qv), short(kv)))
            elif qv > kv:
                problems.append("%s: QEMU %d ahead of ours %d" % (n, qv, kv))
    return problems


def short(v):
    if isinstance(v, list):
        # The non-zero buckets, index:count.
        return "[%s]" % " ".join("%d:%d" % (i, x) for i, x in enumerate(v) if x) + \
            " (%d buckets)" % len(v)
    return str(v)


def order_fact(qemu_names, our_names):
    """How QEMU orders a list relative to ours (descriptor order)."""
    if qemu_names == our_names:
        return "descriptor order"
    if qemu_names == list(reversed(our_names)):
        return "reverse descriptor order"
    if sorted(qemu_names) == sorted(our_names):
        return "another order"
    return "different members"


def parse_hmp(text):
    """HMP 'info stats' output -> (header lines, {name: (meta, value)}, names
    in order).  A histogram's value is its list of counts, "[1]=a [2]=b ..."."""
    head, stats, order = [], {}, []
    for line in text.splitlines():
        m = re.match(r"^    (\S+) \((.*)\): (.*?) ?$", line)
        if not m:
            if line.strip():
                head.append(line.rstrip())
            continue
        name, meta, value = m.groups()
        if value.startswith("[1]="):
            value = [int(x.split("=", 1)[1]) for x in value.split()]
        stats[name] = (meta, value)
        order.append(name)
    return head, stats, order


def hmp_provider_block(text, provider):
    """The lines of one provider in HMP 'info stats' output without a
    PROVIDER argument: its "provider: NAME" line and the stat lines under it
    (the other providers' blocks dropped; lines before any provider kept)."""
    out, keep = [], True
    for line in text.splitlines():
        m = re.match(r"^\s*provider: (\S+)$", line)
        if m:
            keep = m.group(1) == provider
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def compare_hmp(qemu_text, our_text, hist_order="same", left_out=()):
    """QEMU's HMP 'info stats' and kvmstats info, on a paused VM: the same
    lines, as a set keyed by name (histograms in our bucket order), but for
    the stats in left_out (which our segment says it cannot have)."""
    qh, qs, _ = parse_hmp(qemu_text)
    kh, ks, _ = parse_hmp(our_text)
    qs = {n: v for n, v in qs.items() if n not in left_out}
    problems = []
    if qh != kh:
        problems.append("header lines: QEMU %s, ours %s" % (qh, kh))
    for n in sorted(set(qs) | set(ks)):
        if n not in qs or n not in ks:
            problems.append("%s: only in %s" % (n, "QEMU's" if n in qs else "ours"))
            continue
        qmeta, qv = qs[n]
        if isinstance(qv, list) and hist_order == "reversed":
            qv = list(reversed(qv))
        if (qmeta, qv) != ks[n]:
            problems.append("%s: QEMU (%s): %s, ours (%s): %s" % (n, qmeta, short(qv)
                            if isinstance(qv, list) else qv, ks[n][0],
                            short(ks[n][1]) if isinstance(ks[n][1], list) else ks[n][1]))
    if not qs:
        problems.append("no stat lines from QEMU")
    return problems
