# SPDX-License-Identifier: MIT
"""A VMM that looks like QEMU to kvmstats, made of Python and ioctls.

It creates a KVM VM and vCPUs the way QEMU does (each vCPU on a thread of
its own, unless told otherwise) and serves a QMP monitor that answers
qmp_capabilities and query-cpus-fast with those threads' ids, so that the
preload shim (LD_PRELOAD into this python3: fcntl.ioctl is libc's ioctl)
and kvmstatsd --attach can be tried where a real QEMU cannot be made to
misbehave: a monitor that starts late, a vCPU created just as the monitor
answers, two vCPUs of one thread, a daemon stopped under the shim.

    fake_qemu.py --qmp PATH [--vcpus N] [--qmp-after SEC] [--one-thread]
                 [--keep-stats] [--race] [-name guest=NAME]

stdin, one command a line: "add" creates one more vCPU; "quit" (or EOF) exits 0.
stdout: "ready <pid>" once the first vCPUs exist, "added <n> <seconds>"
after each add (how long KVM_CREATE_VCPU took, the shim's work included),
"raced <n>" when --race made one.
"""
import argparse
import fcntl
import json
import os
import socket
import sys
import threading
import time

KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_GET_STATS_FD = 0xAECE

lock = threading.Lock()
cpus = []           # (index, thread id, qom path), as query-cpus-fast lists them
kept = []           # stats fds kept open, as QEMU >= 8.1 does (--keep-stats)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_vcpu(vm, index, keep, done=None):
    tid = threading.get_native_id()
    fd = fcntl.ioctl(vm, KVM_CREATE_VCPU, index)
    if keep:
        kept.append(fcntl.ioctl(fd, KVM_GET_STATS_FD, 0))
    with lock:
        cpus.append((index, tid, "/machine/unattached/device[%d]" % index))
    if done is not None:
        done.set()


def vcpu_thread(vm, index, keep, done):
    make_vcpu(vm, index, keep, done)
    threading.Event().wait()    # a vCPU thread lives as long as its VM


def serve(conn, on_query):
    f = conn.makefile("rb")
    conn.sendall(b'{"QMP": {"version": {"qemu": {"major": 10, "minor": 0, "micro": 0}, '
                 b'"package": "fake"}, "capabilities": []}}\r\n')
    for line in f:
        m = json.loads(line)
        if m.get("execute") == "query-cpus-fast":
            with lock:
                ret = [{"cpu-index": i, "thread-id": t, "qom-path": p, "target": "x86_64"}
                       for i, t, p in sorted(cpus)]
        else:
            ret = {}
        conn.sendall((json.dumps({"return": ret, "id": m.get("id")}) + "\r\n").encode())
        if m.get("execute") == "query-cpus-fast":
            on_query()
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--qmp-after", type=float, default=0)
    ap.add_argument("--one-thread", action="store_true")
    ap.add_argument("--keep-stats", action="store_true")
    ap.add_argument("--race", action="store_true")
    # QEMU's own spelling, so that kvmstats reads it from /proc/PID/cmdline.
    ap.add_argument("-name", dest="qemu_name")
    a = ap.parse_args()
    kvm = os.open("/dev/kvm", os.O_RDWR)
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    if a.one_thread:
        for i in range(a.vcpus):
            make_vcpu(vm, i, a.keep_stats)
    else:
        for i in range(a.vcpus):
            done = threading.Event()
            threading.Thread(target=vcpu_thread, args=(vm, i, a.keep_stats, done),
                             daemon=True).start()
            done.wait()
    next_index = [a.vcpus]
    raced = []

    def on_query():
        # --race: a vCPU created the moment the shim has its answer, while
        # it publishes with the lock dropped (the shim's vCPU table grows).
        if a.race and not raced:
            raced.append(1)
            i = next_index[0]
            next_index[0] += 1
            done = threading.Event()
            threading.Thread(target=vcpu_thread, args=(vm, i, a.keep_stats, done),
                             daemon=True).start()
            done.wait()
            say("raced %d" % i)

    def monitor():
        if a.qmp_after:
            time.sleep(a.qmp_after)     # a main loop busy at first: no monitor yet
        s = socket.socket(socket.AF_UNIX)
        s.bind(a.qmp)
        s.listen(8)
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, on_query), daemon=True).start()

    threading.Thread(target=monitor, daemon=True).start()
    say("ready %d" % os.getpid())
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "add":
            i = next_index[0]
            next_index[0] += 1
            done = threading.Event()
            t0 = time.monotonic()
            threading.Thread(target=vcpu_thread, args=(vm, i, a.keep_stats, done),
                             daemon=True).start()
            done.wait()
            say("added %d %.3f" % (i, time.monotonic() - t0))
        elif cmd == "quit":
            break
    sys.stdout.flush()
    sys.exit(0)     # exit(): the shim's destructor ends its segments


if __name__ == "__main__":
    main()
