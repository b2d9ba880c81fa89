#!/usr/bin/python3
"""tests/bench/tls_bench.py — what the TLS engine's separate output buffer
changed (README: TLS and submission; Measured figures). Not part of
`make bench`; run it with each binary to compare (POSTIE_BIN=FILE).

1. Pipelining: N IMAP NOOPs in one write over imaps (N = 200, 250,
   300, 2,000, 20,000; one TLS record up to 16 KiB of commands), the
   replies that came back before the session ended or fell silent for
   5 s (N when all came).
2. A 10 MB message fetched whole (BODY.PEEK[]) over imap and imaps,
   three times each, alternating: wall seconds and the daemon's CPU
   seconds (utime + stime from /proc) of each fetch.

Everything on 127.0.0.1 through the protocol tests' harness (a
temporary directory, a self-signed certificate); every wait is bounded.
Prints a Markdown table. Timings live here, never in pass/fail tests.
"""
import imaplib
import os
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "proto"))

import harness          # noqa: E402
import test_pools       # noqa: E402
import tlsutil          # noqa: E402
from test_pools import Line     # noqa: E402


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def pipelined(srv, n):
    d = Line(srv.ports["imaps"], tls=True)
    try:
        got = 0
        try:
            d.sock.sendall("".join("t%d NOOP\r\n" % k for k in range(n)).encode())
            while got < n:
                if d.line(5).startswith("t%d OK" % got):
                    got += 1
        except Exception:
            pass
        return got
    finally:
        d.close()


def fetch(srv, tls):
    if tls:
        m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                              ssl_context=tlsutil.client_ctx(), timeout=120)
    else:
        m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=120)
    try:
        m.login("alice", tlsutil.PASSWORD)
        m.select("INBOX")
        t, c = time.monotonic(), cpu_s(srv.proc.pid)
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and len(data[0][1]) > 10 * 1000 * 1000, typ
        return time.monotonic() - t, cpu_s(srv.proc.pid) - c
    finally:
        m.logout()


def main():
    if "imap" not in harness.features() or "tls" not in harness.features():
        sys.exit("tls_bench: the binary needs imap and tls")
    srv = test_pools.PoolServer(
        max_size="64M", extra="plaintext_auth_networks 127.0.0.1/32\n").start()
    try:
        line = "x" * 76 + "\n"
        with open(srv.path("mail", "alice"), "w") as f:
            f.write("From a Sat Jan  1 00:00:00 2000\nSubject: big\n\n")
            f.write(line * (10 * 1024 * 1024 // len(line)) + "\n")
        rev = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h"],
                             stdout=subprocess.PIPE).stdout.decode().strip()
        print("### TLS: pipelining and a 10 MB FETCH — %s, postie %s (%s), "
              "load %s" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           rev, harness.BIN, open("/proc/loadavg").read().split()[0]))
        print("\n| IMAP NOOPs in one write over imaps | replies |\n|---:|---:|")
        for n in (200, 250, 300, 2000, 20000):
            print("| %d | %d |" % (n, pipelined(srv, n)), flush=True)
        runs = {False: [], True: []}
        for _ in range(3):
            for tls in (False, True):
                runs[tls].append(fetch(srv, tls))
        print("\n| FETCH 1 BODY.PEEK[] (10 MB) | wall s | daemon CPU s |\n|---|---|---|")
        for tls in (False, True):
            print("| %s | %s | %s |" % (
                "imaps" if tls else "imap",
                ", ".join("%.2f" % w for w, c in runs[tls]),
                ", ".join("%.2f" % c for w, c in runs[tls])))
    finally:
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    main()
