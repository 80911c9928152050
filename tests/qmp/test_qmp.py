#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""kvmstats qmp, a read-only QMP server, against simulated VMs.

    tests/qmp/test_qmp.py BUILD

What a QMP client relies on, end to end over the real sockets:
  - the greeting, qmp_capabilities negotiation and every served command;
  - query-stats with each of QEMU's filter rules (omitted = all, empty
    list = nothing, unknown names ignored, a provider listed twice queried
    twice, no entry for a target with no stats), equal to what
    'kvmstats query' and 'kvmstats schema' print for the same sweep;
  - QEMU's error classes and wording, with the request's id echoed;
  - many clients at once; a flooding, a garbage-sending and a never-reading
    client do not stop the others being served; --max-clients refuses;
  - socket mode and group, no replacing a regular file or a live server's
    socket, removal at exit;
  - a VM's next generation followed, a stopped (stale) publisher and an
    ended VM reported as such, --listen-dir following VMs.

Every wait polls its condition with a deadline (checks.wait_for); nothing
relies on a sleep being long enough.  Children are stopped by PID.
"""
import grp
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import checks  # noqa: E402
from checks import check  # noqa: E402
from procs import Child, children  # noqa: E402

BUILD = sys.argv[1]
KVMSTATSD = os.path.join(BUILD, "kvmstatsd")
KVMSTATS = os.path.join(BUILD, "kvmstats")
DEADLINE = 30.0


def wait_for(what, cond, deadline=DEADLINE, step=0.05):
    return checks.wait_for(what, cond, deadline, step)


class Qmp:
    """One QMP connection: send raw bytes or commands, read replies line by line."""

    def __init__(self, path, timeout=DEADLINE):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.greeting = self.read_raw()

    def read_raw(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        return json.loads(self.read_raw())

    def send(self, raw):
        self.s.sendall(raw if isinstance(raw, bytes) else raw.encode())

    def cmd(self, execute, arguments=None, **extra):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        msg.update(extra)
        self.send(json.dumps(msg))
        return self.read()

    def negotiate(self):
        return self.cmd("qmp_capabilities")

    def closed(self):
        """Whether the server closed the connection (after any pending replies)."""
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except OSError:
            return True

    def close(self):
        self.s.close()


def connectable(path):
    """Whether a server listens at @path and greets (a refusal is not a greeting)."""
    try:
        c = Qmp(path, timeout=5)
        c.close()
        return b'"QMP"' in c.greeting
    except (OSError, EOFError):
        return False


def start_vm(seg_dir, name, vcpus=2, hz=100):
    vm = Child([KVMSTATSD, "--simulate", str(vcpus), "--name", name, "--dir", seg_dir,
                "--hz", str(hz)])
    wait_for("VM %s publishes" % name, lambda: run_cli(seg_dir, "query", name, "--target",
                                                       "vm")[0] == 0)
    return vm


def start_qmp(seg_dir, *args, ready=None):
    q = Child([KVMSTATS, "--dir", seg_dir, "qmp"] + list(args))
    if ready:
        wait_for("qmp server listens on " + ready,
                 lambda: q.p.poll() is not None or connectable(ready))
    return q


def run_cli(seg_dir, *args):
    r = subprocess.run([KVMSTATS, "--dir", seg_dir] + list(args), capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def err(reply):
    e = reply.get("error", {})
    return e.get("class"), e.get("desc")


# ---- the protocol ------------------------------------------------------------

def test_greeting_and_negotiation(path):
    c = Qmp(path)
    g = json.loads(c.greeting)
    v = g.get("QMP", {}).get("version", {})
    check(set(g.get("QMP", {})) == {"version", "capabilities"}, "greeting has version and capabilities")
    check(g["QMP"]["capabilities"] == [], "greeting offers no capabilities (no oob)")
    check(v.get("qemu") == {"major": 8, "minor": 0, "micro": 0}, "greeting: QEMU 8.0.0's interface")
    check(v.get("package", "").startswith("kvmstats "), "greeting: package names kvmstats")
    check(b"\n" not in c.greeting, "greeting is one line, ended by CR LF")
    r = c.cmd("query-version", id="v1")
    check(err(r) == ("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
          and r.get("id") == "v1", "a command before negotiation: QEMU's CommandNotFound, id echoed")
    r = c.cmd("no-such-command")
    check(err(r)[0] == "CommandNotFound" and "negotiation" in err(r)[1],
          "an unknown command before negotiation: the same")
    r = c.cmd("query-commands")
    check(err(r)[0] == "CommandNotFound", "query-commands is not served before negotiation")
    r = c.cmd("qmp_capabilities", {"enable": ["oob"]}, id=7)
    check(err(r) == ("GenericError", "Capability oob not available") and r.get("id") == 7,
          "enable: [oob]: QEMU's 'Capability oob not available'")
    r = c.cmd("qmp_capabilities", {"enable": ["nope"]})
    check(err(r) == ("GenericError", "Parameter 'enable[0]' does not accept value 'nope'"),
          "enable: an unknown capability: QEMU's bad-enum wording")
    r = c.cmd("qmp_capabilities", {"enable": "oob"})
    check(err(r) == ("GenericError", "Invalid parameter type for 'enable', expected: array"),
          "enable: not a list: QEMU's wrong-type wording")
    r = c.cmd("qmp_capabilities", {"foo": 1})
    check(err(r) == ("GenericError", "Parameter 'foo' is unexpected"), "qmp_capabilities: unexpected parameter")
    r = c.cmd("qmp_capabilities", {"enable": []}, id={"a": [1, None, True, "x"]})
    check(r == {"return": {}, "id": {"a": [1, None, True, "x"]}}, "negotiation: {} and any JSON id echoed")
    r = c.cmd("qmp_capabilities", id="again")
    check(err(r) == ("CommandNotFound", "Capabilities negotiation is already complete, command ignored")
          and r.get("id") == "again", "qmp_capabilities twice: QEMU's CommandNotFound")
    r = c.cmd("no-such-command", id=3.5)
    check(err(r) == ("CommandNotFound", "The command no-such-command has not been found")
          and r.get("id") == 3.5, "unknown command after negotiation: 'The command X has not been found'")
    c.close()


def test_envelope_errors(path):
    c = Qmp(path)
    c.negotiate()
    cases = [
        (b'[1, 2]', "QMP input must be a JSON object", None),
        (b'"just a string"', "QMP input must be a JSON object", None),
        (b'42 ', "QMP input must be a JSON object", None),
        (b'{"id": 1}', "QMP input lacks member 'execute'", 1),
        (b'{"execute": 1, "id": "a"}', "QMP input member 'execute' must be a string", "a"),
        (b'{"execute": "query-version", "arguments": [], "id": 2}',
         "QMP input member 'arguments' must be an object", 2),
        (b'{"execute": "query-version", "bogus": 1, "id": null}',
         "QMP input member 'bogus' is unexpected", None),
        (b'{"exec-oob": "query-version", "id": "o"}', "QMP input member 'exec-oob' is unexpected", "o"),
    ]
    for raw, desc, rid in cases:
        c.send(raw)
        r = c.read()
        check(err(r) == ("GenericError", desc) and r.get("id") == rid,
              "%s -> %r" % (raw.decode(), desc))
    c.send(b'{"execute": "query-version", "id": null}')
    r = c.read()
    check("return" in r and "id" in r and r["id"] is None, "an id of null is echoed too")
    for raw in [b'{"execute": }', b'{"a": 1, "a": 2}', b'}', b'{"execute" "x"}', b'tru ']:
        c.send(raw)
        r = c.read()
        check(err(r)[0] == "GenericError" and err(r)[1].startswith("JSON parse error, ")
              and "id" not in r, "JSON parse error reply for %r" % raw.decode())
    # Messages back to back, split anywhere, and whitespace between them.
    c.send(b'{"execute": "query-version", "id": 1}{"execute": "query-ver')
    r1 = c.read()
    c.send(b'sion", "id": 2}\n\r\t {"execute": "query-version", "id": "{}\\""}')
    r2, r3 = c.read(), c.read()
    check([r1.get("id"), r2.get("id"), r3.get("id")] == [1, 2, '{}"'] and "return" in r2,
          "messages back to back, split mid-message, braces in strings: framed right")
    r = c.cmd("query-version", {"x": 1})
    check(err(r) == ("GenericError", "Parameter 'x' is unexpected"), "query-version takes no arguments")
    c.close()


def test_commands(path, seg_dir, vm):
    c = Qmp(path)
    c.negotiate()
    r = c.cmd("query-version", id="q")
    check(r.get("return") == json.loads(c.greeting)["QMP"]["version"] and r.get("id") == "q",
          "query-version: the greeting's version")
    r = c.cmd("query-commands")
    names = sorted(x["name"] for x in r.get("return", []))
    check(names == sorted(["qmp_capabilities", "query-version", "query-commands", "query-stats",
                           "query-stats-schemas", "query-cpus-fast"]), "query-commands: what is served")
    rc, out, _ = run_cli(seg_dir, "query", vm, "--target", "vcpu", "--names", "exits")
    labels = [e["qom-path"] for e in json.loads(out)] if rc == 0 else []
    r = c.cmd("query-cpus-fast").get("return", [])
    check([x.get("qom-path") for x in r] == labels and [x.get("cpu-index") for x in r] ==
          list(range(len(labels))), "query-cpus-fast: one entry per vCPU, index and QOM path")
    check(all(x.get("target") == "x86_64" and "props" not in x for x in r),
          "query-cpus-fast: target x86_64, no props")
    tids = [int(x["qom-path"].split("/")[0][4:]) for x in r if x["qom-path"].startswith("kvm-")]
    check(len(tids) == len(r) and [x.get("thread-id") for x in r] == tids,
          "query-cpus-fast: thread-id from kvm-<tid>/vcpu-<n>")
    check(err(c.cmd("query-cpus-fast", {"a": 1})) == ("GenericError", "Parameter 'a' is unexpected"),
          "query-cpus-fast takes no arguments")
    c.close()


def kvm_only(reply):
    """The provider kvm's entries of a query-stats reply (kvmstatsd adds sched)."""
    return [e for e in reply.get("return", []) if e["provider"] == "kvm"]


