#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kvmstats-exporter over HTTP, against simulated VMs and a real Prometheus.

    tests/exporter/test_http.py BUILD

What a user of the exporter relies on, end to end:
  - promtool check metrics finds nothing to say, in both modes; the
    OpenMetrics answer parses with a strict parser; Accept is honoured;
  - / links to the metrics, other paths are 404, other methods 405;
  - a corrupt segment is skipped with a logged reason, the rest served;
  - 200 idle connections, a client that never finishes its request and
    one that never reads do not block a normal scrape;
  - a stopped publisher shows as stale (up 0, its stats gone);
  - a real Prometheus scraping every second sees up == 1, exit rates
    close to what the segments show, a median inside the bucket the
    segment says, a VM that ends disappear and a killed one as stale.

Every wait polls for its condition with a deadline; nothing relies on a
sleep being long enough.  Children are stopped by PID at the end.
Uses the system's python3 (Debian's prometheus_client), stdlib otherwise.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import checks  # noqa: E402
from checks import check  # noqa: E402
from procs import Child, children  # noqa: E402

BUILD = sys.argv[1]
EXPORTER = os.path.join(BUILD, "kvmstats-exporter")
KVMSTATSD = os.path.join(BUILD, "kvmstatsd")
KVMSTATS = os.path.join(BUILD, "kvmstats")
FIXTURE = os.path.join(BUILD, "tests", "tools", "ks_fixture")
MONITORING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reader",
                          "exporter", "monitoring")
RULES = os.path.join(MONITORING, "kvmstats-rules.yml")
DASHBOARD = os.path.join(MONITORING, "kvmstats-dashboard.json")
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
               "application/openmetrics-text;version=0.0.1;q=0.75,"
               "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
DEADLINE = 60.0



def wait_for(what, cond, deadline=DEADLINE, step=0.1):
    """checks.wait_for(), with this test's longer default deadline."""
    return checks.wait_for(what, cond, deadline, step)


def http(url, accept=None, method="GET", timeout=10):
    req = urllib.request.Request(url, method=method)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def samples(text):
    """{'name{labels}': value-string} of a text-format exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = v
    return out


def start_exporter(seg_dir, *extra):
    ex = Child([EXPORTER, "--web.listen-address=127.0.0.1:0", "--dir", seg_dir,
                "--web.timeout=5"] + list(extra))

    def port():
        for line in ex.log():
            if "listening on 127.0.0.1:" in line:
                return int(line.rsplit(":", 1)[1])
        if ex.p.poll() is not None:
            raise RuntimeError("exporter exited: %s" % ex.log())
        return None
    p = wait_for("exporter listens", port)
    return ex, "http://127.0.0.1:%d" % p


def promtool_clean(text, what):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check(r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "",
          "promtool check metrics, %s: rc %d %s%s" % (what, r.returncode,
                                                     r.stdout.strip()[:300], r.stderr.strip()[:300]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    base = os.environ.get("KVMSTATS_SHM_DIR") or ""
    seg_dir = tempfile.mkdtemp(prefix="exporter.", dir=base or None)
    work = tempfile.mkdtemp(prefix="kvmstats-exporter-test.")
    try:
        run(seg_dir, work)
    finally:
        for c in reversed(children):
            c.stop()
        shutil.rmtree(seg_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return checks.summary("exporter-http")


def command_lines(seg_dir):
    """Usage errors exit 2 and say what is wrong; nothing raw reaches the terminal."""
    cases = [
        (["--web.listen-address=:65536"], "port from 0"),
        (["--web.listen-address=nocolon"], "give HOST:PORT"),
        (["--web.listen-address=\x1b[2J:1"], "\\x1b"),
        (["--web.telemetry-path=/"], "telemetry-path"),
        (["--web.telemetry-path=/a b"], "only letters"),
        (["--web.max-threads=0"], "from 1 to 64"),
        (["--web.timeout=x"], "not a number"),
        (["--owner=no-such-user-here"], "no user"),
        (["--collector.stats-include=("], "not a regular expression"),
        (["--once=1"], "takes no value"),
        (["--bogus"], "no such option"),
        (["stray"], "unexpected argument"),
        (["--dir="], "give a directory"),
    ]
    for args, want in cases:
        r = subprocess.run([EXPORTER, "--dir", seg_dir] + args, capture_output=True, text=True,
                           errors="replace")
        check(r.returncode == 2 and want in r.stderr and "\x1b" not in r.stderr,
              "%s: exit %d, says %r" % (" ".join(args).encode("unicode_escape").decode(),
                                       r.returncode, r.stderr.strip().split("\n")[0][:90]))
    r = subprocess.run([EXPORTER, "--once", "--dir", os.path.join(seg_dir, "missing")],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "cannot list segments" in r.stderr,
          "--once of a directory that is not there: exit %d" % r.returncode)
    r = subprocess.run([EXPORTER, "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "--web.listen-address" in r.stdout, "--help: exit 0, usage")


def real_vm(seg_dir, url):
    """promtool on the scrape of a real VM, where this host's /dev/kvm works."""
    c = Child([KVMSTATSD, "--dir", seg_dir, "--spawn-vm", "2", "--name", "real-vm", "-q"])
    seg = os.path.join(seg_dir, "kvmstats.real-vm")
    if not wait_for("a real VM published or refused", lambda: os.path.exists(seg) or
                    c.p.poll() is not None, 30) or c.p.poll() is not None:
        c.p.wait()
        print("skip: a real VM: kvmstatsd --spawn-vm says: %s"
              % (c.log()[-1] if c.log() else "exit %s" % c.p.returncode))
        return
    key = 'kvm_vcpu_exits_total{vm="real-vm"}'
    got = wait_for("the real VM's exits served", lambda: (lambda s: s if int(s.get(key, "0")) > 0
                   else None)(samples(http(url + "/metrics")[2])), 30)
    if got:
        check(True, "a real VM (/dev/kvm): exits %s" % got[key])
        promtool_clean(http(url + "/metrics")[2], "with a real VM, per-VM sums")
        r = subprocess.run([EXPORTER, "--once", "--collector.vcpu", "--dir", seg_dir],
                           capture_output=True, text=True)
        promtool_clean(r.stdout, "with a real VM, per-vCPU series")
    c.stop()


