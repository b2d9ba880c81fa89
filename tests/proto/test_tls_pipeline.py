"""Pipelining over TLS beyond the reply buffer (issue 12).

A client may write many commands at once (RFC 2920 for SMTP; IMAP tags
and POP3 commands alike). Over TLS the replies to one record's commands
used to have to fit one reply buffer before any could leave (BearSSL's
half-duplex buffer cannot send while a received record holds unread
bytes); 200 NOOPs in one record closed the session ("TLS pipelining
beyond the reply buffer") where the clear answered them all. Now the
engine's output has a buffer of its own: replies leave while the record
is read, and reading stops while they cannot leave (backpressure).

Each protocol (SMTP, POP3, IMAP) over implicit TLS and over
STARTTLS/STLS gets 200, 300 and 2,000 pipelined commands (SMTP: as many
as SMTP_MAX_COMMANDS allows) in one write (one TLS record, or two for
2,000; the old limit was between 200 and 250 IMAP NOOPs), and again split into records of odd sizes (1, 7, 333, 4099,
13, 16384 bytes in turn); every reply must come, in order, exactly as
in the clear (the same stream is sent in the clear first). The commands
alternate so that a lost or reordered reply shows: IMAP replies carry
their tag, SMTP alternates NOOP, RSET and HELO, POP3 NOOP and STAT. A
second client must be served meanwhile, and the daemon must stay alive.
"""
import select
import socket
import ssl
import time
import unittest

import harness
import tlsutil
from harness import HOSTNAME, IO_TIMEOUT
import test_pools
from test_pools import Line
from tlsutil import PASSWORD

HAVE = harness.features()
SMTP_MAX_COMMANDS = tlsutil.kconfig("SMTP_MAX_COMMANDS", 1000)
SPLITS = (1, 7, 333, 4099, 13, 16384)


def smtp_stream(n):
    cmds, want = [], []
    for k in range(n):
        if k % 3 == 0:
            cmds.append("NOOP")
            want.append("250 2.0.0 Ok")
        elif k % 3 == 1:
            cmds.append("RSET")
            want.append("250 2.0.0 Ok")
        else:
            cmds.append("HELO client%d.test" % k)
            want.append("250 " + HOSTNAME)
    return cmds, want


def pop3_stream(n):
    cmds, want = [], []
    for k in range(n):
        if k % 2:
            cmds.append("STAT")
            want.append("+OK 0 0")
        else:
            cmds.append("NOOP")
            want.append("+OK ")
    return cmds, want


def imap_stream(n):
    cmds = ["t%d NOOP" % k for k in range(n)]
    want = ["t%d OK NOOP completed" % k for k in range(n)]
    return cmds, want


def interleaved(d, data, n, test):
    """Sends data on d's socket (TLS or not) without blocking while
    reading replies slowly (16 KiB at a time, a small receive buffer);
    the first n lines that are not untagged, or fails. Bounded in time
    (IO_TIMEOUT without progress) and in rounds."""
    sock = d.sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.setblocking(False)
    pos, buf, lines = 0, d.buf, []
    idle_since = time.monotonic()
    for _ in range(10 ** 7):
        if len(lines) >= n:
            break
        if time.monotonic() - idle_since > IO_TIMEOUT:
            test.fail("stuck: %d of %d bytes sent, %d of %d replies"
                      % (pos, len(data), len(lines), n))
        wr = [sock] if pos < len(data) else []
        r, w, _ = select.select([sock], wr, [], 0.2)
        progress = False
        if w:
            try:
                k = sock.send(data[pos:pos + 8192])
                pos += k
                progress = k > 0
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                pass
        if r or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            try:
                chunk = sock.recv(16384)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError,
                    BlockingIOError):
                chunk = None
            if chunk == b"":
                test.fail("closed after %d of %d replies" % (len(lines), n))
            if chunk:
                progress = True
                buf += chunk
                *done, buf = buf.split(b"\r\n")
                lines += [x.decode() for x in done if not x.startswith(b"* ")]
        if progress:
            idle_since = time.monotonic()
    sock.setblocking(True)
    sock.settimeout(IO_TIMEOUT)
    d.buf = buf
    return lines