def stats_of(reply):
    """{(provider, qom-path): [names]} of a query-stats return value."""
    out = {}
    for e in reply.get("return", []):
        out.setdefault((e["provider"], e.get("qom-path")), []).append([s["name"] for s in e["stats"]])
    return out


def test_filters(path, seg_dir, vm):
    c = Qmp(path)
    c.negotiate()
    q = lambda a: c.cmd("query-stats", a)  # noqa: E731
    r = q({"target": "vm"})
    check([e["provider"] for e in r.get("return", [])] == ["kvm", "sched"],
          "target vm: one result per provider, kvm first, then sched (the sums)")
    ret = kvm_only(r)
    check(len(ret) == 1 and "qom-path" not in ret[0] and ret[0]["provider"] == "kvm",
          "target vm: one result, no qom-path")
    vm_names = [s["name"] for s in ret[0]["stats"]] if ret else []
    r = q({"target": "vcpu"})
    check([e["provider"] for e in r.get("return", [])] == ["kvm", "kvm", "sched", "sched"],
          "target vcpu: providers in table order, and per provider the vCPUs")
    sched = [e for e in r.get("return", []) if e["provider"] == "sched"]
    check(sched and all(isinstance({x["name"]: x["value"] for x in e["stats"]}
                                   .get("thread_runs_vcpu"), bool) for e in sched),
          "provider sched: thread_runs_vcpu is a boolean")
    ret = kvm_only(r)
    check(len(ret) == 2 and all("qom-path" in e for e in ret), "target vcpu: a result per vCPU with qom-path")
    vals = {s["name"]: s["value"] for s in ret[0]["stats"]} if ret else {}
    check(isinstance(vals.get("guest_mode"), bool), "a boolean stat is true/false")
    check(isinstance(vals.get("exits"), int) and not isinstance(vals.get("exits"), bool),
          "a size-1 stat is a number")
    check(isinstance(vals.get("halt_wait_hist"), list) and len(vals["halt_wait_hist"]) > 1,
          "a histogram is a list")
    labels = [e["qom-path"] for e in ret]
    r = q({"target": "vcpu", "vcpus": [labels[1], "/machine/nope"]})
    check([e["qom-path"] for e in kvm_only(r)] == [labels[1]],
          "vcpus: by QOM path, unknown ones ignored")
    check(q({"target": "vcpu", "vcpus": []}) == {"return": []}, "vcpus: [] selects nothing")
    check(q({"target": "vm", "providers": []}) == {"return": []}, "providers: [] selects nothing")
    check(q({"target": "vm", "providers": [{"provider": "kvm", "names": []}]}) == {"return": []},
          "names: [] selects nothing")
    check(q({"target": "vcpu", "providers": [{"provider": "kvm", "names": ["nope"]}]}) ==
          {"return": []}, "only unknown names: no entry at all")
    r = q({"target": "vcpu", "providers": [{"provider": "kvm", "names": ["nope", "exits"]}]})
    check([[s["name"] for s in e["stats"]] for e in r.get("return", [])] == [["exits"], ["exits"]],
          "unknown names ignored beside known ones")
    r = q({"target": "vm", "providers": [{"provider": "kvm", "names": [vm_names[0]]},
                                         {"provider": "kvm"}]})
    got = [[s["name"] for s in e["stats"]] for e in r.get("return", [])]
    check(got == [[vm_names[0]], vm_names], "a provider listed twice is queried twice")
    r = q({"target": "vm", "providers": [{"provider": "kvm", "names": vm_names[::-1]}]})
    check([s["name"] for s in r["return"][0]["stats"]] == vm_names,
          "stats come in descriptor order, whatever order names has")
    check(q({"target": "cryptodev"}) == {"return": []}, "target cryptodev: empty")
    check(q({"target": "vm", "providers": [{"provider": "cryptodev"}]}) == {"return": []},
          "provider cryptodev: nothing")
    r = c.cmd("query-stats-schemas", {"provider": "cryptodev"})
    check(r == {"return": []}, "query-stats-schemas provider cryptodev: empty")
    # Wrong arguments, in QEMU's words.
    cases = [
        ({}, "Parameter 'target' is missing"),
        ({"target": "disk"}, "Parameter 'target' does not accept value 'disk'"),
        ({"target": 1}, "Invalid parameter type for 'target', expected: string"),
        ({"target": "vm", "providers": {}}, "Invalid parameter type for 'providers', expected: array"),
        ({"target": "vm", "providers": [1]}, "Invalid parameter type for 'providers[0]', expected: object"),
        ({"target": "vm", "providers": [{"provider": "kvm"}, {}]},
         "Parameter 'providers[1].provider' is missing"),
        ({"target": "vm", "providers": [{"provider": "xen"}]},
         "Parameter 'providers[0].provider' does not accept value 'xen'"),
        ({"target": "vm", "providers": [{"provider": "kvm", "names": "exits"}]},
         "Invalid parameter type for 'providers[0].names', expected: array"),
        ({"target": "vm", "providers": [{"provider": "kvm", "names": ["a", 2]}]},
         "Invalid parameter type for 'providers[0].names[1]', expected: string"),
        ({"target": "vm", "providers": [{"provider": "kvm", "x": 1}]},
         "Parameter 'providers[0].x' is unexpected"),
        ({"target": "vm", "vcpus": []}, "Parameter 'vcpus' is unexpected"),
        ({"target": "vcpu", "vcpus": "all"}, "Invalid parameter type for 'vcpus', expected: array"),
        ({"target": "vcpu", "bogus": True}, "Parameter 'bogus' is unexpected"),
        ({"bogus": True}, "Parameter 'target' is missing"),
    ]
    for a, desc in cases:
        r = c.cmd("query-stats", a, id="e")
        check(err(r) == ("GenericError", desc) and r.get("id") == "e", "query-stats %s -> %r"
              % (json.dumps(a), desc))
    r = c.cmd("query-stats-schemas", {"provider": "xen"})
    check(err(r) == ("GenericError", "Parameter 'provider' does not accept value 'xen'"),
          "query-stats-schemas: bad provider")
    r = c.cmd("query-stats-schemas", {"target": "vm"})
    check(err(r) == ("GenericError", "Parameter 'target' is unexpected"),
          "query-stats-schemas: unexpected parameter")
    c.close()


