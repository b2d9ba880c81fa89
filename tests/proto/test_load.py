"""Load and abuse (README.md: Testing): many connections that
send nothing or one byte a second while a normal client is still served;
a flood of connections that come and go (some reset); a soak of mixed
traffic with RSS flat from start to end. Figures (probe latency, RSS,
longest loop stall from postie's own log at SIGTERM) are printed.

With POSTIE_FULL=1 (make bench): 1,000 hostile connections and a 300 s
soak; otherwise 300 connections and a shorter soak (counted in sessions).
"""
import os
import re
import resource
import socket
import threading
import time
import unittest

import harness
from harness import SLOW, crlf, token

FULL = os.environ.get("POSTIE_FULL") == "1"
HOSTILE = 1000 if FULL else 300
# The soak is counted in sessions, not seconds: SOAK_PHASES phases of
# SOAK_SESSIONS sessions on each of 6 threads (a quarter deliver a message).
SOAK_PHASES = 60 if FULL else 4
SOAK_SESSIONS = 50
# RSS may grow by at most this much between the end of the warm-up and
# the end of the soak (slots, pools and buffers are static; a leak shows).
RSS_TOLERANCE_KB = 128
# How long a probe may wait for its replies: a bound on a wait, never a
# pass mark (latencies are printed; `make bench` judges speed). Generous
# for a sanitizer build on a machine busy with other work.
SERVED_WITHIN = 120 * SLOW
FLOOD_PER_THREAD = 250      # connections each flood thread makes


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stall_ms(srv):
    m = re.findall(r"longest loop stall (\d+) ms", srv.log())
    return int(m[-1]) if m else None


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def probe(srv, rcpt="demo@test.lan"):
    """One normal client: a whole transaction; returns (seconds, token)."""
    t = token("probe")
    t0 = time.monotonic()
    with harness.Dialog(srv.port, timeout=SERVED_WITHIN + 5) as d:
        d.ehlo()
        code, lines = d.send_mail("a@example.net", [rcpt],
                                  crlf("Subject: %s\n\nprobe\n" % t))
        d.cmd("QUIT")
    if code != 250:
        raise AssertionError("probe: %d %r" % (code, lines))
    return time.monotonic() - t0, t


class Hostile:
    """n sockets to port: a third send nothing, the rest one byte a second
    each; closed ones reconnect (a persistent attacker). Non-blocking."""

    def __init__(self, port, n):
        self.port = port
        self.n = n
        self.socks = [None] * n
        self.stop = threading.Event()
        self.reconnects = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self, i):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.socks[i] = s

    def run(self):
        for i in range(self.n):
            self.connect(i)
        deadline = time.monotonic() + 3600
        while not self.stop.is_set() and time.monotonic() < deadline:
            for i, s in enumerate(self.socks):
                try:
                    data = s.recv(4096)
                    closed = data == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if not closed and i % 3:
                    try:
                        s.send(b"N")
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed = True
                if closed:
                    s.close()
                    self.reconnects += 1
                    self.connect(i)
            self.stop.wait(1.0)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        self.thread.join(30)
        for s in self.socks:
            if s:
                s.close()


