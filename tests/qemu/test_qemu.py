#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kvmstats against real, unmodified QEMUs, each answer compared with that
same QEMU's own QMP answer about the same VM.

    tests/qemu/test_qemu.py BUILD

QEMUs: the host's (Debian 12: 7.2) and a trixie chroot's (10.x, made once
and cached by tools/qemu/prepare-trixie.sh).  Ways in:
  - QEMU 10 + kvmstatsd --attach PID (QEMU >= 8.1 keeps vCPU stats fds);
  - the shim, LD_PRELOAD into QEMU 7.2 and 10, modes inprocess and socket
    (socket: a kvmstatsd --listen of this test's own).
For each: every vCPU published; the schema of every target we publish
equal to query-stats-schemas (as sets keyed by name); labels mapped to
query-cpus-fast; on the paused VM (stop) every value equal, and kvmstats
info printing HMP 'info stats' lines (as a set); on the running
VM counters never behind QEMU's read before ours; device_add of a CPU -> a
new generation with one more vCPU; the segment ends at quit.  Measured and
printed, not asserted: signal_exits per query-stats call, and the
signal_exits of 1 kHz reads next to a control period without reads (that
one asserted too: reads never touch KVM).  The order facts (QEMU's stats,
schema and bucket order against ours) are printed with samples.

No /dev/kvm, or a QEMU that cannot run here: one SKIP line saying why,
exit 0.  Every QEMU and daemon is killed and reaped at the end, whatever
failed.  Every wait polls with a deadline; nothing sleeps to synchronise.
"""
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import abi_reader  # noqa: E402
import checks  # noqa: E402
from checks import check, wait_for  # noqa: E402
import compare  # noqa: E402
import qemu  # noqa: E402
import qmp  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
KVMSTATS = os.path.abspath(os.path.join(BUILD, "kvmstats"))
KVMSTATSD = os.path.abspath(os.path.join(BUILD, "kvmstatsd"))
PREPARE = os.path.join(HERE, "..", "..", "tools", "qemu", "prepare-trixie.sh")
HZ = 1000
daemons = []
qemus = []
facts = []  # the order facts and measurements, printed again at the end


def fact(line):
    facts.append(line)
    print("  " + line)


# ---- processes -------------------------------------------------------------------

def start_daemon(argv, log):
    f = open(log, "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         preexec_fn=qemu._die_with_parent)
    f.close()
    daemons.append(p)
    return p


def stop_daemon(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cleanup():
    for q in qemus:
        q.stop()
    for p in daemons:
        stop_daemon(p)


# ---- kvmstats, the reader --------------------------------------------------------

def ks(seg, *args):
    return subprocess.run([KVMSTATS, "--dir", seg] + list(args), capture_output=True,
                          text=True, errors="replace", timeout=30)


def ks_json(seg, *args):
    r = ks(seg, *args)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def entry(seg, name):
    for e in ks_json(seg, "list", "--json") or []:
        if e.get("name") == name:
            return e
    return None


def live_with(seg, name, vcpus, generation=None):
    e = entry(seg, name)
    if e and e["state"] == "live" and e["vcpus"] == vcpus and e["sweep"] > 0 and \
            (generation is None or e["generation"] >= generation):
        return e
    return None


def fresh_sweep(seg, name):
    """Wait until a sweep has started after now: the one under way when we
    look may have read its fds before our caller's QMP read, so we wait for
    the sweep number to move by 2.  Then anything we read is newer."""
    e = entry(seg, name)
    s = e["sweep"] if e else 0
    return wait_for("sweep %d+2 of %s" % (s, name),
                    lambda: (lambda x: x and x["sweep"] >= s + 2)(entry(seg, name)), 10, 0.002)


def targets_of(results, provider="kvm"):
    """{qom-path: {name: value}} of one provider's vCPU results (QEMU has
    only kvm; ours also carry sched, checked on its own)."""
    return {r["qom-path"]: compare.values_by_name(r) for r in results
            if "qom-path" in r and r.get("provider") == provider}


# ---- the checks of one QEMU and one way in ---------------------------------------

class Scenario:
    def __init__(self, kind, way, root, run_root):
        self.kind, self.way = kind, way
        self.tag = "QEMU %s %s" % (kind, way)
        self.name = "q%s-%s" % (kind.replace(".", ""), way)
        self.run = os.path.join(run_root, self.name)
        self.seg = os.path.join(self.run, "seg")
        os.makedirs(self.seg)
        self.root = root
        self.daemon = None
        self.ks_qmp = None		# kvmstats qmp, serving this VM from shared memory
        self.ours = None		# our QMP client of it
        self.q = None
        self.hist_order = "same"

    def launch(self):
        # The VM is named by QEMU's -name (qemu.Qemu passes guest=NAME), the
        # vCPUs by the QMP monitor kept for us: no kvmstats option names them.
        qmp_ks = os.path.join(self.run, "qmp-ks.sock")
        env = {}
        if self.way == "socket":
            sock = os.path.join(self.run, "intake.sock")
            self.daemon = start_daemon([KVMSTATSD, "--listen", sock, "--dir", self.seg,
                                        "--hz", str(HZ), "-q"],
                                       os.path.join(self.run, "kvmstatsd.log"))
            if not wait_for("%s: intake socket" % self.tag, lambda: os.path.exists(sock), 10,
                            0.01):
                return False
            env = {"LD_PRELOAD": "@SHIM@", "KVMSTATS_PRELOAD_MODE": "socket",
                   "KVMSTATS_SOCKET": sock, "KVMSTATS_PRELOAD_QMP": qmp_ks}
        elif self.way == "inprocess":
            env = {"LD_PRELOAD": "@SHIM@", "KVMSTATS_PRELOAD_MODE": "inprocess",
                   "KVMSTATS_SHM_DIR": self.seg, "KVMSTATS_PRELOAD_QMP": qmp_ks,
                   "KVMSTATS_PRELOAD_HZ": str(HZ)}
        self.q = qemu.Qemu(self.kind, self.run, BUILD, root=self.root, name=self.name, env=env,
                           extra=["-bios", FIRMWARE] if FIRMWARE else [])
        qemus.append(self.q)
        fact("%s: QEMU %d.%d.%d, pid %d" % (self.tag, self.q.version["major"],
                                             self.q.version["minor"], self.q.version["micro"],
                                             self.q.pid))
        if self.way == "attach":
            # The VM's own stats come from KVM's debugfs (QEMU keeps no VM stats
            # fd), mounted for the daemon alone, in a mount namespace of its own.
            self.daemon = start_daemon(
                ["unshare", "-m", "--propagation", "private", "sh", "-euc",
                 'mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug; '
                 'exec "$@"', "sh",
                 KVMSTATSD, "--attach", str(self.q.pid), "--dir", self.seg,
                 "--qmp", qmp_ks, "--hz", str(HZ), "--rescan-ms", "100"],
                os.path.join(self.run, "kvmstatsd.log"))
        return True

    def cpus(self):
        return self.q.qmp.execute("query-cpus-fast")

    # -- kvmstats qmp: the same QMP, answered from shared memory ---------------------------
    def start_ours(self):
        sock = os.path.join(self.run, "kvmstats-qmp.sock")
        self.ks_qmp = start_daemon([KVMSTATS, "--dir", self.seg, "qmp", "--listen", sock,
                                    self.name], os.path.join(self.run, "kvmstats-qmp.log"))
        self.ours = qmp.QMP(sock)
        self.ours.connect()
        g = self.ours.greeting["QMP"]
        check(g.get("capabilities") == [] and "kvmstats" in g["version"].get("package", ""),
              "%s: kvmstats qmp: greeting %s" % (self.tag, json.dumps(g)))

    def check_endpoint_static(self, n):
        """What does not move: the schemas, the vCPU set, filters, errors."""
        qs, _ = compare.schema_by_target(self.q.qmp.execute("query-stats-schemas"))
        ks_, _ = compare.schema_by_target(self.ours.execute("query-stats-schemas"))
        for t in ("vcpu", "vm"):
            want = qs.get(t, {})
            if self.way == "attach" and t == "vm":
                want = {k: v for k, v in want.items() if k not in self.vm_left_out}
            probs = compare.compare_schema(want, ks_.get(t, {}))
            for p in probs[:5]:
                print("  %s qmp %s schema: %s" % (self.tag, t, p))
            check(not probs and ks_.get(t), "%s: kvmstats qmp query-stats-schemas, %s: QEMU's "
                  "(%d stats)" % (self.tag, t, len(ks_.get(t, {}))))
        self.check_endpoint_cpus(n)
        # A filtered query: one vCPU by QOM path, two stats, a provider listed twice.
        first = sorted(c["qom-path"] for c in self.cpus())[0]
        args = dict(target="vcpu", vcpus=[first], providers=[
            {"provider": "kvm", "names": ["exits", "halt_wait_hist", "no-such-stat"]},
            {"provider": "kvm", "names": ["guest_mode"]}])
        shape = lambda res: sorted((r["provider"], r.get("qom-path"),
                                    tuple(sorted(s["name"] for s in r["stats"]))) for r in res)
        qr, kr = self.q.qmp.execute("query-stats", **args), self.ours.execute("query-stats", **args)
        qf, kf = shape(qr), shape(kr)
        fact("%s: side by side, query-stats %s:\n    QEMU: %s\n    ours: %s"
             % (self.tag, json.dumps(args), json.dumps(qr), json.dumps(kr)))
        check(qf == kf, "%s: kvmstats qmp: a filtered query-stats gives QEMU's results: %s"
              % (self.tag, kf if qf == kf else "QEMU %s, ours %s" % (qf, kf)))
        empty = dict(target="vcpu", vcpus=[])
        check(self.q.qmp.execute("query-stats", **empty) == [] ==
              self.ours.execute("query-stats", **empty),
              "%s: kvmstats qmp: vcpus [] selects nothing, as in QEMU" % self.tag)
        self.check_endpoint_errors()

    def check_endpoint_cpus(self, n):
        qc = {c["qom-path"]: c for c in self.cpus()}
        kc = {c["qom-path"]: c for c in self.ours.execute("query-cpus-fast")}
        same = sorted(qc) == sorted(kc) and all(
            kc[p].get("thread-id") == qc[p]["thread-id"] for p in qc)
        check(same and len(kc) == n, "%s: kvmstats qmp query-cpus-fast: QEMU's %d vCPUs, "
              "QOM paths and thread ids: %s" % (self.tag, n, sorted(
                  (p, c.get("thread-id"), c.get("cpu-index")) for p, c in kc.items())))
        fact("%s: query-cpus-fast cpu-index, QEMU %s, ours %s" % (
            self.tag, sorted((p, c["cpu-index"]) for p, c in qc.items()),
            sorted((p, c.get("cpu-index")) for p, c in kc.items())))

    def check_endpoint_errors(self):
        """Requests QEMU refuses: kvmstats qmp refuses them alike, class and desc."""
        bad = [{"execute": "no-such-command"},
               {"execute": "query-stats"},
               {"execute": "query-stats", "arguments": {"target": "bogus"}},
               {"execute": "query-stats", "arguments": {"target": "vm", "extra": 1}},
               {"execute": "query-stats", "arguments": {"target": "vcpu", "vcpus": "x"}},
               {"execute": "query-stats-schemas", "arguments": {"provider": 5}},
               {"execute": "qmp_capabilities"},
               {"execute": "query-stats", "arguments": {"target": "vm",
                                                        "providers": [{"names": []}]}}]
        diff = []
        for m in bad:
            qe, ke = self.q.qmp.raw(m).get("error"), self.ours.raw(m).get("error")
            if qe is None or ke is None or (qe["class"], qe["desc"]) != (ke["class"],
                                                                       ke["desc"]):
                diff.append("%s: QEMU %s, ours %s" % (json.dumps(m), qe, ke))
            else:
                fact("%s: %s -> both %s" % (self.tag, json.dumps(m), json.dumps(ke)))
        for d in diff:
            print("  %s qmp errors: %s" % (self.tag, d))
        check(not diff, "%s: kvmstats qmp: %d bad requests get QEMU's error class and "
              "wording" % (self.tag, len(bad)))

    def run_checks(self):
        q = self.q.qmp
        e = wait_for("%s: 2 vCPUs published" % self.tag,
                     lambda: live_with(self.seg, self.name, 2), 30, 0.02)
        if not check(bool(e), "%s: every vCPU published (2 of 2), as VM %s: the name of "
                     "QEMU's -name guest=%s" % (self.tag, self.name, self.name)):
            return
        self.gen = e["generation"]
        if self.kind == "10":
            self.check_same_files()
        self.check_schema()
        self.check_labels(2)
        self.start_ours()
        self.check_endpoint_static(2)
        self.check_paused()
        self.check_running()
        self.measure_query_kicks()
        self.measure_reads()
        self.check_hotplug()
        self.check_quit()

    def check_same_files(self):
        """The chroot's QEMU sees the host's /dev/shm: the segment (written
        inside the chroot by the shim inprocess, outside by kvmstatsd) is one
        inode on both sides."""
        path = os.path.join(self.seg, "kvmstats." + self.name)
        inside = os.stat("/proc/%d/root%s" % (self.q.pid, path))
        outside = os.stat(path)
        check((inside.st_dev, inside.st_ino) == (outside.st_dev, outside.st_ino) and
              os.readlink("/proc/%d/root" % self.q.pid) == self.root,
              "%s: QEMU runs in %s and sees our segment as the same file (inode %d)"
              % (self.tag, self.root, outside.st_ino))

    # -- schema ---------------------------------------------------------------------
    def check_schema(self):
        qs, qorder = compare.schema_by_target(self.q.qmp.execute("query-stats-schemas",
                                                                 provider="kvm"))
        ks_, korder = compare.schema_by_target(ks_json(self.seg, "schema", self.name) or [])
        self.types = {t: {n: v["type"] for n, v in s.items()} for t, s in qs.items()}
        self.has_vm = "vm" in ks_
        self.vm_left_out = set()
        for t in ("vcpu", "vm"):
            if t not in ks_:
                check(False, "%s: no %s target in our segment (note: %s)"
                      % (self.tag, t, (entry(self.seg, self.name) or {}).get("note")))
                continue
            want = qs.get(t, {})
            if self.way == "attach" and t == "vm":
                want = self.attach_vm_schema(want, ks_[t])
            probs = compare.compare_schema(want, ks_[t])
            for p in probs[:10]:
                print("  %s %s schema: %s" % (self.tag, t, p))
            check(not probs and ks_[t], "%s: %s schema identical to query-stats-schemas "
                  "(%d stats: names, types, units, base, exponent, bucket-size)"
                  % (self.tag, t, len(ks_[t])))
            fact("%s: query-stats-schemas %s stats in %s (first 3: QEMU %s, ours %s)"
                 % (self.tag, t, compare.order_fact(qorder.get(t, []), korder[t]),
                    qorder.get(t, [])[:3], korder[t][:3]))
        raw = self.q.qmp.execute("query-stats-schemas", provider="kvm")
        fact("%s: query-stats-schemas lists targets %s" % (self.tag, [s["target"] for s in raw]))
        self.korder = korder

    def attach_vm_schema(self, qemu_vm, ours):
        """Attach reads the VM's stats from KVM's debugfs.  Where kernel
        lockdown forbids the writable files (cumulative and peak stats), the
        segment's note says how many are left out: exactly those may be
        missing, and only those types; the rest must be QEMU's schema."""
        note = (entry(self.seg, self.name) or {}).get("note", "")
        m = re.search(r"(\d+) of its (\d+) VM stats cannot be read there", note)
        n_out = int(m.group(1)) if m else 0
        out = set(qemu_vm) - set(ours)
        check("KVM's debugfs" in note and len(out) == n_out and
              (not m or int(m.group(2)) == len(qemu_vm)) and
              all(qemu_vm[n]["type"] in ("cumulative", "peak") for n in out),
              "%s: VM stats from debugfs; the %d left out (%s) are what the note says: %r"
              % (self.tag, len(out), ", ".join(sorted(out)[:4]) + ("..." if len(out) > 4
                                                                  else ""), note))
        if out:
            fact("%s: this kernel's lockdown leaves %d of %d VM stats out of debugfs"
                 % (self.tag, len(out), len(qemu_vm)))
        self.vm_left_out = out
        return {n: v for n, v in qemu_vm.items() if n not in out}

    # -- labels -----------------------------------------------------------------------
    def check_labels(self, n):
        res = ks_json(self.seg, "query", self.name, "--target", "vcpu", "--names", "exits")
        labels = [r["qom-path"] for r in res or []]
        mapping, probs = compare.compare_labels(self.cpus(), labels)
        for p in probs:
            print("  %s labels: %s" % (self.tag, p))
        check(not probs and len(mapping) == n,
              "%s: %d vCPU labels, each mapped to one of QEMU's vCPUs" % (self.tag, n))
        cpus = {c["qom-path"]: c["thread-id"] for c in self.cpus()}
        fact("%s: thread-id -> label: %s" % (self.tag, ", ".join(
            "%d (%s) -> %s" % (cpus[p], p, l) for p, l in sorted(mapping.items()))))
        self.mapping = mapping
        return mapping

    # -- values -----------------------------------------------------------------------
    def both(self, target, via="cli"):
        """QEMU's query-stats, then ours from a sweep that began after it:
        through kvmstats query (via "cli") or kvmstats qmp (via "qmp")."""
        args = dict(target=target, providers=[{"provider": "kvm"}])
        qres = self.q.qmp.execute("query-stats", **args)
        fresh_sweep(self.seg, self.name)
        if via == "qmp":
            return qres, self.ours.execute("query-stats", **args)
        return qres, ks_json(self.seg, "query", self.name, "--target", target) or []

    def compare_target(self, target, mode, qres, kres):
        types = self.types[target]
        probs = []
        if target == "vm":
            qv = [{n: v for n, v in compare.values_by_name(r).items()
                   if n not in self.vm_left_out} for r in qres if r["provider"] == "kvm"]
            kv = [compare.values_by_name(r) for r in kres if r["provider"] == "kvm"]
            if len(qv) != 1 or len(kv) != 1:
                return ["%d VM results from QEMU, %d from us" % (len(qv), len(kv))]
            return compare.compare_values(types, qv[0], kv[0], mode, self.hist_order)
        qt, kt = targets_of(qres), targets_of(kres)
        for path, label in sorted(self.mapping.items()):
            if path not in qt or label not in kt:
                probs.append("%s / %s: missing from QEMU's or our answer" % (path, label))
                continue
            probs += ["%s: %s" % (path, p) for p in
                      compare.compare_values(types, qt[path], kt[label], mode, self.hist_order)]
        return probs

    def learn_orders(self, qres, kres):
        """The order facts, from the paused VM's answers (equal values)."""
        qt, kt = targets_of(qres), targets_of(kres)
        path = sorted(self.mapping)[0]
        label = self.mapping[path]
        qr = [r for r in qres if r.get("qom-path") == path and r["provider"] == "kvm"][0]
        kr = [r for r in kres if r.get("qom-path") == label and r["provider"] == "kvm"][0]
        fact("%s: query-stats vcpu stats in %s (first 3: QEMU %s, ours %s)"
             % (self.tag, compare.order_fact([s["name"] for s in qr["stats"]],
                                             [s["name"] for s in kr["stats"]]),
                [s["name"] for s in qr["stats"]][:3], [s["name"] for s in kr["stats"]][:3]))
        fact("%s: query-stats vcpu results in QEMU's order %s (query-cpus-fast: %s)"
             % (self.tag, [r["qom-path"] for r in qres],
                [c["qom-path"] for c in self.cpus()]))
        orients = {}
        for n, kv in kt[label].items():
            qv = qt[path].get(n)
            if isinstance(kv, list) and isinstance(qv, list):
                orients[n] = compare.hist_orientation(qv, kv)
        told = set(o for o in orients.values() if o in ("same", "reversed"))
        if len(told) == 1:
            self.hist_order = told.pop()
        sample = next((n for n in ("halt_wait_hist", "halt_poll_fail_hist")
                       if orients.get(n) in ("same", "reversed")),
                      next((n for n, o in orients.items() if o in ("same", "reversed")), None))
        fact("%s: histogram buckets: %s (%s); sample %s of %s: QEMU %s, ours %s"
             % (self.tag, self.hist_order, ", ".join("%s %s" % (n, o)
                                                     for n, o in sorted(orients.items())),
                sample, path, qt[path].get(sample), kt[label].get(sample)))

    def check_paused(self):
        q = self.q.qmp
        q.execute("stop")
        check(q.execute("query-status")["status"] == "paused", "%s: VM paused" % self.tag)
        qres, kres = self.both("vcpu")
        self.learn_orders(qres, kres)
        probs = self.compare_target("vcpu", "equal", qres, kres)
        for p in probs[:10]:
            print("  %s paused vcpu: %s" % (self.tag, p))
        check(not probs, "%s: paused VM: every vCPU stat of every vCPU equal to QEMU's "
              "(%d stats x %d vCPUs)" % (self.tag, len(self.types["vcpu"]), len(self.mapping)))
        self.check_sched(kres)
        for t in ("vcpu", "vm"):
            qres, ores = self.both(t, "qmp")
            probs = self.compare_target(t, "equal", qres, ores)
            for p in probs[:10]:
                print("  %s paused qmp %s: %s" % (self.tag, t, p))
            check(not probs, "%s: paused VM: kvmstats qmp query-stats %s equal to QEMU's, "
                  "values and shapes (bool, number, list)" % (self.tag, t))
        self.vm_ran = False
        if self.has_vm:
            self.check_vm_target("equal")
        self.check_hmp()
        q.execute("cont")

    def check_sched(self, kres):
        """Provider sched beside kvm: each vCPU's thread_id is the thread
        QEMU's query-cpus-fast names for that vCPU (QEMU creates and runs a
        vCPU on one thread, so creator and runner agree), and it has run."""
        threads = {c["qom-path"]: c["thread-id"] for c in self.cpus()}
        st = targets_of(kres, "sched")
        probs = []
        for path, label in sorted(self.mapping.items()):
            v = st.get(label)
            if v is None:
                probs.append("%s: no sched result" % label)
            elif v.get("thread_id") != threads[path] or not v.get("run_ns"):
                probs.append("%s: thread_id %s run_ns %s, QEMU's thread-id %d"
                             % (label, v.get("thread_id"), v.get("run_ns"), threads[path]))
        for p in probs:
            print("  %s sched: %s" % (self.tag, p))
        check(not probs and st, "%s: provider sched on every vCPU, thread_id = QEMU's thread-id, "
              "run_ns > 0 (runs_vcpu: %s)" % (self.tag, sorted(set(
                  v.get("thread_runs_vcpu") for v in st.values()))))

    def check_hmp(self):
        """HMP 'info stats' against kvmstats info, on the paused VM: vcpu for
        the monitor's current CPU (cpu-index 0), and vm where we have it."""
        hmp = lambda line: self.q.qmp.execute("human-monitor-command", **{"command-line": line})
        first = [c for c in self.cpus() if c["cpu-index"] == 0][0]["qom-path"]
        targets = [("vcpu", ["--vcpu", self.mapping[first]])]
        if self.has_vm:
            targets.append(("vm", []))
        for t, extra in targets:
            qtext = hmp("info stats " + t)
            r = ks(self.seg, "info", self.name, t, *extra)
            ours = compare.hmp_provider_block(r.stdout, "kvm")
            check(r.returncode == 0 and "provider: sched" in r.stdout,
                  "%s: kvmstats info %s also prints a provider: sched block" % (self.tag, t))
            probs = compare.compare_hmp(qtext, ours, self.hist_order,
                                        self.vm_left_out if t == "vm" else ())
            for p in probs[:10]:
                print("  %s info stats %s: %s" % (self.tag, t, p))
            check(r.returncode == 0 and not probs,
                  "%s: kvmstats info %s prints HMP 'info stats %s' lines (%d kvm stats, as a set)"
                  % (self.tag, t, t, len(compare.parse_hmp(ours)[1])))
            if t == "vcpu":
                _, _, qo = compare.parse_hmp(qtext)
                _, _, ko = compare.parse_hmp(ours)
                fact("%s: HMP info stats vcpu lines in %s (first 2: QEMU %s, ours %s)"
                     % (self.tag, compare.order_fact(qo, ko), qtext.splitlines()[1:3],
                        r.stdout.splitlines()[1:3]))

    def check_vm_target(self, mode):
        """The VM target, where our segment has one (the shim today; attach
        once it gets VM stats): QEMU opens a VM stats fd per query."""
        qres, kres = self.both("vm")
        probs = self.compare_target("vm", mode, qres, kres)
        for p in probs[:10]:
            print("  %s vm (%s): %s" % (self.tag, mode, p))
        check(not probs, "%s: VM target, %s: %d stats %s QEMU's" % (
            self.tag, "paused" if mode == "equal" else "running",
            len(self.types["vm"]) - len(self.vm_left_out),
            "equal to" if mode == "equal" else "never behind"))
        self.vm_ran = True

    def check_running(self, rounds=5):
        for via, says in (("cli", "no cumulative or peak stat (or bucket) of QEMU's read "
                                  "ahead of ours read after it"),
                          ("qmp", "kvmstats qmp's counters never behind QEMU's read before")):
            bad = []
            for _ in range(rounds):
                qres, kres = self.both("vcpu", via)
                bad += self.compare_target("vcpu", "monotonic", qres, kres)
            for p in bad[:10]:
                print("  %s running %s vcpu: %s" % (self.tag, via, p))
            check(not bad, "%s: running VM, %d rounds: %s" % (self.tag, rounds, says))
        if self.has_vm:
            self.check_vm_target("monotonic")

    # -- measurements ------------------------------------------------------------------
    def open_reader(self):
        path = os.path.join(self.seg, "kvmstats." + self.name)
        mm, size, fd = abi_reader.open_segment(path, None)
        seg = abi_reader.decode_schema(mm, size)
        return mm, seg, fd

    def signal_exits(self):
        """Total signal_exits over the vCPUs, from a sweep begun after now."""
        fresh_sweep(self.seg, self.name)
        res = ks_json(self.seg, "query", self.name, "--target", "vcpu", "--names",
                      "signal_exits") or []
        return sum(s["value"] for r in res for s in r["stats"])

    def measure_query_kicks(self, n=50):
        q = self.q.qmp
        a = self.signal_exits()
        t0 = time.monotonic()
        for _ in range(n):
            q.execute("query-stats", target="vcpu", providers=[{"provider": "kvm"}])
        dt = time.monotonic() - t0
        b = self.signal_exits()
        # A control period as long, without queries.
        c0 = self.signal_exits()
        end = time.monotonic() + dt
        while time.monotonic() < end:
            q.execute("query-status")
        c1 = self.signal_exits()
        fact("%s: signal_exits per QMP query-stats (vcpu target, all stats): %.2f per call "
             "over %d vCPUs (%d in %d calls, %.2f s; control %.2f s of query-status: %d)"
             % (self.tag, (b - a) / n, len(self.mapping), b - a, n, dt, dt, c1 - c0))

    def measure_reads(self, seconds=2.0):
        """Readers at 1 kHz add no vCPU exit: they never enter KVM."""
        mm, seg, fd = self.open_reader()
        try:
            a = self.signal_exits()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                time.sleep(0.001)
            b = self.signal_exits()
            reads = 0
            end = time.monotonic() + seconds
            nxt = time.monotonic()
            while time.monotonic() < end:
                abi_reader.read_cut(mm, seg)
                reads += 1
                nxt += 0.001
                d = nxt - time.monotonic()
                if d > 0:
                    time.sleep(d)
            c = self.signal_exits()
        finally:
            mm.close()
            os.close(fd)
        fact("%s: signal_exits over %.0f s: %d without readers, %d with %d VM-wide reads "
             "(%.0f Hz)" % (self.tag, seconds, b - a, c - b, reads, reads / seconds))
        # Slack of 2 per vCPU: the guest's own timer kicks are not ours to control.
        check(c - b <= (b - a) + 2 * len(self.mapping),
              "%s: 1 kHz reads add no signal_exits (%d, control %d)" % (self.tag, c - b, b - a))

    # -- hotplug and the end ---------------------------------------------------------------
    def check_hotplug(self):
        q = self.q.qmp
        free = [c for c in q.execute("query-hotpluggable-cpus") if "qom-path" not in c]
        if not check(bool(free), "%s: query-hotpluggable-cpus offers a free slot" % self.tag):
            return
        slot = sorted(free, key=lambda c: sorted(c["props"].items()))[0]
        args = dict(slot["props"])
        args["driver"] = slot["type"]
        args["id"] = "hotcpu"
        q.execute("device_add", **args)
        check(len(self.cpus()) == 3, "%s: device_add %s: QEMU has 3 vCPUs" % (self.tag, args))
        e = wait_for("%s: a new generation with 3 vCPUs" % self.tag,
                     lambda: live_with(self.seg, self.name, 3, self.gen + 1), 30, 0.02)
        check(bool(e) and e["generation"] > self.gen,
              "%s: device_add -> generation %s (was %d) with 3 vCPUs"
              % (self.tag, e and e["generation"], self.gen))
        if e:
            self.check_labels(3)
            ks_, _ = compare.schema_by_target(ks_json(self.seg, "schema", self.name) or [])
            qs, _ = compare.schema_by_target(q.execute("query-stats-schemas", provider="kvm"))
            check(not compare.compare_schema(qs["vcpu"], ks_.get("vcpu", {})),
                  "%s: the new generation's vCPU schema is still QEMU's" % self.tag)
            qres, kres = self.both("vcpu")
            probs = self.compare_target("vcpu", "monotonic", qres, kres)
            for p in probs[:10]:
                print("  %s 3 vCPUs: %s" % (self.tag, p))
            check(not probs, "%s: 3 vCPUs: counters never behind QEMU's" % self.tag)
            # kvmstats qmp follows the new generation on its open connection.
            wait_for("%s: kvmstats qmp sees 3 vCPUs" % self.tag,
                     lambda: len(self.ours.execute("query-cpus-fast")) == 3, 10, 0.02)
            self.check_endpoint_cpus(3)
        if self.way == "attach":
            self.try_unplug()

    def try_unplug(self):
        """device_del of a CPU is not tested: on x86 QEMU unplugs a CPU only
        through its "modern" ACPI CPU hotplug interface, which the guest's
        OS switches on by running QEMU's AML, and only once that OS has
        offlined the CPU and called _EJ0.  With no OS the interface stays in
        legacy mode and QEMU refuses the request (shown below).  A Linux
        guest would do it, but the guest kit's kernel does not get past its
        decompressor in a minute on this host's KVM (kvm_pvm).  Shown, not
        asserted."""
        try:
            self.q.qmp.execute("device_del", id="hotcpu")
            said = "accepted"
        except qmp.QMPError as e:
            said = "refused: %s" % e
        fact("%s: device_del hotcpu %s; QEMU has %d vCPUs: unplug not tested (needs a guest "
             "OS to run QEMU's ACPI CPU hotplug AML and eject)" % (self.tag, said,
                                                                  len(self.cpus())))

    def check_quit(self):
        status = self.q.quit()
        check(status == 0, "%s: QEMU quit, exit status %s" % (self.tag, status))
        gone = wait_for("%s: the segment ends" % self.tag,
                        lambda: (lambda x: x is None or x["state"] == "ended")(
                            entry(self.seg, self.name)), 15, 0.02)
        check(gone, "%s: the segment ends when QEMU quits" % self.tag)
        if self.way == "attach":
            try:
                rc = self.daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, "%s: kvmstatsd --attach exits 0 with the VMM (%s)" % (self.tag, rc))
        if self.daemon is not None:
            stop_daemon(self.daemon)
            check(self.daemon.returncode == 0, "%s: kvmstatsd stopped, exit %s"
                  % (self.tag, self.daemon.returncode))


