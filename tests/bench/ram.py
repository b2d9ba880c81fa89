#!/usr/bin/python3
"""tests/bench/ram.py [N] — postie's anonymous memory, idle and per session.

Starts the binary (POSTIE_BIN, default build/host/postie) with the test
harness's configuration on 127.0.0.1, reads RssAnon from
/proc/PID/status once it listens (idle), then opens N (default 32) SMTP
sessions that each say EHLO and MAIL FROM (a transaction open) and reads
it again: (with - idle) / N is the memory one session makes the daemon
touch. Pools are static (bss) and touched only when used, so this is
the figure that grows with load; the bss column of `make size` is the
worst case when every slot is in use. A benchmark, not a test: prints
figures, fails only when the daemon does not start.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))
import harness  # noqa: E402


def rss_anon_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return -1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    srv = harness.Server(max_connections=max(64, n + 8),
                         extra="max_connections_per_ip %d\n" % max(16, n))
    srv.start()
    try:
        pid = srv.proc.pid
        time.sleep(0.5)
        idle = rss_anon_kb(pid)
        sessions = []
        for i in range(n):
            d = harness.Dialog(srv.port, timeout=30)
            d.ehlo()
            d.code("MAIL FROM:<s%d@example.net>" % i)
            sessions.append(d)
        time.sleep(0.5)
        busy = rss_anon_kb(pid)
        for d in sessions:
            d.close()
    finally:
        srv.stop()
    print("binary: %s" % harness.BIN)
    print("idle RssAnon: %d kB" % idle)
    print("with %d SMTP sessions (EHLO, MAIL FROM): %d kB, %.1f kB per session"
          % (n, busy, (busy - idle) / float(n)))


if __name__ == "__main__":
    main()
