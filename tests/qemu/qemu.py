# SPDX-License-Identifier: MIT
"""Launch a real, unmodified QEMU for the tests, and always take it down.

Two QEMUs: the host's own (/usr/bin/qemu-system-x86_64, Debian 12: 7.2)
and the trixie chroot's (tools/qemu/prepare-trixie.sh: 10.x).  The chroot's
QEMU runs as

    unshare -m --propagation private sh -c 'mount ...; exec chroot ROOT qemu ...'

so its /dev, /proc, /sys (and the build directory, for LD_PRELOAD) are
bind mounts in a mount namespace of its own: they vanish with the process,
whatever happens to the test, and nothing reaches the host's mount table.
unshare and sh exec, so the pid we start is QEMU's pid.  /dev is bound
recursively, so /dev/shm inside is the host's /dev/shm: segments, QMP and
intake sockets live in a run directory under /dev/shm and are the same
files on both sides.

Every QEMU gets two QMP monitors (a QMP monitor serves one client at a
time): qmp-test for the test, qmp-ks reserved for kvmstats (kvmstatsd
--qmp / KVMSTATS_PRELOAD_QMP, a feature being added elsewhere).

PR_SET_PDEATHSIG makes the kernel kill QEMU if the test itself is killed;
stop() quits it through QMP, then kills and reaps it whatever happened.
"""
import ctypes
import os
import signal
import subprocess
import time

import qmp

HOST_QEMU = "/usr/bin/qemu-system-x86_64"
PR_SET_PDEATHSIG = 1

# The mounts of the chroot's QEMU.  $1 root, $2 build dir, $3 run dir
# (under /dev/shm), then QEMU's own arguments.
CHROOT_SCRIPT = r'''
root=$1 build=$2 run=$3
shift 3
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind "$build" "$root$run/build"
exec chroot "$root" /usr/bin/qemu-system-x86_64 "$@"
'''

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Qemu:
    """One QEMU process.  kind: "7.2" (host) or "10" (chroot at root)."""

    def __init__(self, kind, run, build, root=None, name=None, env=None, smp=2, maxcpus=4,
                 extra=()):
        assert run.startswith("/dev/shm/"), "the run dir must be visible inside the chroot"
        self.kind = kind
        self.run = run
        self.qmp_test_path = os.path.join(run, "qmp-test.sock")
        self.qmp_ks_path = os.path.join(run, "qmp-ks.sock")
        self.log_path = os.path.join(run, "qemu.log")
        args = ["-accel", "kvm", "-machine", "q35", "-nodefaults", "-display", "none",
                "-m", "128", "-smp", "%d,maxcpus=%d" % (smp, maxcpus),
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_test_path,
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_ks_path]
        if name:
            args += ["-name", "guest=" + name]
        args += list(extra)
        if kind == "10":
            os.makedirs(os.path.join(run, "build"), exist_ok=True)
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-euc", CHROOT_SCRIPT,
                    "sh", root, os.path.abspath(build), run] + args
            # The shim as QEMU sees it, through the bind mount.
            self.shim = os.path.join(run, "build", "libkvmstats-preload.so")
        else:
            argv = [HOST_QEMU] + args
            self.shim = os.path.abspath(os.path.join(build, "libkvmstats-preload.so"))
        e = dict(os.environ)
        e.pop("LD_PRELOAD", None)
        for k, v in (env or {}).items():
            e[k] = v.replace("@SHIM@", self.shim)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=e,
                                     preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self.qmp = qmp.QMP(self.qmp_test_path)
        try:
            self.version = self.qmp.connect()
        except Exception:
            self.stop()
            raise

    def alive(self):
        return self.proc.poll() is None

    def quit(self, deadline=20.0):
        """QMP quit; returns QEMU's exit status (None if it had to be killed)."""
        try:
            self.qmp.execute("quit")
        except qmp.QMPError:
            pass  # QEMU may close the monitor before its reply
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self):
        """Always safe: kill and reap QEMU if it still runs."""
        self.qmp.close()
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass  # unkillable (D state); PDEATHSIG is moot, the kernel has it
        self.log.close()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""
