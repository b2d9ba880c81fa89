"""Resource faults (README.md: Testing): each gives the
documented temporary error, loses nothing and recovers on its own once
the fault goes away.

- the mail disk full (a 256 KiB tmpfs over mail_dir; needs root, skipped
  visibly otherwise): direct delivery answers 451 and leaves the mbox as
  it was; queued local targets wait and arrive once there is room;
- the DNS server gone (dnsmasq killed): relayed mail waits in the queue,
  nothing bounces, and it goes out once dnsmasq is back on its port;
- the file-descriptor limit reached (postie started under a low
  RLIMIT_NOFILE): accept() fails with EMFILE, postie stops accepting
  without spinning, and serves the waiting client when a connection ends.

Covered elsewhere (not repeated here): a full spool disk
(test_relay DiskFull), a peer that accepts and never answers and one that
answers byte by byte (test_relay BrokenPeers), connection slots exhausted
(test_smtp_hostile ConnectionLimit, test_load), the TLS pool exhausted
(test_tls TlsPool), an unwritable spool (test_mbox_store).
"""
import os
import resource
import signal
import socket
import time
import unittest

import harness
import test_relay as relay
from harness import SLOW, crlf, token

setUpModule = relay.setUpModule
tearDownModule = relay.tearDownModule


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MailDiskFull(relay.SmallDiskTest):

    def test_mail_disk_full_is_temporary_and_recovers(self):
        srv = self.postie("smarthost 127.0.0.4:%d plain\n" % relay.PORT, start=False,
                          aliases="team: demo, friend@remote.test\n")
        mail = srv.path("mail")
        self.mount_small(mail, "0755")
        srv.start()
        t0 = token()
        self.assertEqual(relay.send(srv, "alice@test.lan", ["demo@test.lan"],
                                    relay.msg(t0))[0], 250)
        before = srv.mbox_bytes("demo")
        filler = os.path.join(mail, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(256):
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        big = relay.msg(token(), extra="X-Pad: %s\n" % ("p" * 900)) + crlf("line\n" * 400)
        # Direct delivery: 451, the mbox untouched, the session goes on.
        with srv.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("alice@test.lan", ["demo@test.lan"], big)
            self.assertEqual(code, 451, lines)
            self.assertIn("4.3.0", lines[0])
            self.assertEqual(d.code("NOOP"), 250)
        self.assertEqual(srv.mbox_bytes("demo"), before)
        # Through the queue: the remote copy goes, the local one waits.
        t = token()
        self.assertQueued(relay.send(srv, "alice@test.lan", ["team@test.lan"],
                                     relay.msg(t) + crlf("line\n" * 400)))
        self.wait_peer("smart", t)
        self.wait_deferred(srv)
        self.assertEqual(srv.mbox_bytes("demo"), before)
        self.assertEqual(srv.find("alice", t), [], "bounced instead of waiting")
        os.unlink(filler)
        self.wait_mbox(srv, "demo", t, timeout=15 * SLOW)
        self.wait_empty(srv)
        self.assertEqual([len(srv.find("demo", x)) for x in (t0, t)], [1, 1])
        self.assertEqual(srv.mbox_bytes("demo")[:len(before)], before)
        self.assertFalse(os.path.exists(os.path.join(mail, "demo.lock")))


@relay.need_dns
class DnsGone(relay.RelayTest):
    timeout = int(120 * SLOW)

    def test_dns_server_gone_then_back(self):
        srv = self.postie()
        dns = relay.DNSD
        port = dns.port
        dns.proc.kill()
        dns.proc.wait(10)
        try:
            t = token()
            self.assertQueued(relay.send(srv, "alice@test.lan", ["x@amx.test"],
                                         relay.msg(t)))
            # udns gives up on a silent (or refusing) server after its
            # retransmissions, about half a minute. That is this side's
            # trouble, not the destination's: a run that failed here, not
            # a delivery attempt (no backoff, nothing toward a bounce).
            def failed_here():
                for n in relay.queue_names(srv):
                    st = relay.qstate(srv, n)
                    if st and st["local_fails"] >= 1:
                        return st
                return None
            st = relay.wait_until(failed_here, 60 * SLOW,
                                  "a run that failed here; log:\n%s"
                                  % srv.log()[-1500:])
            self.assertEqual(st["attempts"], 0, st)
            self.assertEqual(relay.PEERS["mx"].find(t), [])
            self.assertEqual(srv.find("alice", t), [], "bounced on a DNS outage")
            self.assertTrue(srv.running())
        finally:
            self.assertTrue(dns.start(port), "dnsmasq did not come back")
        self.wait_peer("mx", t, timeout=15 * SLOW)
        self.wait_empty(srv)
        self.assertEqual(len(relay.PEERS["mx"].find(t)), 1)


class FdLimit(harness.TestCase):
    """postie under RLIMIT_NOFILE 32 with max_connections 64."""

    LIMIT = 32

    def test_emfile_pauses_without_spinning_and_recovers(self):
        # From one address: the per-address cap (test_pools) is lifted,
        # this is about running out of descriptors.
        srv = harness.Server(max_connections=64,
                             extra="max_connections_per_ip 64\n")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # The child inherits the limit; this process keeps its open files.
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.LIMIT, hard))
        try:
            srv.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        held = []
        try:
            waiting = None
            for _ in range(self.LIMIT + 8):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                s.settimeout(1.0)
                try:
                    if not s.recv(100).startswith(b"220 "):
                        self.fail("bad banner")
                except socket.timeout:
                    waiting = s
                    break
                held.append(s)
            self.assertIsNotNone(waiting, "never reached the descriptor limit")
            self.assertIn("accept: ", srv.log())
            self.assertIn("pausing listeners", srv.log())
            # Paused, not spinning on a listener that stays readable.
            c0 = cpu_seconds(srv.proc.pid)
            time.sleep(1.5)
            used = cpu_seconds(srv.proc.pid) - c0
            self.assertLess(used, 0.3, "postie spins while out of descriptors")
            print("\ntest_faults: %d connections at RLIMIT_NOFILE %d; CPU while "
                  "paused %.2f s in 1.5 s" % (len(held), self.LIMIT, used), flush=True)
            for s in held[:4]:
                s.close()
            del held[:4]
            waiting.settimeout(5 * SLOW)
            self.assertTrue(waiting.recv(100).startswith(b"220 "))
            waiting.close()
            # Deliveries need descriptors too (spool file, mbox, locks).
            t = token()
            with srv.dialog() as d:
                d.ehlo()
                code, lines = d.send_mail("a@example.net", ["demo@test.lan"],
                                          crlf("Subject: %s\n\nfd\n" % t))
            self.assertEqual(code, 250, lines)
            self.assertEqual(len(srv.find("demo", t)), 1)
        finally:
            for s in held:
                s.close()
            rc = srv.stop()
            log = srv.log()
            srv.cleanup()
        self.assertEqual(rc, 0, log[-1500:])


if __name__ == "__main__":
    unittest.main()