class LoadTest(harness.TestCase):
    timeout = int((SOAK_PHASES * 60 + 900) * SLOW)     # a hang guard only

    def setUp(self):
        super().setUp()
        raise_nofile(HOSTILE + 256)
        # The flood comes from one address: this test is about the slot
        # table, so the per-address cap (test_pools) is lifted here.
        self.srv = harness.Server(users=("demo", "alice"),
                                  extra="max_connections_per_ip 64\n")
        self.srv.start()

    def tearDown(self):
        try:
            rc = self.srv.stop()
            report = self.srv.sanitizer_report()
            self.assertEqual(rc, 0, self.srv.log()[-1500:])
            self.assertIsNone(report, report)
            print("test_load: %s: longest loop stall %s ms"
                  % (self._testMethodName, stall_ms(self.srv)), flush=True)
        finally:
            self.srv.cleanup()
            super().tearDown()

    def test_hostile_connections_normal_client_served(self):
        srv = self.srv
        h = Hostile(srv.port, HOSTILE).start()
        try:
            time.sleep(3 * SLOW)       # every slot taken, the backlog full
            lat = []
            for _ in range(3):
                secs, t = probe(srv)
                lat.append(secs)
                self.assertEqual(len(srv.find("demo", t)), 1)
            rss = rss_kb(srv.proc.pid)
            print("\ntest_load: %d hostile connections (nothing, or a byte a "
                  "second; %d reconnects): probe latency max %.2f s, all %s; "
                  "postie RSS %d KiB" % (HOSTILE, h.reconnects, max(lat),
                                         ["%.2f" % x for x in lat], rss), flush=True)
            self.assertTrue(srv.running())
        finally:
            h.close()
        # Once they are gone, the slots come back.
        _, t = probe(srv)
        self.assertEqual(len(srv.find("demo", t)), 1)
        self.assertIn("all slots taken and a client waiting", srv.log())

    def test_connection_flood(self):
        srv = self.srv
        # A fixed number of connections, not as many as fit in a time: the
        # outcome is the same on a fast machine and on a busy one.
        stop = time.monotonic() + 300 * SLOW       # bound only
        counts = []

        def flood(n):
            made = 0
            while time.monotonic() < stop and made < FLOOD_PER_THREAD:
                try:
                    s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                except OSError:
                    continue
                made += 1
                if made % 2:
                    # Reset at once (SO_LINGER 0): RST instead of FIN.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                elif made % 3 == 0:
                    s.sendall(b"EHLO flood\r\nMAIL FROM:<a@b>\r\n")
                s.close()
            counts.append(made)

        threads = [threading.Thread(target=flood, args=(n,), daemon=True)
                   for n in range(4)]
        for th in threads:
            th.start()
        time.sleep(1)
        secs, t = probe(srv)            # during the flood
        self.assertEqual(len(srv.find("demo", t)), 1)
        for th in threads:
            th.join(300 * SLOW)
        print("\ntest_load: flood of %d connections; probe during it "
              "%.2f s; RSS %d KiB" % (sum(counts), secs, rss_kb(srv.proc.pid)),
              flush=True)
        self.assertEqual(sum(counts), 4 * FLOOD_PER_THREAD)
        self.assertTrue(srv.running())
        _, t = probe(srv)
        self.assertEqual(len(srv.find("demo", t)), 1)

    def mixed(self, sessions, errors, n):
        """One client of the soak: deliveries, pipelined bursts, errors,
        abandoned sessions."""
        for i in range(1, sessions + 1):
            try:
                with harness.Dialog(self.srv.port) as d:
                    d.ehlo()
                    kind = (i + n) % 4
                    if kind == 0:
                        code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                              crlf("Subject: soak\n\n" + "x" * (i % 3000)))
                        if code != 250:
                            errors.append("delivery %d" % code)
                    elif kind == 1:
                        d.send("NOOP\r\n" * 20)
                        d.replies(20)
                    elif kind == 2:
                        d.cmd("RCPT TO:<nobody@test.lan>")
                        d.cmd("X" * 600)
                        continue        # no QUIT
                    d.cmd("QUIT")
            except (OSError, harness.Closed, AssertionError) as e:
                errors.append(repr(e))

    def test_soak_rss_flat(self):
        srv = self.srv
        pid = srv.proc.pid

        def phase(sessions):
            errors = []
            threads = [threading.Thread(target=self.mixed, args=(sessions, errors, n),
                                        daemon=True) for n in range(6)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(600 * SLOW)
                if th.is_alive():
                    errors.append("a soak client hung")
            return errors

        def deliveries(sessions):
            return sum(1 for n in range(6) for i in range(1, sessions + 1)
                       if (i + n) % 4 == 0)

        errors = phase(10)                  # warm-up: touch slots and buffers
        start = rss_kb(pid)
        t0 = time.monotonic()
        samples = []
        for _ in range(SOAK_PHASES):
            errors += phase(SOAK_SESSIONS)
            samples.append(rss_kb(pid))
        end = rss_kb(pid)
        n = len(srv.mbox("demo"))
        want = deliveries(10) + SOAK_PHASES * deliveries(SOAK_SESSIONS)
        print("\ntest_load: soak %.0f s, %d messages delivered: RSS start %d KiB, "
              "end %d KiB, max %d KiB (tolerance %d KiB)"
              % (time.monotonic() - t0, n, start, end, max(samples),
                 RSS_TOLERANCE_KB), flush=True)
        self.assertEqual(errors, [])
        self.assertEqual(n, want)
        self.assertLessEqual(end, start + RSS_TOLERANCE_KB)
        self.assertLessEqual(max(samples), start + RSS_TOLERANCE_KB)


if __name__ == "__main__":
    unittest.main()