def run(seg_dir, work):
    command_lines(seg_dir)
    vms = {}
    for name, vcpus in (("vm-a", 2), ("vm-b", 3), ("vm-c", 1)):
        vms[name] = Child([KVMSTATSD, "--dir", seg_dir, "--simulate", str(vcpus), "--name", name,
                           "--hz", "100", "-q"])
    pidfile = os.path.join(work, "fixed.pid")
    subprocess.run([FIXTURE, "--dir", seg_dir, "--serve", pidfile, "--name", "fixed"], check=True,
                   stdout=subprocess.DEVNULL)
    fixed_pid = int(open(pidfile).read())

    ex, url = start_exporter(seg_dir)
    exv, urlv = start_exporter(seg_dir, "--collector.vcpu")

    def all_up():
        s = samples(http(url + "/metrics")[2])
        return all(s.get('kvmstats_vm_up{vm="%s"}' % n) == "1" for n in list(vms) + ["fixed"])
    wait_for("every VM up in the exporter", all_up)

    # ---- formats and negotiation ---------------------------------------
    st, ctype, text = http(url + "/metrics")
    check(st == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8",
          "default format is text 0.0.4 (%s)" % ctype)
    promtool_clean(text, "per-VM sums")
    s = samples(text)
    check('kvm_vcpu_exits_total{vm="vm-b"}' in s and int(s['kvm_vcpu_exits_total{vm="vm-b"}']) > 0,
          "per-VM sum of exits served")
    check(not any('vcpu="' in k for k in s), "per-VM mode has no vcpu label")
    st, ctype, textv = http(urlv + "/metrics")
    promtool_clean(textv, "per-vCPU series")
    sv = samples(textv)
    n_exits = [k for k in sv if k.startswith("kvm_vcpu_exits_total{")]
    check(len(n_exits) == 2 + 3 + 1 + 2, "one exits series per vCPU: %d" % len(n_exits))
    st, ctype, om = http(url + "/metrics", accept=PROM_ACCEPT)
    check(ctype == "application/openmetrics-text; version=1.0.0; charset=utf-8",
          "Prometheus' Accept gets OpenMetrics (%s)" % ctype)
    check(om.endswith("# EOF\n"), "OpenMetrics ends with # EOF")
    for what, body in (("per-VM", om), ("per-vCPU", http(urlv + "/metrics", accept=PROM_ACCEPT)[2])):
        try:
            fams = list(text_string_to_metric_families(body))
            check(len(fams) > 50, "OpenMetrics %s parses strictly: %d families" % (what, len(fams)))
        except Exception as e:  # the parser's error is the finding
            check(False, "OpenMetrics %s parses strictly: %s" % (what, e))
    st, ctype, _ = http(url + "/metrics", accept="text/plain;version=0.0.4")
    check(ctype.startswith("text/plain; version=0.0.4"), "text/plain asked, text/plain given")

    real_vm(seg_dir, url)

    st, ctype, page = http(url + "/")
    check(st == 200 and ctype.startswith("text/html") and 'href="/metrics"' in page,
          "/ links to /metrics")
    check(http(url + "/nope")[0] == 404, "other paths: 404")
    check(http(url + "/metrics", method="POST")[0] == 405, "POST: 405")

    # ---- corrupt segments among good ones ----------------------------
    # A copy of a real segment with its data offset broken: refused at once.
    broken = os.path.join(seg_dir, "kvmstats.broken")
    with open(os.path.join(seg_dir, "kvmstats.fixed"), "rb") as f:
        img = bytearray(f.read())
    img[120:128] = b"\xff" * 8
    with open(broken, "wb") as f:
        f.write(img)
    os.chmod(broken, 0o600)
    s = samples(http(url + "/metrics")[2])
    check(s.get('kvmstats_exporter_segments{state="skipped"}') == "1", "corrupt segment skipped")
    check('kvm_vcpu_exits_total{vm="vm-a"}' in s and 'kvmstats_vm_up{vm="fixed"}' in s,
          "the good ones still served")
    check(wait_for("skip logged", lambda: any("kvmstats.broken skipped:" in l for l in ex.log()), 10),
          "the skip is logged with its reason")
    os.unlink(broken)
    # Garbage that never becomes ready: skipped once it has been so for 10 s
    # (checked at the end, after the Prometheus part has taken longer).
    with open(os.path.join(seg_dir, "kvmstats.garbage"), "wb") as f:
        f.write(os.urandom(4000))
    os.chmod(os.path.join(seg_dir, "kvmstats.garbage"), 0o600)

    # ---- clients that misbehave ------------------------------------------
    idle = []
    for _ in range(200):
        c = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        idle.append(c)
    half = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    noread = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    noread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for _ in range(20):
        noread.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    st, _, text = http(url + "/metrics", timeout=5)
    check(st == 200 and "kvmstats_vm_up" in text,
          "a scrape beside 200 idle, 1 half-sent and 1 non-reading connections: %.3f s"
          % (time.monotonic() - t0))
    for c in idle + [half, noread]:
        c.close()

    # ---- a stopped publisher is stale ----------------------------------
    vms["vm-c"].p.send_signal(signal.SIGSTOP)
    stale = wait_for("SIGSTOPped publisher shown stale", lambda: (lambda s: s.get(
        'kvmstats_vm_up{vm="vm-c"}') == "0" and s)(samples(http(url + "/metrics")[2])), 20)
    if stale:
        check('kvm_vcpu_exits_total{vm="vm-c"}' not in stale, "a stale VM's stats are not served")
        check(stale.get('kvmstats_vm_publisher_alive{vm="vm-c"}') == "1", "stale is not dead")
    vms["vm-c"].p.send_signal(signal.SIGCONT)
    wait_for("SIGCONTinued publisher up again", lambda: samples(http(url + "/metrics")[2]).get(
        'kvmstats_vm_up{vm="vm-c"}') == "1", 20)

    prometheus(ex, url, work, vms, fixed_pid)


