# SPDX-License-Identifier: MIT
"""A minimal QMP client: one Unix socket, the greeting, qmp_capabilities,
then commands with an id, each reply matched to its id, events skipped.

Every read has a deadline, so a QEMU that stops answering fails the check
that asked instead of hanging the suite.
"""
import json
import socket
import time


class QMPError(Exception):
    """A QMP command answered with "error", or a broken or silent monitor."""


class QMP:
    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.greeting = None

    def connect(self, deadline=30.0):
        """Connect (retrying until QEMU has made the socket), read the greeting,
        negotiate capabilities.  Returns the greeting's QEMU version dict."""
        end = time.monotonic() + deadline
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > end:
                    raise QMPError("no QMP socket at %s within %.0f s" % (self.path, deadline))
                time.sleep(0.05)
        self.sock = s
        self.greeting = self._read_message(time.monotonic() + self.timeout)
        if "QMP" not in self.greeting:
            raise QMPError("not a QMP greeting: %r" % self.greeting)
        self.execute("qmp_capabilities")
        return self.greeting["QMP"]["version"]["qemu"]

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _read_message(self, end):
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise QMPError("QMP: no reply within %.0f s" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise QMPError("QMP: QEMU closed the monitor")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def raw(self, msg, timeout=None):
        """Send one message as it is (a dict, given an id here) and return the
        whole reply, error or not: for comparing error replies.  Events
        are kept aside; a late reply to a command that timed out before is
        skipped."""
        self.next_id += 1
        want = "ks-%d" % self.next_id
        self.sock.sendall(json.dumps(dict(msg, id=want)).encode() + b"\n")
        end = time.monotonic() + (timeout or self.timeout)
        while True:
            m = self._read_message(end)
            if "event" in m:
                self.events.append(m)
            elif m.get("id") == want:
                return m

    def execute(self, cmd, timeout=None, **arguments):
        """Run one command; return its "return" value, raise QMPError on "error"."""
        msg = {"execute": cmd}
        if arguments:
            msg["arguments"] = arguments
        m = self.raw(msg, timeout)
        if "error" in m:
            raise QMPError("%s: %s: %s" % (cmd, m["error"].get("class"),
                                           m["error"].get("desc")))
        return m.get("return")