FIRMWARE = None


def build_firmware(run_root):
    """tests/qemu/halt-fw.S -> a 64 KiB -bios image in the run dir (visible
    inside the chroot); None (QEMU's own SeaBIOS) if binutils fail."""
    src = os.path.join(HERE, "halt-fw.S")
    obj, out = os.path.join(run_root, "halt-fw.o"), os.path.join(run_root, "halt-fw.bin")
    for argv in (["as", "--32", "-o", obj, src],
                 ["ld", "-m", "elf_i386", "-e", "start", "-Ttext=0", "--oformat", "binary",
                  "-o", out, obj]):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            print("  %s failed: %s" % (argv[0], r.stderr.strip()))
            return None
    return out if os.path.getsize(out) == 65536 else None


def check_prepare_refusals(run_root):
    """prepare-trixie.sh where it cannot build: exit 77 and a reason, and a
    half-made chroot (no .kvmstats-ready) is never taken for a cache."""
    half = os.path.join(run_root, "half-made")
    os.makedirs(os.path.join(half, "usr", "bin"))
    env = dict(os.environ, KVMSTATS_QEMU_CACHE=half,
               KVMSTATS_QEMU_MIRROR="http://127.0.0.1:9/debian")
    r = subprocess.run(["sh", PREPARE], capture_output=True, text=True, env=env, timeout=120)
    check(r.returncode == 77 and "not reachable" in r.stderr and half not in r.stdout,
          "prepare-trixie.sh: a half-made chroot is not used, an unreachable repository is "
          "exit 77 with a reason (%d: %s)" % (r.returncode, r.stderr.strip().splitlines()[-1:]))
    if os.getuid() == 0 and shutil.which("setpriv"):
        # A copy nobody can read: the source tree may sit in a directory only
        # its owner may enter (a clone made in a mktemp -d directory is 0700).
        pub = tempfile.mkdtemp(prefix="kvmstats-prepare.", dir="/tmp")
        try:
            os.chmod(pub, 0o755)
            script = os.path.join(pub, "prepare-trixie.sh")
            shutil.copyfile(PREPARE, script)
            os.chmod(script, 0o644)
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "sh", script], capture_output=True, text=True, timeout=60,
                               cwd="/", env=dict(os.environ, KVMSTATS_QEMU_CACHE=half))
        finally:
            shutil.rmtree(pub, ignore_errors=True)
        check(r.returncode == 77 and "needs root" in r.stderr,
              "prepare-trixie.sh as nobody: exit 77, \"needs root\" (%d: %s)"
              % (r.returncode, r.stderr.strip().splitlines()[-1:]))