class TlsPipelining(test_pools.PoolTest):
    """smtp (STARTTLS), smtps, pop3/pop3s and imap/imaps; TLS checked by
    PoolTest."""
    extra = "plaintext_auth_networks 127.0.0.1/32\n"

    def setUp(self):
        self.alive()

    def tearDown(self):
        self.alive()

    def open(self, proto, mode):
        """A session of proto ("smtp", "pop3", "imap") in mode "clear",
        "implicit" or "starttls", ready for the stream."""
        kind = proto + ("s" if mode == "implicit" else "")
        if proto == "smtp" and mode == "implicit":
            kind = "smtps"
        d = Line(self.port(kind), tls=mode == "implicit")
        self.addCleanup(d.close)
        if proto == "smtp":
            self.assertTrue(d.banner.startswith("220"), d.banner)
            d.send("EHLO client.test\r\n")
            d.until("250 ")
            if mode == "starttls":
                r = d.cmd("STARTTLS")
                self.assertTrue(r.startswith("220"), r)
                d.wrap()
                d.send("EHLO client.test\r\n")
                d.until("250 ")
        elif proto == "pop3":
            self.assertTrue(d.banner.startswith("+OK"), d.banner)
            if mode == "starttls":
                r = d.cmd("STLS")
                self.assertTrue(r.startswith("+OK"), r)
                d.wrap()
            self.assertTrue(d.cmd("USER bob").startswith("+OK"))
            r = d.cmd("PASS " + PASSWORD)
            self.assertTrue(r.startswith("+OK"), r)
        else:
            self.assertTrue(d.banner.startswith("* OK"), d.banner)
            if mode == "starttls":
                d.send("s STARTTLS\r\n")
                r = d.until("s ")
                self.assertTrue(r[-1].startswith("s OK"), r)
                d.wrap()
        return d

    def other_client_served(self):
        d = Line(self.server.port)
        try:
            self.assertTrue(d.banner.startswith("220"), d.banner)
            self.assertTrue(d.cmd("NOOP").startswith("250"))
        finally:
            d.close()

    def pipeline(self, proto, mode, n, split=None):
        cmds, want = {"smtp": smtp_stream, "pop3": pop3_stream,
                      "imap": imap_stream}[proto](n)
        data = "".join(c + "\r\n" for c in cmds).encode()
        d = self.open(proto, mode)
        if split is None:
            d.sock.sendall(data)
        else:
            pos = k = 0
            while pos < len(data):
                size = SPLITS[k % len(SPLITS)]
                d.sock.sendall(data[pos:pos + size])
                pos += size
                k += 1
        got = []
        try:
            while len(got) < n:
                ln = d.line(IO_TIMEOUT)
                if proto == "imap" and ln.startswith("* "):
                    continue
                got.append(ln)
        except (harness.Closed, socket.timeout, ssl.SSLError, OSError) as e:
            self.fail("%s %s: %d pipelined commands (%d bytes%s): %d replies, "
                      "then %r; log: %s" % (
                          proto, mode, n, len(data),
                          ", split" if split else ", one write", len(got), e,
                          self.server.log()[-800:]))
        bad = [(k, g, w) for k, (g, w) in enumerate(zip(got, want)) if g != w]
        self.assertEqual(bad, [], "%s %s: replies out of order or wrong "
                         "(first: %r)" % (proto, mode, bad[:3]))
        # The session goes on, and ends (POP3: the mailbox is free for
        # the next one).
        if proto == "imap":
            d.send("z NOOP\r\n")
            self.assertTrue(d.until("z ")[-1].startswith("z OK"))
            d.send("y LOGOUT\r\n")
            self.assertTrue(d.until("y ")[-1].startswith("y OK"))
        else:
            for cmd in ("NOOP", "QUIT"):
                r = d.cmd(cmd)
                self.assertTrue(r.startswith(("250 ", "221 ", "+OK")), r)
        self.assertTrue(d.closed(), "%s %s: not closed after QUIT" % (proto, mode))
        self.other_client_served()

    def test_imap_backpressure(self):
        """20,000 NOOPs (240 KB) into a small receive window, read
        slowly while they are sent: the server must stop reading while
        its replies cannot leave (else they pile up without bound) and
        go on when they drain, over imaps as in the clear."""
        if "imap" not in HAVE:
            self.skipTest("imap not in this build")
        n = 20000
        cmds, want = imap_stream(n)
        data = "".join(c + "\r\n" for c in cmds).encode()
        for mode in ("clear", "implicit", "starttls"):
            with self.subTest(mode=mode):
                try:
                    d = self.open("imap", mode)
                    got = interleaved(d, data, n, self)
                    bad = [(k, g, w) for k, (g, w) in
                           enumerate(zip(got, want)) if g != w]
                    self.assertEqual(bad, [], "imap %s: %r" % (mode, bad[:3]))
                    d.send("y LOGOUT\r\n")
                    self.assertTrue(d.until("y ")[-1].startswith("y OK"))
                finally:
                    self.doCleanups()
                self.other_client_served()

    def run_all(self, proto, n):
        if proto != "smtp" and proto not in HAVE:
            self.skipTest("%s not in this build" % proto)
        if proto == "smtp":
            n = min(n, SMTP_MAX_COMMANDS - 10)
        for mode in ("clear", "implicit", "starttls"):
            for split in (None, SPLITS):
                with self.subTest(mode=mode, split=bool(split)):
                    try:
                        self.pipeline(proto, mode, n, split)
                    finally:
                        self.doCleanups()   # this session's socket

    def test_smtp_200_and_300(self):
        self.run_all("smtp", 200)
        self.run_all("smtp", 300)

    def test_smtp_2000(self):
        self.run_all("smtp", 2000)

    def test_pop3_200_and_300(self):
        self.run_all("pop3", 200)
        self.run_all("pop3", 300)

    def test_pop3_2000(self):
        self.run_all("pop3", 2000)

    def test_imap_200_and_300(self):
        self.run_all("imap", 200)
        self.run_all("imap", 300)

    def test_imap_2000(self):
        self.run_all("imap", 2000)


if __name__ == "__main__":
    unittest.main()
