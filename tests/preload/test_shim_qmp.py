#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""QEMU's vCPU names through the shim and attach, where a real QEMU cannot
be made to misbehave: tests/preload/fake_qemu.py is a VMM of ioctls with a
QMP monitor of its own, run under libkvmstats-preload.so or kvmstatsd
--attach.

  - the labels are the monitor's QOM paths, matched by the vCPU's thread,
    in both shim modes and through attach;
  - a vCPU created just as the monitor answers (the shim publishes with
    its lock dropped while the vCPU table grows): every vCPU labelled, the
    VMM alive (under an ASan build of the shim, a use of freed memory
    would kill it);
  - a monitor that starts late: the vCPUs are labelled once it answers,
    in a later generation (shim and attach ask again);
  - two vCPUs made by one thread: neither takes a QOM path (no two targets
    with one label);
  - socket mode with the daemon stopped (SIGSTOP): creating a vCPU does not
    wait for the daemon.

    tests/preload/test_shim_qmp.py BUILD      needs /dev/kvm (else SKIP)
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import checks  # noqa: E402
from checks import check, wait_for  # noqa: E402
from procs import Child, children  # noqa: E402

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
KVMSTATS = os.path.join(BUILD, "kvmstats")
KVMSTATSD = os.path.join(BUILD, "kvmstatsd")
SHIM = os.path.join(BUILD, "libkvmstats-preload.so")
FAKE = os.path.join(HERE, "fake_qemu.py")
PY = "/usr/bin/python3"
vmms = []           # every fake VMM, killed at the end whatever happened


def preload():
    """LD_PRELOAD for the shim; an ASan shim needs the ASan runtime first."""
    out = subprocess.run(["ldd", SHIM], stdout=subprocess.PIPE, text=True).stdout
    asan = [l.split("=>")[1].split()[0] for l in out.splitlines() if "libasan" in l and "=>" in l]
    return ":".join(asan + [SHIM])