def check_same_name(run_root):
    """Two QEMUs started with one -name guest=dup on one host, under the
    shim: the first is VM dup; the second never takes its segment, is
    published as kvm-<its pid> and says so on stderr."""
    run = os.path.join(run_root, "same-name")
    seg = os.path.join(run, "seg")
    os.makedirs(seg)
    os.makedirs(os.path.join(run, "a"))
    os.makedirs(os.path.join(run, "b"))
    env = {"LD_PRELOAD": "@SHIM@", "KVMSTATS_PRELOAD_MODE": "inprocess",
           "KVMSTATS_SHM_DIR": seg, "KVMSTATS_PRELOAD_HZ": str(HZ)}
    first = second = None
    try:
        first = qemu.Qemu("7.2", os.path.join(run, "a"), BUILD, name="dup", env=env)
        qemus.append(first)
        e = wait_for("VM dup published", lambda: live_with(seg, "dup", 2), 30, 0.02)
        check(bool(e) and e["pid"] == first.pid, "same -name: the first QEMU is VM dup")
        second = qemu.Qemu("7.2", os.path.join(run, "b"), BUILD, name="dup", env=env)
        qemus.append(second)
        other = "kvm-%d" % second.pid
        e2 = wait_for("VM %s published" % other, lambda: live_with(seg, other, 2), 30, 0.02)
        e = entry(seg, "dup")
        check(bool(e2) and e2["pid"] == second.pid and e and e["pid"] == first.pid and
              "is taken" in second.log_text(),
              "same -name: the second QEMU is %s, dup is still the first's, and its shim "
              "said why: %s" % (other, second.log_text().strip().splitlines()[-1:]))
    except (qmp.QMPError, OSError) as ex:
        check(False, "same -name: %s: %s" % (type(ex).__name__, ex))
    finally:
        for q in (second, first):
            if q:
                q.stop()


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return "cannot open /dev/kvm: %s" % e.strerror
    os.close(fd)
    return None