def test_same_as_cli(path, seg_dir, vm):
    """The server and 'kvmstats query' / 'schema' give the same for the same sweep."""
    c = Qmp(path)
    c.negotiate()
    for target in ("vm", "vcpu"):
        def same():
            a = run_cli(seg_dir, "query", vm, "--target", target)[1]
            r = c.cmd("query-stats", {"target": target})
            b = run_cli(seg_dir, "query", vm, "--target", target)[1]
            return a == b and json.loads(a) == r.get("return")
        check(wait_for("query-stats target %s equals kvmstats query" % target, same),
              "query-stats target %s equals 'kvmstats query' of the same sweep" % target)
    rc, out, _ = run_cli(seg_dir, "schema", vm)
    check(rc == 0 and c.cmd("query-stats-schemas").get("return") == json.loads(out),
          "query-stats-schemas equals 'kvmstats schema'")
    rc, out, _ = run_cli(seg_dir, "schema", vm, "--provider", "kvm")
    check(c.cmd("query-stats-schemas", {"provider": "kvm"}).get("return") == json.loads(out),
          "query-stats-schemas provider kvm equals 'kvmstats schema --provider kvm'")
    c.close()


# ---- many clients, and clients that misbehave -------------------------------

def test_many_clients(path):
    clients = [Qmp(path) for _ in range(60)]
    for i, c in enumerate(clients):
        c.send(json.dumps({"execute": "qmp_capabilities", "id": i}))
    for i, c in enumerate(clients):
        c.send(json.dumps({"execute": "query-stats", "arguments": {"target": "vm"}, "id": i}))
    ok = 0
    for i, c in enumerate(clients):
        a, b = c.read(), c.read()
        ok += a.get("id") == i and b.get("id") == i and len(kvm_only(b)) == 1
    check(ok == len(clients), "60 clients at once: each negotiates and gets its query answered")
    for c in clients:
        c.close()