def prometheus(ex, url, work, vms, fixed_pid):
    target = url.split("//", 1)[1]
    cfg = os.path.join(work, "prometheus.yml")
    r = subprocess.run(["promtool", "check", "config", os.path.join(MONITORING, "prometheus.yml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "promtool check config of the README's prometheus.yml")
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
    check(r.returncode == 0, "promtool check rules kvmstats-rules.yml: %s" % r.stdout.strip().split("\n")[-1].strip())
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "rule_files: ['%s']\n"
                "scrape_configs:\n  - job_name: kvmstats\n    static_configs:\n"
                "      - targets: ['%s']\n" % (RULES, target))
    prom = None
    for _ in range(5):          # a port taken between free_port() and bind: another
        port = free_port()
        prom = Child(["prometheus", "--config.file=" + cfg,
                      "--storage.tsdb.path=" + os.path.join(work, "data"),
                      "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"])
        api = "http://127.0.0.1:%d" % port

        def ready():
            if prom.p.poll() is not None:
                return "exited"
            try:
                return http(api + "/-/ready", timeout=2)[0] == 200
            except OSError:
                return False
        r = wait_for("Prometheus ready", ready)
        if r is True:
            break
        prom.stop()
    else:
        check(False, "Prometheus started")
        return

    def query(q, at=None):
        args = {"query": q}
        if at is not None:
            args["time"] = "%.3f" % at
        st, _, body = http(api + "/api/v1/query?" + urllib.parse.urlencode(args), timeout=10)
        if st != 200:
            return []
        return json.loads(body)["data"]["result"]

    def value(q, at=None):
        r = query(q, at)
        return float(r[0]["value"][1]) if len(r) == 1 else None

    check(wait_for("Prometheus scrapes the exporter: up == 1",
                   lambda: value('up{job="kvmstats"}') == 1.0), "up == 1")

    # Exit rates: Prometheus' rate() against the segments' own counters.
    def rates():
        r = query('rate(kvm_vcpu_exits_total[5s])')
        got = {x["metric"]["vm"]: float(x["value"][1]) for x in r}
        return got if all(got.get(n, 0) > 0 for n in vms) else None
    wait_for("rate() of exits for every VM", rates)
    # The same 5 s window on both sides: the segments' counters at its
    # ends, and Prometheus' rate() evaluated at its end.
    t1, a = time.time(), samples(http(url + "/metrics")[2])
    wait_for("five seconds pass", lambda: time.time() - t1 >= 5.0, 15)
    t2, b = time.time(), samples(http(url + "/metrics")[2])
    wait_for("Prometheus has scraped past the window", lambda: (value(
        'timestamp(up{job="kvmstats"})') or 0) > t2 + 1.0, 15)
    got = {x["metric"]["vm"]: float(x["value"][1])
           for x in query('rate(kvm_vcpu_exits_total[5s])', at=t2)}
    for n in vms:
        k = 'kvm_vcpu_exits_total{vm="%s"}' % n
        ref = (int(b[k]) - int(a[k])) / (t2 - t1)
        ratio = got.get(n, 0) / ref if ref > 0 else 0
        check(0.5 <= ratio <= 2.0, "rate(exits) of %s: Prometheus %.0f/s, segments %.0f/s (x%.2f)"
              % (n, got.get(n, 0), ref, ratio))

    monitoring(url, query)

    # The median of the fixed VM's halt_wait_hist: inside the segment's bucket.
    out = subprocess.run([KVMSTATS, "--dir", vms["vm-a"].argv[2], "query", "fixed", "--target", "vcpu",
                          "--names", "halt_wait_hist"], capture_output=True, text=True, check=True)
    buckets = None
    for tgt in json.loads(out.stdout):
        for stat in tgt["stats"]:
            v = stat["value"]
            buckets = v if buckets is None else [x + y for x, y in zip(buckets, v)]
    total = sum(buckets)
    rank, cum, b = 0.5 * total, 0, 0
    for b, c in enumerate(buckets):
        cum += c
        if cum >= rank:
            break
    last = len(buckets) - 1
    upper = ((1 << min(b, last - 1)) - 1) * 1e-9
    lower = 0.0 if b == 0 else ((1 << (b - 1)) - 1) * 1e-9
    q = wait_for("histogram_quantile over the fixed VM", lambda: value(
        'histogram_quantile(0.5, sum by (le) (kvm_vcpu_halt_wait_hist_seconds_bucket{vm="fixed"}))'))
    check(q is not None and lower <= q <= upper,
          "histogram_quantile(0.5) = %s lies in the segment's bucket %d [%g, %g]"
          % (q, b, lower, upper))
    os.kill(fixed_pid, signal.SIGTERM)

    # A VM that ends disappears; a killed publisher shows as stale.
    vms["vm-b"].stop(signal.SIGTERM)
    check(wait_for("ended VM gone from Prometheus", lambda: query(
        'kvmstats_vm_up{vm="vm-b"}') == [] and query('kvm_vcpu_exits_total{vm="vm-b"}') == []),
          "an ended VM disappears")
    vms["vm-c"].stop(signal.SIGKILL)
    check(wait_for("killed VM stale in Prometheus", lambda: value(
        'kvmstats_vm_up{vm="vm-c"}') == 0.0 and value(
        'kvmstats_vm_publisher_alive{vm="vm-c"}') == 0.0 and query(
        'kvm_vcpu_exits_total{vm="vm-c"}') == []), "a killed publisher shows as stale, stats gone")
    check(value('kvmstats_vm_up{vm="vm-a"}') == 1.0, "the others stay up")
    check(wait_for("stale alert pending", lambda: query(
        'ALERTS{alertname="KvmstatsStatsStale",vm="vm-c"}')),
          "the rules' stale alert goes pending for the killed publisher")
    # A publisher restarted under the killed one's name takes it over: followed.
    vms["vm-c"] = Child([KVMSTATSD, "--dir", vms["vm-a"].argv[2], "--simulate", "1", "--name",
                         "vm-c", "--hz", "100", "-q"])
    check(wait_for("restarted VM followed", lambda: value('kvmstats_vm_up{vm="vm-c"}') == 1.0 and
                   query('kvm_vcpu_exits_total{vm="vm-c"}') != []),
          "a publisher restarted under the same name is followed: up again, stats back")
    check(wait_for("never-ready garbage skipped", lambda: samples(http(url + "/metrics")[2]).get(
        'kvmstats_exporter_segments{state="skipped"}') == "1", 20) and
          any("kvmstats.garbage skipped:" in l and "for 10 s now" in l for l in ex.log()),
          "a file that never becomes ready is skipped, and said so, after 10 s")
    prom.stop()
    check(prom.p.returncode is not None, "Prometheus stopped by PID")


def monitoring(url, query):
    """Every series the rules and the dashboard name is served, and every expression works."""
    import re
    exprs = []
    with open(RULES) as f:
        rules = f.read()
    exprs += re.findall(r"expr: (.*(?:\n {10,}.*)*)", rules)
    recorded = set(re.findall(r"record: (\S+)", rules))
    with open(DASHBOARD) as f:
        dash = json.load(f)
    dash_exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            dash_exprs.append(re.sub(r"label_values\((.*), \w+\)", r"\1", v["query"]))
    exprs += dash_exprs
    served = set()
    for k in samples(http(url + "/metrics")[2]):
        served.add(k.split("{", 1)[0])
    names = set()
    for e in exprs:
        names |= set(re.findall(r"(?<![:\w])(?:kvm|kvmstats)_[a-z0-9_]+", e))
    missing = sorted(n for n in names if n not in served)
    check(names and not missing, "the %d series the rules and dashboard name are served%s"
          % (len(names), (": missing " + ", ".join(missing)) if missing else ""))
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\bvm:[a-z0-9_:]+", e))
    check(used <= recorded, "the dashboard's recorded series are the rules' own")
    subst = [(r"\$instance", ".*"), (r"\$vm", ".*"), (r"\$__rate_interval", "5s")]
    for e in dash_exprs + [r for r in sorted(recorded)]:
        q = e
        for a, b in subst:
            q = re.sub(a, b, q)
        check(wait_for("dashboard/rule expression has data: " + q[:60], lambda: query(q), 30),
              "has data in Prometheus: " + q[:100])


if __name__ == "__main__":
    sys.exit(main())
