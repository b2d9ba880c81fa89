#!/usr/bin/python3
"""Runs the protocol tests: every tests/proto/test_*.py, one child process
per file, a bounded number at a time, each with a time limit.

  /usr/bin/python3 tests/proto/run.py [--quick] [-j N] [-v] [PATTERN...]

PATTERN selects files whose name contains it. The last line printed is
exactly "proto: N passed, N failed, N skipped"; the exit code is 1 on any
failure. Environment: POSTIE_BIN, POSTIE_QEMU (see harness.py).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_MARK = "@@proto-result@@ "


def child(path, verbose):
    """Runs one test file in this process; prints a JSON result line."""
    sys.path.insert(0, HERE)
    name = os.path.splitext(os.path.basename(path))[0]
    loader = unittest.TestLoader()
    counts = {"passed": 0, "failed": 0, "skipped": 0, "problems": []}

    class Result(unittest.TextTestResult):
        def addSuccess(self, test):
            super().addSuccess(test)
            counts["passed"] += 1

        def addFailure(self, test, err):
            super().addFailure(test, err)
            counts["failed"] += 1
            counts["problems"].append(str(test))

        def addError(self, test, err):
            super().addError(test, err)
            counts["failed"] += 1
            counts["problems"].append(str(test))

        def addSubTest(self, test, subtest, err):
            # A failing subTest fails its test: unittest then calls neither
            # addFailure nor addSuccess for it, so count it here, once.
            super().addSubTest(test, subtest, err)
            if err is not None and str(test) not in counts["problems"]:
                counts["failed"] += 1
                counts["problems"].append(str(test))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            counts["skipped"] += 1

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            counts["failed"] += 1
            counts["problems"].append(str(test) + " (expected failure)")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            counts["failed"] += 1
            counts["problems"].append(str(test) + " (unexpected success)")

    try:
        suite = loader.loadTestsFromName(name)
    except Exception as e:  # import error: one failure
        print("cannot load %s: %r" % (name, e))
        counts["failed"] += 1
        counts["problems"].append(name + " (load error)")
        print(RESULT_MARK + json.dumps(counts), flush=True)
        return 1
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if verbose else 1,
                                     resultclass=Result)
    runner.run(suite)
    print(RESULT_MARK + json.dumps(counts), flush=True)
    return 0 if counts["failed"] == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="skip the slow tests (for qemu runs)")
    ap.add_argument("-j", "--jobs", type=int, default=0,
                    help="test files run at once (default: 2 per core, max 6)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--file-timeout", type=float, default=0,
                    help="seconds per test file before it counts as hung "
                    "(default 1800, 7200 under qemu: a guard, not a budget)")
    ap.add_argument("patterns", nargs="*")
    args = ap.parse_args()

    if args.child:
        return child(args.child, args.verbose)

    env = dict(os.environ)
    if args.quick:
        env["POSTIE_QUICK"] = "1"
    qemu = bool(env.get("POSTIE_QEMU"))
    file_timeout = args.file_timeout or (7200 if qemu else 1800)
    jobs = args.jobs or max(1, min(6, 2 * (os.cpu_count() or 1)))

    sys.path.insert(0, HERE)
    import harness
    if not os.path.exists(harness.BIN):
        print("proto: no binary at %s (run make, or set POSTIE_BIN)" % harness.BIN)
        print("proto: 0 passed, 1 failed, 0 skipped")
        return 1

    files = sorted(f for f in os.listdir(HERE)
                   if f.startswith("test_") and f.endswith(".py"))
    if args.patterns:
        files = [f for f in files if any(p in f for p in args.patterns)]
    # Slowest first so the pool drains evenly: the files that wait longest
    # (a retry timer, a resolver's retransmissions, ban delays), as
    # measured, then the rest by name. Order changes only the run time.
    slowest = ["test_queue.py", "test_pools.py", "test_faults.py", "test_dns.py",
               "test_relay.py", "test_load.py", "test_smarthost.py",
               "test_imap_clients.py", "test_auth.py", "test_imap_hostile.py",
               "test_pop3.py", "test_smtp_hostile.py", "test_mbox_store.py"]
    files.sort(key=lambda f: slowest.index(f) if f in slowest else len(slowest))

    start = time.monotonic()
    pending = list(files)
    running = []        # (file, proc, started, outpath)
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    failed_files = []
    outdir = None
    import tempfile
    outdir = tempfile.mkdtemp(prefix="postie-proto-run-")

    def finish(f, proc, started, outpath, timed_out):
        with open(outpath, "r", errors="replace") as fh:
            out = fh.read()
        res = None
        for line in out.splitlines():
            if line.startswith(RESULT_MARK):
                res = json.loads(line[len(RESULT_MARK):])
        secs = time.monotonic() - started
        if res is None:
            res = {"passed": 0, "failed": 1, "skipped": 0,
                   "problems": [f + (" timed out after %.0f s" % secs if timed_out
                                     else " crashed (exit %s)" % proc.returncode)]}
        for k in totals:
            totals[k] += res[k]
        status = "ok" if res["failed"] == 0 else "FAIL"
        print("%-28s %4s  %d passed, %d failed, %d skipped  (%.1f s)"
              % (f, status, res["passed"], res["failed"], res["skipped"], secs),
              flush=True)
        if res["failed"] or args.verbose:
            print(out.rstrip())
            print("-" * 70, flush=True)
        if res["failed"]:
            failed_files.append((f, res["problems"]))

    try:
        while pending or running:
            while pending and len(running) < jobs:
                f = pending.pop(0)
                outpath = os.path.join(outdir, f + ".out")
                fh = open(outpath, "w")
                cmd = [sys.executable, os.path.abspath(__file__), "--child",
                       os.path.join(HERE, f)]
                if args.verbose:
                    cmd.append("-v")
                proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=fh,
                                        stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL,
                                        start_new_session=True)
                fh.close()
                running.append((f, proc, time.monotonic(), outpath))
            time.sleep(0.05)
            for item in list(running):
                f, proc, started, outpath = item
                timed_out = False
                if proc.poll() is None:
                    if time.monotonic() - started < file_timeout:
                        continue
                    timed_out = True
                    _kill_group(proc)
                running.remove(item)
                finish(f, proc, started, outpath, timed_out)
    finally:
        for f, proc, _, _ in running:
            _kill_group(proc)
        import shutil
        shutil.rmtree(outdir, ignore_errors=True)

    secs = time.monotonic() - start
    for f, problems in failed_files:
        for p in problems:
            print("FAILED: %s: %s" % (f, p))
    print("proto: run time %.1f s" % secs)
    print("proto: %d passed, %d failed, %d skipped"
          % (totals["passed"], totals["failed"], totals["skipped"]), flush=True)
    return 1 if totals["failed"] else 0


def _kill_group(proc):
    """Kills one child test process and what it started (its own group)."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


if __name__ == "__main__":
    sys.exit(main())
