#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kvmstats top and kvmstats watch, as their users run them.

    tests/top/test_top_watch.py BUILD

  - watch: CSV that parses, a header once, rates equal to the value deltas
    over the publisher's timestamps (to the printed rounding), JSON lines,
    -L FILE appended and reopened on SIGHUP, a stale publisher in the
    record, a VM that ends: said, exit 0;
  - top --once and --json: the table, and p50/p90/p99 equal to the buckets
    this test computes from the fixture's histogram with the kernel's rule;
  - top in tmux: rates on screen and not zero, the filter (with its match
    count), sort, per-vCPU view, help, quit with the terminal restored; a
    VM that ends shown as ended; a TERM without a description refused;
    the same on a real VM where /dev/kvm works;
  - bad input: clear messages and exit 2 (1 for a VM that is not there).
Every wait polls with a deadline; children are stopped by PID.
"""
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import checks  # noqa: E402
from checks import check, wait_for  # noqa: E402

BUILD = sys.argv[1]
KVMSTATS = os.path.abspath(os.path.join(BUILD, "kvmstats"))
KVMSTATSD = os.path.abspath(os.path.join(BUILD, "kvmstatsd"))
FIXTURE = os.path.abspath(os.path.join(BUILD, "tests", "tools", "ks_fixture"))
procs = []


def start(argv):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def ks(d, *args, **kw):
    return subprocess.run([KVMSTATS, "--dir", d] + list(args), capture_output=True, text=True,
                          errors="replace", **kw)


def publisher(d, name, vcpus=2):
    p = start([KVMSTATSD, "--dir", d, "--simulate", str(vcpus), "--name", name, "--hz", "100",
               "-q"])
    wait_for("VM %s published" % name, lambda: ks(d, "list").stdout.find(name + " ") >= 0
             and "live" in ks(d, "list").stdout)
    return p


# ---- watch ----------------------------------------------------------------------

def test_watch(d):
    r = ks(d, "watch", "wa", "-i", "0.2", "-n", "6", "-s", "^(exits|halt_wait_ns|guest_mode)$",
           "--per-vcpu")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    check(r.returncode == 0 and r.stdout.count("time,mono_ns,sweep") == 1 and len(rows) == 6 * 6,
          "watch CSV: exit %d, a header once, %d rows" % (r.returncode, len(rows)))
    by = {}
    for row in rows:
        by.setdefault((row["target"], row["stat"]), []).append(row)
    bad = 0
    checked = 0
    for (target, stat), series in by.items():
        for a, b in zip(series, series[1:]):
            # No rate: an instant value, or a record the publisher was stale for.
            if b["rate"] == "" or a["state"] != "live" or b["state"] != "live":
                continue
            want = (int(b["value"]) - int(a["value"])) * 1e9 / (int(b["mono_ns"]) - int(a["mono_ns"]))
            checked += 1
            if abs(float(b["rate"]) - want) > 0.0005 + 1e-9 * want:
                bad += 1
                print("  %s %s: rate %s, deltas give %.4f" % (target, stat, b["rate"], want))
    check(checked >= 12 and bad == 0,
          "watch: %d rates equal the value deltas over the publisher's times" % checked)
    check(all(r_["rate"] == "" for r_ in rows if r_["stat"] == "guest_mode"),
          "watch: an instant value has no rate")
    r = ks(d, "watch", "wa", "-i", "0.1", "-n", "3", "-f", "jsonl", "-s", "^exits$")
    recs = [json.loads(l) for l in r.stdout.splitlines()]
    check(len(recs) == 3 and all(x["stats"][0]["stat"] == "exits" for x in recs) and
          any((x["stats"][0]["rate"] or 0) > 0 for x in recs[1:]),
          "watch JSON lines: 3 records, rates")

    # -L FILE: appended; reopened on SIGHUP (a rotated log starts with its header).
    log = os.path.join(d, "..", "watch.log")
    p = subprocess.Popen([KVMSTATS, "--dir", d, "watch", "wa", "-i", "0.1", "-s", "^exits$",
                          "-L", log], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    procs.append(p)
    wait_for("watch writes its log", lambda: os.path.exists(log) and
             open(log).read().count("\n") >= 3)
    os.rename(log, log + ".1")
    p.send_signal(signal.SIGHUP)
    wait_for("watch reopens its log on SIGHUP", lambda: os.path.exists(log) and
             open(log).read().count("\n") >= 3)
    stop(p)
    first, second = open(log + ".1").read(), open(log).read()
    check(first.startswith("time,") and second.startswith("time,") and p.returncode == 0,
          "watch -L: written, reopened on SIGHUP with a header, exit %s on SIGTERM" % p.returncode)


def test_watch_stale_and_end(d):
    import threading
    pub = publisher(d, "wb", 1)
    p = subprocess.Popen([KVMSTATS, "--dir", d, "watch", "wb", "-i", "0.2", "-s", "^exits$"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    lines = []
    t = threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True)
    t.start()
    wait_for("watch's first records", lambda: len(lines) >= 3)
    # Stopped until watch has recorded it stale: no sleep has to be long enough.
    pub.send_signal(signal.SIGSTOP)
    stale = wait_for("a stale record", lambda: any(",stale," in l for l in list(lines)), 30)
    pub.send_signal(signal.SIGCONT)
    stop(pub)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        check(False, "watch exits when its VM ends")
        p.kill()
        p.wait()
    err = p.stderr.read()
    t.join(timeout=20)
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    check(bool(stale) and any(r["state"] == "stale" and r["rate"] == "" for r in rows),
          "watch: a stopped publisher is reported stale in the record, with no rate")
    check(p.returncode == 0 and "VM 'wb' ended" in err,
          "watch: the VM ends: says so and exits 0 (%s)" % err.strip()[-60:])


# ---- top --once / --json ------------------------------------------------------------

def kernel_bucket_bounds(i, size):
    if i == size - 1:
        return ((1 << (i - 1)) if i else 0, None)
    return (0, 0) if i == 0 else (1 << (i - 1), (1 << i) - 1)


def test_top_once(d):
    r = ks(d, "top", "wa", "--once")
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and lines[0].startswith("VM wa  live") and
          lines[1].split()[:3] == ["TARGET", "STAT", "TOTAL"],
          "top --once: the header and the table")
    row = [l.split() for l in lines if len(l.split()) > 3 and l.split()[1] == "exits"]
    check(row and int(row[0][2]) > 0 and float(row[0][3]) > 0,
          "top --once: exits has a total and a rate: %s" % (row[0][2:4] if row else None))
    r = subprocess.run([KVMSTATS, "--dir", d, "top", "wa"], capture_output=True, text=True)
    check(r.returncode == 0 and "TARGET" in r.stdout,
          "top into a pipe: one look, as --once (as varnishstat)")

    # Percentiles against a histogram this test computes from the fixture's buckets.
    q = json.loads(ks(d, "query", "fx", "--target", "vcpu", "--names", "halt_wait_hist").stdout)
    buckets = [sum(col) for col in zip(*[t["stats"][0]["value"] for t in q])]
    total = sum(buckets)
    want = {}
    for name, qq in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        cum = 0
        for i, c in enumerate(buckets):
            cum += c
            if cum >= qq * total and c > 0:
                want[name] = kernel_bucket_bounds(i, len(buckets))
                break
    j = json.loads(ks(d, "top", "fx", "--json", "-f", "^halt_wait_hist$").stdout)
    got = j["rows"][0]
    check(got["total"] == total and all((got[k]["lo"], got[k]["hi"]) == want[k] for k in want),
          "top --json: count %d, p50/p90/p99 buckets %s as computed here" % (total, want))


# ---- top in tmux ------------------------------------------------------------------

SOCKET = ["kvmstats-test-%d-0" % os.getpid()]


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET[0]] + list(args), capture_output=True, text=True)


def new_session(cmd):
    """A session "top" running @cmd, on a server of its own: a server being
    killed can refuse a new session for a moment, so a fresh socket each time
    (and a retry)."""
    tmux("kill-server")
    for attempt in range(5):
        SOCKET[0] = "kvmstats-test-%d-%d" % (os.getpid(), int(time.monotonic() * 1000))
        r = tmux("new-session", "-d", "-s", "top", "-x", "150", "-y", "45", cmd)
        if r.returncode == 0:
            return True
        time.sleep(0.2)
    check(False, "tmux new-session: %s" % r.stderr.strip())
    return False


def screen():
    return tmux("capture-pane", "-p", "-t", "top").stdout


def test_top_tmux(d, vm, real=False):
    marker = os.path.join(d, "..", "top.rc")
    if os.path.exists(marker):
        os.unlink(marker)
    # The pane stays after top exits (sleep), so that what top left on it can be read.
    cmd = "TERM=xterm-256color %s --dir %s top %s; echo $? > %s; echo top-exited; sleep 60" % (
        KVMSTATS, d, vm, marker)
    new_session(cmd)
    what = "a real VM" if real else "a simulated VM"

    def rate_shown():
        for l in screen().splitlines():
            f = l.split()
            if len(f) > 4 and f[1] == "exits" and f[3] not in ("-", "0.0") and f[4] != "-":
                return l
        return None
    line = wait_for("top shows exits with a rate and a 10 s average", rate_shown, 30)
    check(bool(line), "top in tmux, %s: rates on screen, not zero: %s" % (what, (line or "").strip()[:70]))
    if real:
        tmux("send-keys", "-t", "top", "q")
        check(wait_for("top quits", lambda: os.path.exists(marker)), "top quits on q")
        tmux("kill-server")
        return
    tmux("send-keys", "-t", "top", "/")
    tmux("send-keys", "-t", "top", "-l", "exits$")
    tmux("send-keys", "-t", "top", "Enter")

    def filtered():
        s = screen()
        body = [l.split() for l in s.splitlines()[4:] if l.strip()]
        return ("filter /exits$/" in s and "match" in s and body and
                all(b[1].endswith("exits") for b in body)) and s
    check(bool(wait_for("filter applied", filtered, 10)), "top: the filter applies, with its match count")
    tmux("send-keys", "-t", "top", "r")
    check(bool(wait_for("sort by rate", lambda: "sort rate" in screen(), 10)), "top: r sorts by rate")
    tmux("send-keys", "-t", "top", "v")
    check(bool(wait_for("per-vCPU view", lambda: "vcpu1" in screen() and "per-vCPU view" in screen(), 10)),
          "top: v shows a row group per vCPU")
    tmux("send-keys", "-t", "top", "h")
    check(bool(wait_for("help", lambda: "kvmstats top: keys" in screen(), 10)), "top: h shows the keys")
    tmux("send-keys", "-t", "top", "x")
    wait_for("help closed", lambda: "TARGET" in screen(), 10)
    tmux("send-keys", "-t", "top", "q")
    check(bool(wait_for("top quits", lambda: os.path.exists(marker) and open(marker).read().strip(), 10))
          and open(marker).read().strip() == "0" and
          wait_for("the pane after top", lambda: "top-exited" in screen(), 10) and
          "TARGET" not in screen(),
          "top: q quits with exit 0 and the terminal restored (the table gone)")
    tmux("kill-server")


def test_top_tmux_end_and_term(d):
    pub = publisher(d, "tc", 1)
    marker = os.path.join(d, "..", "top2.rc")
    cmd = "TERM=xterm-256color %s --dir %s top tc; echo $? > %s" % (KVMSTATS, d, marker)
    new_session(cmd)
    wait_for("top shows tc", lambda: "VM tc" in screen())
    stop(pub)
    check(bool(wait_for("ended shown", lambda: "state: ended" in screen(), 15)),
          "top: a VM that ends is shown as ended, not frozen as live")
    tmux("send-keys", "-t", "top", "q")
    check(bool(wait_for("top quits", lambda: os.path.exists(marker), 10)), "top quits after the VM ended")
    cmd = "TERM=no-such-terminal %s --dir %s top wa 2>&1; sleep 5" % (KVMSTATS, d)
    new_session(cmd)
    check(bool(wait_for("TERM refused", lambda: "has no terminal description" in screen(), 10)),
          "top: a TERM without a description: a clear error")
    tmux("kill-server")


def test_top_picker(d):
    """No VM named and several live: the VM list first, with state, rate and heartbeat."""
    new_session("TERM=xterm-256color %s --dir %s top; sleep 60" % (KVMSTATS, d))
    # The whole list, not a screen caught while it is being drawn.
    s = wait_for("the VM list", lambda: (lambda x: "pick a VM" in x and " live " in x and
                                         " Hz " in x and "heartbeat" in x and x)(screen()), 15)
    check(bool(s), "top with several VMs: a list to pick from, with state, rate and heartbeat")
    tmux("send-keys", "-t", "top", "Enter")
    check(bool(wait_for("the picked VM's table", lambda: "TARGET" in screen(), 15)),
          "top: Enter opens the VM picked")
    tmux("send-keys", "-t", "top", "q")
    tmux("kill-server")


def test_bad_input(d):
    cases = [
        (["top", "wa", "--filter", "("], 2, "not a regular expression"),
        (["top", "wa", "--interval", "0"], 2, "--interval"),
        (["top", "wa", "--sort", "size"], 2, "--sort"),
        (["top", "a/b"], 2, "no segment can have"),
        (["top", "nosuchvm", "--once"], 1, "no segment"),
        (["watch", "wa", "--stats", "["], 2, "not a regular expression"),
        (["watch", "wa", "--interval", "x"], 2, "--interval"),
        (["watch", "wa", "--format", "xml"], 2, "--format"),
        (["watch", "wa", "--count", "0"], 2, "--count"),
        (["watch", "nosuchvm"], 1, "no segment"),
        (["watch", "wa", "--stats", "^nothing-matches$"], 1, "no stat"),
    ]
    for args, code, want in cases:
        r = ks(d, *args)
        check(r.returncode == code and want in r.stderr,
              "kvmstats %s: exit %d, %r" % (" ".join(args), r.returncode,
                                            r.stderr.strip().split("\n")[0][:80]))


def main():
    base = os.environ.get("KVMSTATS_SHM_DIR") or None
    work = tempfile.mkdtemp(prefix="top-watch.", dir=base)
    d = os.path.join(work, "seg")
    os.mkdir(d, 0o700)
    if shutil.which("tmux") is None:
        print("FAIL tmux is missing: make deps installs it")
        return 1
    try:
        publisher(d, "wa", 2)
        subprocess.run([FIXTURE, "--dir", d, "--serve", os.path.join(work, "fx.pid"), "--name",
                        "fx"], check=True, stdout=subprocess.DEVNULL)
        procs.append(None)
        test_bad_input(d)
        test_watch(d)
        test_watch_stale_and_end(d)
        test_top_once(d)
        test_top_tmux(d, "wa")
        test_top_tmux_end_and_term(d)
        test_top_picker(d)
        real = start([KVMSTATSD, "--dir", d, "--spawn-vm", "1", "--name", "realtop", "-q"])
        if wait_for("real VM", lambda: os.path.exists(os.path.join(d, "kvmstats.realtop")) or
                    real.poll() is not None, 30) and real.poll() is None:
            test_top_tmux(d, "realtop", real=True)
        else:
            print("skip: top on a real VM: kvmstatsd --spawn-vm could not make one here")
        stop(real)
    finally:
        tmux("kill-server")
        for p in procs:
            if p is not None:
                stop(p)
        try:
            os.kill(int(open(os.path.join(work, "fx.pid")).read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        shutil.rmtree(work, ignore_errors=True)
    return checks.summary("top-watch")


if __name__ == "__main__":
    sys.exit(main())