def served(path):
    """A fresh client gets a query answered (within the socket timeout)."""
    c = Qmp(path, timeout=10)
    c.negotiate()
    r = c.cmd("query-stats", {"target": "vm"})
    c.close()
    return "return" in r


def test_bad_clients(path):
    # A client that never reads: it sends far more than its replies' cap, then sits.
    lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lazy.connect(path)
    lazy.setblocking(False)
    msg = b'{"execute": "qmp_capabilities"}' + b'{"execute": "query-stats", "arguments": {"target": "vcpu"}}' * 20000
    sent = 0
    end = time.monotonic() + 10
    while sent < len(msg) and time.monotonic() < end:
        try:
            sent += lazy.send(msg[sent:sent + 65536])
        except BlockingIOError:
            break
    check(served(path), "a client that never reads its replies does not stop others")
    # A flooding client, reading all the while in its own thread.
    flood = Qmp(path)
    flood.negotiate()
    n = 3000
    got = []

    def reader():
        try:
            for _ in range(n):
                got.append(flood.read().get("id"))
        except (OSError, EOFError, ValueError):
            pass
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    flood.send(b"".join(b'{"execute": "query-stats", "arguments": {"target": "vm"}, "id": %d}' % i
                        for i in range(n)))
    check(served(path), "a flooding client does not stop others")
    t.join(DEADLINE)
    check(got == list(range(n)), "the flooding client gets all %d replies, in order" % n)
    flood.close()
    # Garbage.
    g = Qmp(path)
    g.send(b"\x00\xff}{]]:,garbage\x1b[2J" + bytes(range(1, 32)) + b" ")
    check(served(path), "a client sending garbage does not stop others")
    g.send(b'{"execute": "qmp_capabilities", "id": "after"}')
    replies = []
    while True:
        r = g.read()
        replies.append(r)
        if r.get("id") == "after":
            break
    check(all(err(r)[0] == "GenericError" for r in replies[:-1]) and len(replies) > 1
          and replies[-1] == {"return": {}, "id": "after"},
          "garbage gets error replies, and the client can still negotiate after it")
    g.close()
    # Too big a message: an error, then the connection closes.
    big = Qmp(path)
    big.negotiate()
    big.send(b'{"execute": "query-stats", "id": "' + b"x" * (70 * 1024) + b'"}')
    r = big.read()
    check(err(r)[0] == "GenericError" and "larger than 65536 bytes" in err(r)[1] and big.closed(),
          "a message over the input cap: an error, then the client is closed")
    deep = Qmp(path)
    deep.send(b"[" * 40)
    r = deep.read()
    check(err(r) == ("GenericError", "JSON nesting depth limit exceeded; closing the connection")
          and deep.closed(), "nesting beyond the limit: an error, then closed")
    check(served(path), "the server still serves after all that")
    lazy.close()