def main():
    why = kvm_usable()
    if why:
        print("SKIP test_qemu: %s (the QEMUs run with -accel kvm; make test-kvm covers the "
              "kernel side in a TCG guest)" % why)
        return 0
    for f in ("kvmstats", "kvmstatsd", "libkvmstats-preload.so"):
        if not os.path.exists(os.path.join(BUILD, f)):
            print("test_qemu: %s/%s is missing: run make first" % (BUILD, f))
            return 1
    scenarios = []
    if os.access(qemu.HOST_QEMU, os.X_OK):
        scenarios += [("7.2", "inprocess"), ("7.2", "socket")]
    else:
        print("SKIP QEMU 7.2: no %s (apt-get install qemu-system-x86)" % qemu.HOST_QEMU)
    r = subprocess.run(["sh", PREPARE], stdout=subprocess.PIPE, text=True)
    root = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
    if root and os.getuid() != 0:
        print("SKIP QEMU 10: running the chroot's QEMU needs root (unshare -m, mount, chroot)")
    elif r.returncode == 77:
        print("SKIP QEMU 10: tools/qemu/prepare-trixie.sh cannot make the trixie chroot here "
              "(its message above says why)")
    elif root is None:
        check(False, "tools/qemu/prepare-trixie.sh: exit %d" % r.returncode)
    else:
        scenarios += [("10", "attach"), ("10", "inprocess"), ("10", "socket")]
    run_root = tempfile.mkdtemp(prefix="kvmstats-qemu.", dir="/dev/shm")
    global FIRMWARE
    FIRMWARE = build_firmware(run_root)
    check(FIRMWARE is not None, "the halting test firmware built (tests/qemu/halt-fw.S)")
    check_prepare_refusals(run_root)
    try:
        if ("7.2", "inprocess") in scenarios:
            check_same_name(run_root)
        for kind, way in scenarios:
            s = Scenario(kind, way, root, run_root)
            t0 = time.monotonic()
            try:
                if s.launch():
                    s.run_checks()
            except (qmp.QMPError, OSError, subprocess.SubprocessError, KeyError,
                    TypeError, ValueError, abi_reader.SegmentError, abi_reader.NoSample) as e:
                check(False, "%s: %s: %s" % (s.tag, type(e).__name__, e))
                if s.q:
                    print("  QEMU's output: " + s.q.log_text()[-2000:])
            finally:
                if s.ours:
                    s.ours.close()
                if s.q:
                    s.q.stop()
                for d in (s.ks_qmp, s.daemon):
                    if d:
                        stop_daemon(d)
            vmcheck = "VM target compared" if getattr(s, "vm_ran", False) else \
                "no VM target in the segment: VM comparison not run"
            fact("%s: %s; %.1f s" % (s.tag, vmcheck, time.monotonic() - t0))
    finally:
        cleanup()
        shutil.rmtree(run_root, ignore_errors=True)
    check(all(q.proc.poll() is not None for q in qemus) and
          all(p.poll() is not None for p in daemons),
          "no QEMU and no kvmstatsd left: %d QEMUs and %d daemons reaped" % (len(qemus),
                                                                           len(daemons)))
    if root:
        with open("/proc/self/mountinfo") as f:
            left = [l for l in f if root in l or run_root in l]
        check(not left, "no mount of the chroot or the run dir left on the host%s"
              % ("".join("\n    " + l.strip() for l in left)))
    print("facts:")
    for f in facts:
        print("  " + f)
    return checks.summary("test_qemu")


if __name__ == "__main__":
    sys.exit(main())
