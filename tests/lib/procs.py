# SPDX-License-Identifier: MIT
"""What the Python tests share for their child processes.

A Child's stderr is drained by a thread (so the child never blocks on a
full pipe) and kept for checks; every Child is listed in `children`, for
the test's final cleanup, which stops each by its PID.
"""
import signal
import subprocess
import threading

children = []


class Child:
    """A child process whose stderr is drained by a thread (kept for checks)."""

    def __init__(self, argv, **kw):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, **kw)
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()
        children.append(self)

    def _drain(self):
        for line in self.p.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def log(self):
        with self.lock:
            return list(self.lines)

    def stop(self, sig=signal.SIGTERM):
        """Signal (a stopped child is continued first), wait; return its exit status."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGCONT)
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()
