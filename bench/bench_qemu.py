#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real QEMU's stats three ways, side by side in one run, on the same VM:

  - QMP query-stats through QEMU itself (its own monitor);
  - the same QMP command through kvmstats qmp (answered from shared memory);
  - the reader library: one vCPU's record, and a cut of the whole VM
    (bench/bench_segment, in C).

For QEMU 7.2 (the host's, under the preload shim) and QEMU 10 (the trixie
chroot's, under kvmstatsd --attach), with the ratios and the signal_exits
each query adds per call (QEMU 7.2 kicks every vCPU on query-stats; 10 does
not).  The QMP round trips are timed from Python, the same client for both
servers, so their ratio is fair; the reader library is timed in C.

    bench/bench_qemu.py BUILD [CALLS] [RESULT.json]

Needs /dev/kvm and root for QEMU 10 (it says what it skips and why).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "qemu"))
import test_qemu as tq  # noqa: E402  (its launchers and helpers; main() is not run)
import qmp  # noqa: E402

CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
OUT = sys.argv[3] if len(sys.argv) > 3 else None


def p50_us(samples):
    return statistics.median(samples) * 1e6


def time_calls(client, n, **args):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.execute("query-stats", **args)
        t.append(time.perf_counter() - t0)
    return t


def kicks_per_call(s, client, n, **args):
    a = s.signal_exits()
    for _ in range(n):
        client.execute("query-stats", **args)
    return (s.signal_exits() - a) / n


def one(kind, way, root, run_root, results):
    s = tq.Scenario(kind, way, root, run_root)
    ks_qmp = None
    try:
        if not s.launch():
            return
        e = tq.wait_for("%s published" % s.tag, lambda: tq.live_with(s.seg, s.name, 2), 30, 0.02)
        if not e:
            print("%s: not published, skipped" % s.tag)
            return
        sock = os.path.join(s.run, "kvmstats-qmp.sock")
        ks_qmp = tq.start_daemon([tq.KVMSTATS, "--dir", s.seg, "qmp", "--listen", sock, s.name],
                                 os.path.join(s.run, "kvmstats-qmp.log"))
        ours = qmp.QMP(sock)
        ours.connect()
        vcpu = dict(target="vcpu", providers=[{"provider": "kvm"}])
        vm = dict(target="vm", providers=[{"provider": "kvm"}])
        row = {"qemu": "%d.%d.%d" % (s.q.version["major"], s.q.version["minor"],
                                       s.q.version["micro"]), "way": way, "calls": CALLS}
        # Interleaved rounds, so that a noisy neighbour hits both alike.
        qv, kv, qm, km = [], [], [], []
        for _ in range(4):
            qv += time_calls(s.q.qmp, CALLS // 4, **vcpu)
            kv += time_calls(ours, CALLS // 4, **vcpu)
            qm += time_calls(s.q.qmp, CALLS // 4, **vm)
            km += time_calls(ours, CALLS // 4, **vm)
        row.update(qemu_vcpu_us=p50_us(qv), kvmstats_qmp_vcpu_us=p50_us(kv),
                   qemu_vm_us=p50_us(qm), kvmstats_qmp_vm_us=p50_us(km))
        row["qemu_kicks_per_call"] = kicks_per_call(s, s.q.qmp, 50, **vcpu)
        row["kvmstats_qmp_kicks_per_call"] = kicks_per_call(s, ours, 50, **vcpu)
        r = subprocess.run([os.path.join(tq.BUILD, "bench", "bench_segment"), "-d", s.seg,
                            "-n", "20000", s.name], stdout=subprocess.PIPE, text=True)
        seg = json.loads(r.stdout) if r.returncode == 0 else {}
        # p50s, or means where the TSC steps coarsely (bench/bench_util.h)
        row.update(record_ns=seg.get("record_ns"), cut_ns=seg.get("cut_ns"),
                   vcpus=seg.get("vcpus"))
        ours.close()
        results.append(row)
    finally:
        if s.q:
            s.q.stop()
        for d in (ks_qmp, s.daemon):
            if d:
                tq.stop_daemon(d)


def main():
    why = tq.kvm_usable()
    if why:
        print("bench_qemu: skipped: %s" % why)
        return 0
    run_root = tempfile.mkdtemp(prefix="kvmstats-bench-qemu.", dir="/dev/shm")
    tq.FIRMWARE = tq.build_firmware(run_root)
    results = []
    try:
        if os.access(tq.qemu.HOST_QEMU, os.X_OK):
            one("7.2", "inprocess", None, run_root, results)
        else:
            print("bench_qemu: QEMU 7.2 skipped (no %s: bench/install-deps.sh installs "
                  "qemu-system-x86)" % tq.qemu.HOST_QEMU)
        r = subprocess.run(["sh", tq.PREPARE], stdout=subprocess.PIPE, text=True)
        root = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() \
            else None
        if root and os.getuid() == 0:
            one("10", "attach", root, run_root, results)
        else:
            print("bench_qemu: QEMU 10 skipped (no trixie chroot, or not root)")
    finally:
        tq.cleanup()
        shutil.rmtree(run_root, ignore_errors=True)
    print("Real QEMU, one VM of 2 vCPUs, query-stats round trip p50 (%d calls per row, "
          "Python client) beside the reader library (C):" % CALLS)
    print("%-6s %-9s | %12s %12s %6s | %12s %12s %6s | %10s %10s | %7s %7s" % (
        "QEMU", "way in", "QEMU vcpu", "ks-qmp vcpu", "ratio", "QEMU vm", "ks-qmp vm",
        "ratio", "record", "cut", "kicks", "ks kick"))
    for row in results:
        rec, cut = row["record_ns"], row["cut_ns"]
        print("%-6s %-9s | %10.0f us %10.0f us %5.1fx | %10.0f us %10.0f us %5.1fx | "
              "%7.0f ns %7.0f ns | %7.2f %7.2f" % (
                  row["qemu"], row["way"], row["qemu_vcpu_us"], row["kvmstats_qmp_vcpu_us"],
                  row["qemu_vcpu_us"] / row["kvmstats_qmp_vcpu_us"], row["qemu_vm_us"],
                  row["kvmstats_qmp_vm_us"], row["qemu_vm_us"] / row["kvmstats_qmp_vm_us"],
                  rec or 0, cut or 0, row["qemu_kicks_per_call"],
                  row["kvmstats_qmp_kicks_per_call"]))
        if rec and cut:
            row["ratio_qemu_vcpu_to_record"] = row["qemu_vcpu_us"] * 1000 / rec
            row["ratio_qemu_vcpu_to_cut"] = row["qemu_vcpu_us"] * 1000 / cut
            print("       QEMU's query-stats vcpu takes %.0fx a record read, %.0fx a VM cut"
                  % (row["ratio_qemu_vcpu_to_record"], row["ratio_qemu_vcpu_to_cut"]))
    if OUT:
        with open(OUT, "w") as f:
            for row in results:
                f.write(json.dumps(dict(row, name="real QEMU", group="qemu")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