def test_max_clients(seg_dir, work, vm):
    path = os.path.join(work, "few.sock")
    q = start_qmp(seg_dir, "--listen", path, "--max-clients", "3", vm, ready=path)
    # Until the server has seen a closed connection go (the readiness probe,
    # or one closed while it was still accepting), that one counts: take
    # slots until three greeted clients hold them.
    held = []

    def take():
        c = Qmp(path)
        if b'"QMP"' in c.greeting:
            held.append(c)
        else:
            c.close()
        return len(held) == 3
    wait_for("three clients hold the three slots", take)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(DEADLINE)
    s.connect(path)
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    r = json.loads(data.split(b"\r\n")[0]) if data else {}
    check(err(r) == ("GenericError", "Too many QMP clients (3); try again later"),
          "a client past --max-clients gets an error reply and is closed")
    held.pop().close()
    wait_for("a freed slot is taken again", lambda: connectable(path))
    for c in held:
        c.close()
    q.stop()


# ---- sockets ----------------------------------------------------------------

def test_sockets(seg_dir, work, vm):
    path = os.path.join(work, "mode.sock")
    gid = grp.getgrnam("daemon").gr_gid if "daemon" in [g.gr_name for g in grp.getgrall()] else 1
    q = start_qmp(seg_dir, "--listen", path, "--socket-mode", "0640", "--socket-group", str(gid),
                  vm, ready=path)
    st = os.lstat(path)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640,
          "--socket-mode 0640 is the socket's mode")
    check(st.st_gid == gid, "--socket-group sets the socket's group")
    if os.geteuid() == 0:
        own = os.path.join(work, "owner.sock")
        qo = start_qmp(seg_dir, "--listen", own, "--socket-owner", "65534", vm, ready=own)
        check(os.lstat(own).st_uid == 65534, "--socket-owner sets the socket's owner")
        qo.stop()
    # Somebody listens: a second server refuses to take the name.
    rc = subprocess.run([KVMSTATS, "--dir", seg_dir, "qmp", "--listen", path, vm],
                        capture_output=True, text=True, timeout=30)
    check(rc.returncode == 1 and "another server listens" in rc.stderr,
          "a socket a server listens on is not replaced")
    check(q.stop() == 0 and not os.path.exists(path), "SIGTERM: exit 0, socket removed")
    # A regular file is never replaced.
    reg = os.path.join(work, "regular")
    with open(reg, "w") as f:
        f.write("keep me\n")
    rc = subprocess.run([KVMSTATS, "--dir", seg_dir, "qmp", "--listen", reg, vm],
                        capture_output=True, text=True, timeout=30)
    with open(reg) as f:
        kept = f.read()
    check(rc.returncode == 1 and "is not a socket" in rc.stderr and kept == "keep me\n",
          "a regular file at the path is refused and left alone")
    # A leftover socket nobody listens on is replaced.
    left = os.path.join(work, "left.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(left)
    s.close()
    q = start_qmp(seg_dir, "--listen", left, vm, ready=left)
    check(q.p.poll() is None and connectable(left), "a leftover socket is replaced")
    check(stat.S_IMODE(os.lstat(left).st_mode) == 0o600, "default socket mode 0600")
    q.stop(signal.SIGINT)
    check(not os.path.exists(left), "SIGINT: socket removed")
    # Usage errors.
    for args, what in [([], "no --listen"), (["--listen", "a", "--listen-dir", work], "both modes"),
                       (["--listen", "a", "--socket-mode", "999"], "bad mode"),
                       (["--listen-dir", work, vm], "VM with --listen-dir"),
                       (["--listen", "a", "--bogus"], "unknown option")]:
        rc = subprocess.run([KVMSTATS, "--dir", seg_dir, "qmp"] + args, capture_output=True,
                            text=True, timeout=30)
        check(rc.returncode == 2 and rc.stderr.startswith("kvmstats: qmp: "), "usage error, exit 2: " + what)
    rc = subprocess.run([KVMSTATS, "qmp", "--help"], capture_output=True, text=True, timeout=30)
    check(rc.returncode == 0 and "--listen-dir" in rc.stdout, "qmp --help")


# ---- VMs that change --------------------------------------------------------

def test_lifecycle(seg_dir, work):
    vm = start_vm(seg_dir, "gen")
    path = os.path.join(work, "gen.sock")
    q = start_qmp(seg_dir, "--listen", path, "gen", ready=path)
    c = Qmp(path)
    c.negotiate()
    first = c.cmd("query-cpus-fast").get("return", [])
    check(len(first) == 2, "generation 1 served")
    # Stopped publisher: stale, said so; back when it runs again.
    vm.p.send_signal(signal.SIGSTOP)
    r = wait_for("stale reported", lambda: (lambda r: r if "error" in r else None)(
        c.cmd("query-stats", {"target": "vm"})))
    check(r and "is stale" in err(r)[1] and err(r)[0] == "GenericError",
          "a SIGSTOPped publisher: query-stats says the VM is stale")
    check("return" in c.cmd("query-stats-schemas"), "a stale VM still has its schema")
    vm.p.send_signal(signal.SIGCONT)
    wait_for("live again", lambda: "return" in c.cmd("query-stats", {"target": "vm"}))
    # Ended: said so, on the same connection.
    vm.stop()
    r = wait_for("ended reported", lambda: (lambda r: r if "error" in r else None)(
        c.cmd("query-stats", {"target": "vm"})))
    check(r and ("has ended" in err(r)[1] or "no such" in err(r)[1].lower()
                 or "does not exist" in err(r)[1]), "an ended VM: query-stats says so (%s)"
          % (err(r)[1] if r else None))
    # The next generation, followed without reconnecting.
    vm2 = start_vm(seg_dir, "gen", vcpus=3)
    r = wait_for("next generation followed", lambda: (lambda r: r if len(r) == 3 else None)(
        c.cmd("query-cpus-fast").get("return", [])))
    check(r and r[0]["qom-path"] != first[0]["qom-path"],
          "the next generation is followed on the same connection (3 vCPUs, new ids)")
    check(len(kvm_only(c.cmd("query-stats", {"target": "vcpu"}))) == 3,
          "its values are served")
    c.close()
    q.stop()
    vm2.stop()


def test_listen_dir(seg_dir, work):
    sockdir = os.path.join(work, "socks")
    os.mkdir(sockdir)
    a = start_vm(seg_dir, "dir-a")
    b = start_vm(seg_dir, "dir-b")
    blocked = start_vm(seg_dir, "dir-x")
    with open(os.path.join(sockdir, "dir-x.qmp"), "w") as f:
        f.write("not a socket\n")
    q = start_qmp(seg_dir, "--listen-dir", sockdir)
    pa, pb, pc = (os.path.join(sockdir, n + ".qmp") for n in ("dir-a", "dir-b", "dir-c"))
    check(wait_for("sockets for running VMs", lambda: connectable(pa) and connectable(pb)),
          "--listen-dir: a socket per running VM")
    c = Qmp(pb)
    c.negotiate()
    check(len(kvm_only(c.cmd("query-stats", {"target": "vcpu"}))) == 2,
          "--listen-dir: a VM's socket answers for it")
    c.close()
    cvm = start_vm(seg_dir, "dir-c", vcpus=1)
    check(wait_for("socket for a new VM", lambda: connectable(pc)), "--listen-dir: a VM that appears gets a socket")
    b.stop()
    check(wait_for("socket of an ended VM removed", lambda: not os.path.exists(pb)),
          "--listen-dir: an ended VM's socket is removed")
    check(connectable(pa) and connectable(pc), "--listen-dir: the others stay")
    refusals = [l for l in q.log() if "dir-x.qmp exists and is not a socket" in l]
    check(len(refusals) == 1, "--listen-dir: a regular file in a VM's place is refused, said once "
          "over many rescans (%d)" % len(refusals))
    q.stop()
    check(os.listdir(sockdir) == ["dir-x.qmp"], "--listen-dir: every socket removed at exit, "
          "the regular file left alone")
    a.stop()
    cvm.stop()
    blocked.stop()


def main():
    seg_root = os.environ.get("KVMSTATS_SHM_DIR") or "/dev/shm"
    seg_dir = tempfile.mkdtemp(prefix="qmp.", dir=seg_root)
    work = tempfile.mkdtemp(prefix="kvmstats-qmp.")
    try:
        vm = start_vm(seg_dir, "q1")
        path = os.path.join(work, "q1.sock")
        q = start_qmp(seg_dir, "--listen", path, ready=path)  # the only VM: q1
        check(wait_for("the server names its VM", lambda: any("serving VM 'q1'" in l for l in q.log())),
              "no VM named: the only one is served")
        test_greeting_and_negotiation(path)
        test_envelope_errors(path)
        test_commands(path, seg_dir, "q1")
        test_filters(path, seg_dir, "q1")
        test_many_clients(path)
        test_bad_clients(path)
        q.stop()
        vm.stop()
        slow = start_vm(seg_dir, "slow", hz=1)
        sp = os.path.join(work, "slow.sock")
        q = start_qmp(seg_dir, "--listen", sp, "slow", ready=sp)
        test_same_as_cli(sp, seg_dir, "slow")
        test_max_clients(seg_dir, work, "slow")
        test_sockets(seg_dir, work, "slow")
        q.stop()
        slow.stop()
        test_lifecycle(seg_dir, work)
        test_listen_dir(seg_dir, work)
    finally:
        for ch in children:
            ch.stop()
        subprocess.run(["rm", "-rf", seg_dir, work])
    return checks.summary("qmp")


if __name__ == "__main__":
    sys.exit(main())