class Vmm:
    """fake_qemu.py, talked to over its stdin and stdout."""

    def __init__(self, run, args, env):
        self.qmp = os.path.join(run, "qmp.sock")
        e = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", **env)
        self.p = subprocess.Popen([PY, FAKE, "--qmp", self.qmp] + args, env=e,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        vmms.append(self)
        self.err = []   # its stderr, drained by a thread: the shim's messages
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()
        line = self.line(30)
        self.pid = int(line.split()[1]) if line and line.startswith("ready") else None
        if self.pid is None:
            raise RuntimeError("fake_qemu.py did not start: %s" % (line or "no output"))

    def _drain(self):
        for l in self.p.stderr:
            self.err.append(l.rstrip("\n"))

    def said(self, what):
        return any(what in l for l in list(self.err))

    def line(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([self.p.stdout], [], [], max(0, end - time.monotonic()))
            if r:
                return self.p.stdout.readline().strip()
        return None

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def stop(self):
        if self.p.poll() is None:
            try:
                self.send("quit")
            except BrokenPipeError:
                pass
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t.join(timeout=10)
        return self.p.returncode


def labels(seg, vm):
    r = subprocess.run([KVMSTATS, "--dir", seg, "query", vm, "--target", "vcpu", "--names",
                        "exits"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        return None
    return sorted(x["qom-path"] for x in json.loads(r.stdout))


def qom(n):
    return sorted("/machine/unattached/device[%d]" % i for i in range(n))


def wait_labels(what, seg, vm, want, deadline=30):
    got = wait_for(what, lambda: (lambda l: l if l == want else None)(labels(seg, vm)),
                   deadline, 0.05)
    return got == want


def scenario(name):
    run = tempfile.mkdtemp(prefix="shimqmp-%s." % name, dir=ROOT)
    seg = os.path.join(run, "seg")
    os.makedirs(seg)
    return run, seg


def shim_env(mode, run, seg, sock=None):
    e = {"LD_PRELOAD": preload(), "KVMSTATS_PRELOAD_MODE": mode,
         "KVMSTATS_PRELOAD_QMP": os.path.join(run, "qmp.sock"), "KVMSTATS_SHM_DIR": seg}
    if sock:
        e["KVMSTATS_SOCKET"] = sock
    return e


def daemon(run, seg):
    sock = os.path.join(run, "intake.sock")
    d = Child([KVMSTATSD, "--listen", sock, "--dir", seg, "-q"])
    wait_for("intake socket", lambda: os.path.exists(sock), 10, 0.01)
    return d, sock


def test_labels(mode):
    run, seg = scenario("labels-" + mode)
    d, sock = daemon(run, seg) if mode == "socket" else (None, None)
    v = Vmm(run, ["--vcpus", "3"], shim_env(mode, run, seg, sock))
    vm = "kvm-%d" % v.pid
    check(wait_labels("%s: labels" % mode, seg, vm, qom(3)),
          "shim %s: 3 vCPUs labelled with the monitor's QOM paths: %s" % (mode, labels(seg, vm)))
    v.send("add")
    line = v.line(30)
    check(line is not None and line.startswith("added 3"), "shim %s: a vCPU added" % mode)
    check(wait_labels("%s: the added vCPU labelled" % mode, seg, vm, qom(4)),
          "shim %s: the added vCPU labelled too, in the next generation" % mode)
    check(v.stop() == 0, "shim %s: the VMM exits 0" % mode)
    if d:
        d.stop()


def test_race():
    """The reviewer's use-after-free: a vCPU created while a VM with labels
    is being published, the vCPU table reallocated under it (8 -> 9)."""
    run, seg = scenario("race")
    v = Vmm(run, ["--vcpus", "8", "--race"], shim_env("inprocess", run, seg))
    vm = "kvm-%d" % v.pid
    raced = v.line(30)
    check(raced == "raced 8", "race: a 9th vCPU made as the monitor answered (%s)" % raced)
    check(wait_labels("race: 9 labels", seg, vm, qom(9)),
          "race: all 9 vCPUs labelled, the VMM alive (%s)" % (v.p.poll() is None))
    rc = v.stop()
    asan = [l for l in v.err if "AddressSanitizer" in l or "ERROR" in l]
    check(rc == 0 and not asan, "race: the VMM exits 0, no memory error%s"
          % ("".join("\n    " + l for l in v.err[:15]) if asan or rc else ""))


def test_late_monitor():
    run, seg = scenario("late")
    v = Vmm(run, ["--vcpus", "2", "--qmp-after", "2.5"], shim_env("inprocess", run, seg))
    vm = "kvm-%d" % v.pid
    first = wait_for("late: published", lambda: labels(seg, vm), 20, 0.05)
    check(first is not None and all(l.startswith("kvm-") for l in first),
          "late monitor: published at once with KVM's ids: %s" % first)
    check(wait_labels("late: labels", seg, vm, qom(2)),
          "late monitor: QEMU asked again, the vCPUs carry QOM paths now")
    v.stop()
    check(wait_for("the shim said so", lambda: v.said("asking again") and
                   v.said("QOM paths now"), 10, 0.02),
          "late monitor: the shim said it would ask again, and when it had them")


def test_one_thread():
    run, seg = scenario("onethread")
    v = Vmm(run, ["--vcpus", "2", "--one-thread"], shim_env("inprocess", run, seg))
    vm = "kvm-%d" % v.pid
    got = wait_for("one thread: published", lambda: labels(seg, vm), 20, 0.05)
    check(got is not None and len(got) == 2 and len(set(got)) == 2 and
          all(l.startswith("kvm-") for l in got),
          "two vCPUs of one thread: neither takes a QOM path, labels stay unique: %s" % got)
    v.stop()


def test_stopped_daemon():
    """The daemon stopped before the VMM hands it anything: the shim's
    thread is stuck in its first send (5 s, then it gives up).  A vCPU
    created meanwhile must not wait for it.  Before the fix the thread held
    the shim's lock through one 5 s timeout per fd, and KVM_CREATE_VCPU
    waited for all of them (45 s for 8 vCPUs)."""
    run, seg = scenario("stopped")
    d, sock = daemon(run, seg)
    d.p.send_signal(signal.SIGSTOP)
    v = Vmm(run, ["--vcpus", "8"], shim_env("socket", run, seg, sock))
    check(v.pid is not None, "socket, daemon stopped: the VMM starts")
    # Into the window where the shim's thread waits on the daemon (it starts
    # sending 200 ms after the last vCPU, and waits 5 s): missing it can only
    # let the check pass, as the old code would have; it cannot fail wrongly.
    time.sleep(1.0)
    v.send("add")
    line = v.line(120)
    took = float(line.split()[2]) if line and line.startswith("added") else None
    check(took is not None and took < 10,
          "socket, daemon stopped: KVM_CREATE_VCPU returns at once (%s s)" % took)
    d.p.send_signal(signal.SIGCONT)
    # Continued within the shim's 5 s, the daemon answers and all 9 are
    # published; later than that (a machine stalled for seconds), the shim
    # has given up and said so.  Either is right; nothing else is.
    vm = "kvm-%d" % v.pid
    published = wait_for("stopped: 9 labels, or the shim gave up",
                         lambda: labels(seg, vm) == qom(9) or v.said("did not take"), 30, 0.05)
    rc = v.stop()
    gave_up = v.said("did not take")
    check(rc == 0 and published,
          "socket, daemon continued: the VMM exits 0, and %s" %
          ("all 9 vCPUs were published, labelled" if not gave_up else
           "the shim said the daemon did not answer in time"))
    d.stop()


def test_attach():
    """kvmstatsd --attach --qmp on the fake VMM (it keeps its stats fds, as
    QEMU >= 8.1 does), with its monitor starting late."""
    run, seg = scenario("attach")
    v = Vmm(run, ["--vcpus", "2", "--keep-stats", "--qmp-after", "2"], {})
    d = Child([KVMSTATSD, "--attach", str(v.pid), "--qmp", v.qmp, "--dir", seg,
               "--debugfs", "none", "--rescan-ms", "100"])
    vm = "kvm-%d" % v.pid
    check(wait_labels("attach: labels", seg, vm, qom(2)),
          "attach, late monitor: the vCPUs carry QOM paths once it answers")
    # Logged around publishing, read from its pipe by another thread: waited for.
    check(wait_for("attach said so", lambda: any("asking again" in l for l in d.log()) and
                   any("labelled again" in l for l in d.log()), 10, 0.02),
          "attach: said it would ask again, and published a labelled generation")
    v.stop()
    check(d.p.wait(timeout=20) == 0, "attach: kvmstatsd exits 0 with the VMM")


def tsan_shim():
    """A TSan build's shim leaves the TSan runtime to the executable, which
    must start with it: it cannot be preloaded into python3."""
    out = subprocess.run(["nm", "-D", "--undefined-only", SHIM], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    return "__tsan_" in out


def test_attach_same_name():
    """Two VMMs of one -name, each attached: the first is VM dup; the second
    never takes its segment, is kvm-<pid>, and the daemon says why."""
    run, seg = scenario("samename")
    first = Vmm(os.path.join(run), ["--vcpus", "1", "--keep-stats", "-name", "guest=dup"], {})
    run2 = os.path.join(run, "b")
    os.makedirs(run2)
    second = Vmm(run2, ["--vcpus", "1", "--keep-stats", "-name", "guest=dup"], {})
    d1 = Child([KVMSTATSD, "--attach", str(first.pid), "--dir", seg, "--debugfs", "none"])
    check(wait_for("VM dup", lambda: labels(seg, "dup"), 20, 0.05) is not None,
          "attach, same -name: the first VMM is VM dup")
    d2 = Child([KVMSTATSD, "--attach", str(second.pid), "--dir", seg, "--debugfs", "none"])
    other = "kvm-%d" % second.pid
    got = wait_for("VM %s" % other, lambda: labels(seg, other), 20, 0.05)
    # Said before it published, but read from its pipe by another thread: waited for.
    said = wait_for("kvmstatsd said why", lambda: [l for l in d2.log() if "is taken" in l],
                    10, 0.02)
    check(got is not None and said, "attach, same -name: the second is %s, and said why: %s"
          % (other, said[:1]))
    for v in (second, first):
        v.stop()
    for d in (d2, d1):
        d.p.wait(timeout=20)


def main():
    global ROOT
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        print("SKIP test_shim_qmp: cannot open /dev/kvm: %s" % e.strerror)
        return 0
    if tsan_shim():
        print("SKIP test_shim_qmp: %s is a TSan build, which cannot be preloaded into an "
              "uninstrumented python3; the gcc, clang and ASan builds run these checks" % SHIM)
        return 0
    ROOT = tempfile.mkdtemp(prefix="kvmstats-shimqmp.", dir="/dev/shm")
    try:
        for t in (lambda: test_labels("inprocess"), lambda: test_labels("socket"), test_race,
                  test_late_monitor, test_one_thread, test_stopped_daemon, test_attach,
                  test_attach_same_name):
            try:
                t()
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        for v in vmms:
            if v.p.poll() is None:
                v.p.kill()
                v.p.wait()
        for c in children:
            c.stop(signal.SIGKILL)
        shutil.rmtree(ROOT, ignore_errors=True)
    return checks.summary("test_shim_qmp")


if __name__ == "__main__":
    sys.exit(main())
