# SPDX-License-Identifier: MIT
"""What the Python tests share: a check that counts, and a wait that polls.

A test never relies on a sleep being long enough: wait_for() polls its
condition until a deadline and fails a check if the deadline passes.
"""
import time

passed = 0
failed = 0


def check(ok, what):
    """Count and print one check: "ok   ..." or "FAIL ..."; return @ok."""
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)
    return ok


def wait_for(what, cond, deadline=30.0, step=0.1):
    """Poll cond() until it returns a true value; fail a check at the deadline."""
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            check(False, what + " (not within %.0f s)" % deadline)
            return v
        time.sleep(step)


def summary(name):
    """The last line of a test program, and its exit status."""
    print("%s: %d passed, %d failed" % (name, passed, failed))
    return 0 if failed == 0 else 1
