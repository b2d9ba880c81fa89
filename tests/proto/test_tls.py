"""TLS: STARTTLS on smtp/submission and implicit TLS on smtps with
Python's ssl/smtplib, openssl s_client, swaks, curl and msmtp; TLS 1.2
only, ECDHE + AEAD suites, RSA and EC certificates, session resumption,
the TLS session pool, certificate reload, `postie -t` on bad keys, and
hostile input: plaintext pipelined after STARTTLS, garbage and stalled
handshakes."""
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

import harness
import tlsutil
from harness import HOSTNAME, IO_TIMEOUT, SLOW, crlf, need_tool, token
from tlsutil import PASSWORD, TLSDialog, TLSServer, need_features

# A TLS context that allows TLS 1.0/1.1 warns; the test wants that.
warnings.filterwarnings("ignore", category=DeprecationWarning)

TOOL_TIMEOUT = 30 * SLOW
AEAD = ("GCM", "CHACHA20")


def ehlo_keywords(lines):
    return [l[4:].split(" ")[0].upper() for l in lines[1:]]


def run_tool(argv, stdin=b"", timeout=None):
    """(exit code, stdout+stderr text) of an external client."""
    r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout or TOOL_TIMEOUT)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def s_client(port, *args, stdin=b"EHLO client.test\nQUIT\n"):
    cafile = tlsutil.cert()[0]
    return run_tool(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                     "-servername", HOSTNAME, "-CAfile", cafile,
                     "-verify_return_error", "-crlf", "-ign_eof"] + list(args),
                    stdin=stdin)


def wait_closed(sock, timeout=None):
    """True if the peer closes (EOF/reset) within timeout; bounded."""
    deadline = time.monotonic() + (timeout or IO_TIMEOUT)
    total = 0
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            return True
        if not chunk:
            return True
        total += len(chunk)
        if total > 1 << 20:
            return False
    return False


class TlsCase(tlsutil.TLSServerTest):
    """smtp + smtps (+ submission) with an RSA certificate."""
    server_args = {"tls": "rsa", "smtps": True}

    @classmethod
    def setUpClass(cls):
        cls.server_args = dict(cls.server_args,
                               submission=tlsutil.have("auth"))
        super().setUpClass()

    def assertTlsServing(self):
        """Plain SMTP, STARTTLS and smtps all still work."""
        self.assertServing()
        with self.server.tdialog() as d:
            d.ehlo()
            d.starttls()
            d.ehlo()
            self.assertEqual(d.code("QUIT"), 221)
        with self.server.tdialog(self.server.smtps_port, implicit=True) as d:
            self.assertEqual(d.banner[0], 220)
            d.ehlo()
            self.assertEqual(d.code("QUIT"), 221)


@need_features("tls")
class Starttls(TlsCase):

    def test_ehlo_offers_starttls(self):
        with self.server.tdialog() as d:
            kw = ehlo_keywords(d.ehlo())
            self.assertIn("STARTTLS", kw)
            # 127.0.0.1 is not in plaintext_auth_networks: no AUTH yet.
            self.assertNotIn("AUTH", kw)
            self.assertEqual(d.tls_version, None)

    def test_starttls_handshake(self):
        with self.server.tdialog() as d:
            d.ehlo()
            d.starttls()        # verifies the chain and the name
            self.assertEqual(d.sock.version(), "TLSv1.2")
            name, proto, bits = d.sock.cipher()
            self.assertTrue(name.startswith("ECDHE-RSA-"), name)
            self.assertTrue(any(a in name for a in AEAD), name)
            self.assertEqual(d.sock.getpeercert(binary_form=True),
                             tlsutil.cert_der("rsa"))
            kw = ehlo_keywords(d.ehlo())
            self.assertNotIn("STARTTLS", kw)
            if tlsutil.have("auth"):
                self.assertIn("AUTH", kw)
                self.assertIn("AUTH PLAIN LOGIN",
                              [l[4:] for l in d.ehlo()])
            self.assertEqual(d.code("QUIT"), 221)

    def test_starttls_twice_and_with_argument(self):
        with self.server.tdialog() as d:
            d.ehlo()
            self.assertEqual(d.code("STARTTLS now"), 501)
            d.starttls()
            d.ehlo()
            self.assertEqual(d.code("STARTTLS"), 503)
            self.assertEqual(d.code("NOOP"), 250)

    def test_starttls_resets_session(self):
        with self.server.tdialog() as d:
            d.ehlo("before.test")
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            d.starttls()
            # RFC 3207: no EHLO, no transaction survive the handshake.
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 503)
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 503)
            lines = d.ehlo("after.test")
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 503)
            t = token()
            r = d.send_mail("a@example.net", ["alice@test.lan"],
                            crlf("Subject: %s\n\nbody\n" % t))
            self.assertEqual(r[0], 250, r)
        m = self.server.find("alice", t)
        self.assertEqual(len(m), 1)
        rcv = m[0].headers("Received")[0]
        self.assertIn("after.test", rcv)
        self.assertNotIn("before.test", rcv)

    def test_smtplib_starttls_received_header(self):
        t = token()
        with self.server.smtplib() as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("starttls"))
            code, _ = s.starttls(context=tlsutil.client_ctx())
            self.assertEqual(code, 220)
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("someone@example.net", ["alice@test.lan"],
                       "Subject: %s\r\n\r\nover TLS\r\n" % t)
        m = self.server.find("alice", t)
        self.assertEqual(len(m), 1)
        rcv = m[0].headers("Received")[0]
        self.assertRegex(rcv, r"with ESMTPS \(TLSv1\.2 ECDHE-RSA-"
                              r"(AES128-GCM|AES256-GCM|CHACHA20)")
        self.assertNotIn("ESMTPSA", rcv)

    def pipelined_burst(self, d, n):
        """MAIL, n RCPTs and RSET in one write (one TLS record of about
        25 * n bytes); all n + 2 replies must come."""
        rcpts = ["alice@test.lan", "bob@test.lan"] * (n // 2)
        cmds = ["MAIL FROM:<alice@test.lan>"] + \
               ["RCPT TO:<%s>" % r for r in rcpts] + ["RSET"]
        d.send("".join(c + "\r\n" for c in cmds))
        codes = []
        try:
            for _ in cmds:
                codes.append(d.reply(IO_TIMEOUT / 2)[0])
        except socket.timeout:
            self.fail("%d pipelined commands (%d bytes) over TLS: only %d "
                      "of %d replies, then silence" % (
                          len(cmds), sum(len(c) + 2 for c in cmds),
                          len(codes), len(cmds)))
        self.assertEqual(codes, [250] * len(cmds))
        self.assertEqual(d.code("NOOP"), 250)

    def test_pipelined_burst_over_starttls(self):
        """RFC 2920 clients may send a whole batch at once; the replies
        (over 1 KB) must all come, as they do without TLS."""
        with self.server.tdialog() as d:
            d.ehlo()
            self.pipelined_burst(d, 90)     # in the clear: fine
            d.starttls()
            d.ehlo()
            self.pipelined_burst(d, 90)

    def test_big_message_over_tls(self):
        t = token()
        line = ("%s " % t) + "x" * 90 + "\r\n"
        body = ("Subject: %s\r\n\r\n" % t) + line * 2000     # ~200 KB
        with self.server.tdialog() as d:
            d.ehlo()
            d.starttls()
            d.ehlo()
            for c in ("MAIL FROM:<x@example.net>", "RCPT TO:<alice@test.lan>",
                      "RCPT TO:<bob@test.lan>", "DATA"):
                self.assertIn(d.code(c), (250, 354), c)
            d.send(body.encode() + b".\r\n")
            try:
                code = d.reply()[0]
            except socket.timeout:
                self.fail("no reply to the end of a %d-byte DATA sent in one "
                          "write over TLS" % len(body))
            self.assertEqual(code, 250)
            self.assertEqual(d.code("QUIT"), 221)
        want = (line * 2000).replace("\r\n", "\n").encode()
        for u in ("alice", "bob"):
            m = self.server.find(u, t)
            self.assertEqual(len(m), 1)
            self.assertEqual(m[0].body, want)


@need_features("tls")
class HostileStarttls(TlsCase):

    def injected(self, payload, expect_rcpt=503):
        """STARTTLS with plaintext glued after it in one write; after the
        handshake the first reply must answer our own EHLO."""
        with self.server.tdialog() as d:
            d.ehlo()
            d.send(b"STARTTLS\r\n" + payload)
            code, lines = d.reply()
            self.assertEqual(code, 220, lines)
            # Nothing else may come in the clear; wrap() fails if the
            # server answered the injected commands before the handshake.
            self.assertEqual(d.buf, b"")
            d.wrap()
            code, lines = d.cmd("EHLO mine.test")
            self.assertEqual(code, 250, lines)
            self.assertTrue(lines[0].startswith("250-" + HOSTNAME), lines)
            self.assertIn("[127.0.0.1]", lines[0])
            # The injected MAIL did not start a transaction.
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), expect_rcpt)
            self.assertEqual(d.code("NOOP"), 250)
            self.assertEqual(d.code("QUIT"), 221)

    def test_pipelined_plaintext_after_starttls_is_discarded(self):
        self.injected(b"RSET\r\nMAIL FROM:<x@y>\r\n")

    def test_injected_transaction_is_not_delivered(self):
        t = token()
        self.injected(b"EHLO evil.test\r\nMAIL FROM:<evil@example.net>\r\n"
                      b"RCPT TO:<alice@test.lan>\r\nDATA\r\nSubject: "
                      + t.encode() + b"\r\n\r\ninjected\r\n.\r\nQUIT\r\n")
        self.assertEqual(self.server.find("alice", t), [])
        self.assertEqual(self.server.anywhere(t), [])

    def test_injected_starttls_after_starttls(self):
        self.injected(b"STARTTLS\r\n")

    def test_garbage_on_smtps(self):
        rnd = random.Random(4242)
        payloads = [bytes(rnd.randrange(256) for _ in range(n))
                    for n in (1, 5, 300, 3000)]
        payloads.append(b"EHLO client.test\r\n")          # plaintext SMTP
        payloads.append(b"GET / HTTP/1.0\r\n\r\n")
        # A record header claiming a handshake of 16 KB, then junk.
        payloads.append(b"\x16\x03\x01\x40\x00" + b"\x01" * 200)
        for p in payloads:
            s = socket.create_connection(("127.0.0.1", self.server.smtps_port),
                                         timeout=IO_TIMEOUT)
            try:
                s.sendall(p)
                if len(p) < 5 or p.startswith(b"\x16\x03\x01\x40"):
                    # Not even a record header yet: the server cannot know
                    # before the client is done.
                    s.shutdown(socket.SHUT_WR)
                self.assertTrue(wait_closed(s), "not closed after %r" % p[:20])
            finally:
                s.close()
        self.assertTlsServing()

    def test_garbage_after_starttls(self):
        with self.server.tdialog() as d:
            d.ehlo()
            self.assertEqual(d.code("STARTTLS"), 220)
            d.send(os.urandom(2000))
            self.assertTrue(wait_closed(d.sock))
        self.assertTlsServing()

    def stall_then_serve(self, port, starttls):
        """A client sends half a ClientHello and goes idle; others are
        served meanwhile, several times over."""
        hello = tlsutil.client_hello()
        self.assertEqual(hello[0], 0x16)
        stalled = []
        try:
            for cut in (3, len(hello) // 2):
                d = TLSDialog(port, banner=starttls)
                stalled.append(d)
                if starttls:
                    d.ehlo()
                    self.assertEqual(d.code("STARTTLS"), 220)
                d.send(hello[:cut])
            t0 = time.monotonic()
            for _ in range(3):
                self.assertTlsServing()
            self.assertLess(time.monotonic() - t0, 3 * IO_TIMEOUT)
            # The stalled ones are still connected (no reply, no close).
            for d in stalled:
                d.sock.settimeout(0.2)
                try:
                    got = d.sock.recv(100)
                    self.fail("stalled handshake answered: %r" % got)
                except socket.timeout:
                    pass
        finally:
            for d in stalled:
                d.close()
        self.assertTlsServing()

    def test_stalled_handshake_on_smtps(self):
        self.stall_then_serve(self.server.smtps_port, starttls=False)

    def test_stalled_handshake_after_starttls(self):
        self.stall_then_serve(self.server.port, starttls=True)

    def test_client_closes_mid_handshake(self):
        hello = tlsutil.client_hello()
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.server.smtps_port),
                                         timeout=IO_TIMEOUT)
            s.sendall(hello[:len(hello) // 2])
            s.close()
        self.assertTlsServing()


@need_features("tls")
class Smtps(TlsCase):

    def test_implicit_tls_banner_and_ehlo(self):
        with self.server.tdialog(self.server.smtps_port, implicit=True) as d:
            self.assertEqual(d.banner[0], 220)
            self.assertTrue(d.banner[1][0].startswith("220 " + HOSTNAME))
            self.assertEqual(d.sock.version(), "TLSv1.2")
            kw = ehlo_keywords(d.ehlo())
            self.assertNotIn("STARTTLS", kw)
            self.assertEqual(d.code("STARTTLS"), 503)
            if tlsutil.have("auth"):
                self.assertIn("AUTH", kw)
                code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
                self.assertEqual(code, 530, lines)
                self.assertIn("5.7.0 Authentication required", lines[0])

    def test_modern_client_gets_tls12(self):
        ctx = tlsutil.client_ctx()      # offers TLS 1.3 and 1.2
        with self.server.tdialog(self.server.smtps_port, implicit=ctx) as d:
            self.assertEqual(d.sock.version(), "TLSv1.2")

    def old_version(self, version, flag):
        """The server refuses a client that offers only `version`."""
        hello = tlsutil.client_hello(version)
        self.assertEqual(hello[9:11], {ssl.TLSVersion.TLSv1: b"\x03\x01",
                                       ssl.TLSVersion.TLSv1_1: b"\x03\x02"}
                         [version], "the client really offers the old version")
        ctx = tlsutil.client_ctx(verify=False)
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with self.assertRaises((ssl.SSLError, ConnectionError)) as cm:
            TLSDialog(self.server.smtps_port, implicit=ctx).close()
        msg = str(cm.exception).upper()
        self.assertNotIn("NO_PROTOCOLS_AVAILABLE", msg)
        self.assertNotIn("NO_CIPHERS", msg)
        # The same with openssl s_client, on STARTTLS.
        if shutil.which("openssl"):
            rc, out = s_client(self.server.port, "-starttls", "smtp", flag,
                               "-cipher", "DEFAULT:@SECLEVEL=0")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("Cipher is (NONE)", out)
            self.assertNotRegex(out, r"New, TLSv1(\.[01])?, Cipher is")
            self.assertNotIn("250-", out.split("---")[-1] if "---" in out else "")
        self.assertTlsServing()

    def test_tls10_refused(self):
        self.old_version(ssl.TLSVersion.TLSv1, "-tls1")

    def test_tls11_refused(self):
        self.old_version(ssl.TLSVersion.TLSv1_1, "-tls1_1")

    def test_cipher_suites(self):
        good = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"]
        bad = ["AES128-GCM-SHA256", "AES256-SHA", "ECDHE-RSA-AES128-SHA",
               "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"]
        # The small profile offers AES-GCM alone (README: TLS profiles).
        (bad if "tls-small" in harness.features() else good).append(
            "ECDHE-RSA-CHACHA20-POLY1305")
        for suite in good + bad:
            ctx = tlsutil.client_ctx()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(suite + ":@SECLEVEL=0")
            if suite in good:
                with self.server.tdialog(self.server.smtps_port, implicit=ctx) as d:
                    self.assertEqual(d.sock.cipher()[0], suite)
                    d.ehlo()
            else:
                with self.assertRaises((ssl.SSLError, ConnectionError), msg=suite):
                    TLSDialog(self.server.smtps_port, implicit=ctx).close()
        self.assertTlsServing()

    def test_session_resumption_python(self):
        ctx = tlsutil.client_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with self.server.tdialog(self.server.smtps_port, implicit=ctx) as d:
            self.assertFalse(d.sock.session_reused)
            sess = d.sock.session
            self.assertEqual(d.code("QUIT"), 221)
        self.assertIsNotNone(sess)
        with self.server.tdialog(self.server.smtps_port, implicit=ctx,
                                 session=sess) as d:
            self.assertTrue(d.sock.session_reused)
            d.ehlo()
        # The smtps session resumes on STARTTLS too (one cache).
        with self.server.tdialog() as d:
            d.ehlo()
            d.starttls(ctx, session=sess)
            self.assertTrue(d.sock.session_reused)
            d.ehlo()

    @need_tool("openssl")
    def test_session_resumption_s_client(self):
        with tempfile.TemporaryDirectory(prefix="postie-sess-") as tmp:
            sess = os.path.join(tmp, "sess.pem")
            rc, out = s_client(self.server.smtps_port, "-tls1_2",
                               "-sess_out", sess)
            self.assertEqual(rc, 0, out)
            self.assertIn("New, TLSv1.2", out)
            rc, out = s_client(self.server.smtps_port, "-tls1_2",
                               "-sess_in", sess)
            self.assertEqual(rc, 0, out)
            self.assertIn("Reused, TLSv1.2", out)
            self.assertIn("221", out)

    @need_tool("openssl")
    def test_s_client_starttls(self):
        rc, out = s_client(self.server.port, "-starttls", "smtp")
        self.assertEqual(rc, 0, out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"Protocol\s*:\s*TLSv1\.2")
        self.assertRegex(out, r"Cipher\s*:\s*ECDHE-RSA-(AES\d+-GCM|CHACHA20)")
        self.assertIn("250-%s greets" % HOSTNAME, out)
        self.assertNotIn("250-STARTTLS", out.split("---")[-1])
        self.assertIn("221 2.0.0", out)

    @need_tool("openssl")
    def test_s_client_smtps(self):
        rc, out = s_client(self.server.smtps_port)
        self.assertEqual(rc, 0, out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"Protocol\s*:\s*TLSv1\.2")
        self.assertIn("220 %s ESMTP" % HOSTNAME, out)
        self.assertIn("250-%s greets" % HOSTNAME, out)
        self.assertIn("221 2.0.0", out)


@need_features("tls")
class EcCertificate(TlsCase):
    server_args = {"tls": "ec", "smtps": True}

    def test_ec_handshake(self):
        ctx = tlsutil.client_ctx("ec")
        with self.server.tdialog(self.server.smtps_port, implicit=ctx) as d:
            self.assertEqual(d.sock.version(), "TLSv1.2")
            name = d.sock.cipher()[0]
            self.assertTrue(name.startswith("ECDHE-ECDSA-"), name)
            self.assertTrue(any(a in name for a in AEAD), name)
            self.assertEqual(d.sock.getpeercert(binary_form=True),
                             tlsutil.cert_der("ec"))
        t = token()
        with self.server.tdialog() as d:
            d.ehlo()
            d.starttls(ctx)
            d.ehlo()
            r = d.send_mail("x@example.net", ["bob@test.lan"],
                            crlf("Subject: %s\n\nec\n" % t))
            self.assertEqual(r[0], 250)
        rcv = self.server.find("bob", t)[0].headers("Received")[0]
        self.assertIn("with ESMTPS (TLSv1.2 ECDHE-ECDSA-", rcv)

    def test_rsa_only_client_fails(self):
        ctx = tlsutil.client_ctx(verify=False)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            TLSDialog(self.server.smtps_port, implicit=ctx).close()
        with self.server.tdialog(self.server.smtps_port,
                                 implicit=tlsutil.client_ctx("ec")) as d:
            d.ehlo()


@need_features("tls")
class TlsPool(TlsCase):
    server_args = {"tls": "rsa", "smtps": True, "extra": "max_tls_sessions 2\n"}

    def test_pool_exhausted(self):
        held = []
        try:
            # From two addresses: one client holds at most half the pool.
            for i in range(2):
                held.append(self.server.tdialog(self.server.smtps_port,
                                                implicit=True,
                                                source="127.0.4.%d" % (i + 1)))
            for d in held:
                d.ehlo()
            # STARTTLS: 454, the session goes on in the clear (the held
            # sessions are busy, so none of them gives way).
            with self.server.tdialog() as d:
                d.ehlo()
                code, lines = d.cmd("STARTTLS")
                self.assertEqual(code, 454, lines)
                self.assertIn("4.7.0", lines[0])
                r = d.send_mail("x@example.net", ["alice@test.lan"],
                                crlf("Subject: pool\n\nplain\n"))
                self.assertEqual(r[0], 250)
            # smtps: closed without a handshake.
            for d in held:
                self.assertEqual(d.code("NOOP"), 250)
            s = socket.create_connection(("127.0.0.1", self.server.smtps_port),
                                         timeout=IO_TIMEOUT)
            try:
                s.sendall(tlsutil.client_hello())
                self.assertTrue(wait_closed(s))
            finally:
                s.close()
            # The held sessions still work.
            for d in held:
                self.assertEqual(d.code("NOOP"), 250)
            held.pop().close()
            # The slot comes back once the server sees the close.
            deadline = time.monotonic() + IO_TIMEOUT
            code = None
            while time.monotonic() < deadline:
                with self.server.tdialog() as d:
                    d.ehlo()
                    code = d.code("STARTTLS")
                    if code == 220:
                        d.wrap()
                        d.ehlo()
                        break
                time.sleep(0.1)
            self.assertEqual(code, 220)
        finally:
            for d in held:
                d.close()
        self.assertTrue(self.server.running())


class NoCertificate(harness.ServerTest):
    """A TLS build without tls_cert: no STARTTLS."""

    def test_starttls_not_offered(self):
        with self.server.dialog() as d:
            self.assertNotIn("STARTTLS", ehlo_keywords(d.ehlo()))
            code, lines = d.cmd("STARTTLS")
            self.assertEqual(code, 454, lines)
            self.assertEqual(d.code("NOOP"), 250)


@need_features("tls")
class CertReload(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.server = TLSServer(tls="rsa", smtps=True).start()

    def tearDown(self):
        rc = self.server.stop()
        log = self.server.log()
        self.server.cleanup()
        super().tearDown()
        self.assertEqual(rc, 0, log[-1500:])

    def peer_cert(self, ctx):
        with self.server.tdialog(self.server.smtps_port, implicit=ctx) as d:
            return d.sock.getpeercert(binary_form=True)

    def test_sighup_new_certificate(self):
        old = self.server.tdialog()
        try:
            old.ehlo()
            old.starttls(tlsutil.client_ctx("rsa"))
            old.ehlo()
            self.assertEqual(self.peer_cert(tlsutil.client_ctx("rsa")),
                             tlsutil.cert_der("rsa"))
            for kind in ("rsa2", "ec"):
                self.server.set_cert(kind)
                self.assertTrue(self.server.reload(), self.server.log()[-800:])
                self.assertEqual(self.peer_cert(tlsutil.client_ctx(kind)),
                                 tlsutil.cert_der(kind))
                with self.server.tdialog() as d:
                    d.ehlo()
                    d.starttls(tlsutil.client_ctx(kind))
                    self.assertEqual(d.sock.getpeercert(binary_form=True),
                                     tlsutil.cert_der(kind))
            # The session opened before both reloads still works.
            self.assertEqual(old.code("NOOP"), 250)
            t = token()
            r = old.send_mail("x@example.net", ["alice@test.lan"],
                              crlf("Subject: %s\n\nold session\n" % t))
            self.assertEqual(r[0], 250, r)
            self.assertEqual(old.code("QUIT"), 221)
        finally:
            old.close()
        rcv = self.server.find("alice", t)[0].headers("Received")[0]
        self.assertIn("ECDHE-RSA", rcv)

    def test_sighup_bad_key_keeps_old_certificate(self):
        self.server.set_cert("rsa", key_kind="rsa2")
        self.assertFalse(self.server.reload())
        failed = self.server.log().split("reload failed")[-1].splitlines()[0]
        self.assertIn("key.pem", failed)
        self.assertIn("`postie -t -c ", failed)       # where the fix is found
        self.assertEqual(self.peer_cert(tlsutil.client_ctx("rsa")),
                         tlsutil.cert_der("rsa"))
        # Fixed: the next reload takes it.
        self.server.set_cert("rsa2")
        self.assertTrue(self.server.reload())
        self.assertEqual(self.peer_cert(tlsutil.client_ctx("rsa2")),
                         tlsutil.cert_der("rsa2"))


@need_features("tls")
class CertConfigCheck(harness.TestCase):
    """postie -t with good and bad certificate/key pairs."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="postie-tlsconf-")
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write("alice:\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def copy(self, src, name):
        shutil.copyfile(src, os.path.join(self.dir, name))

    def check(self, cert="./cert.pem", key="./key.pem", listen="smtps"):
        conf = ("hostname %s\nlisten smtp 127.0.0.1:2525\n"
                "listen %s 127.0.0.1:4465\nusers ./users\n"
                "# the certificate\ntls_cert %s\ntls_key %s\n"
                % (HOSTNAME, listen, cert, key))
        with open(os.path.join(self.dir, "postie.conf"), "w") as f:
            f.write(conf)
        r = subprocess.run(harness.command("-t", "-c", "postie.conf"),
                           cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30 * SLOW)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def assertBad(self, name, **kw):
        rc, out = self.check(**kw)
        self.assertEqual(rc, 1, out)
        self.assertIn(name, out)
        # the line of the directive that names the file at fault
        line = 7 if name == "key.pem" else 6
        self.assertIn("postie.conf:%d:" % line, out, "names the %s line" % name)
        self.assertLess(len(out), 1000)
        return out

    def test_good_rsa_and_ec(self):
        for kind in ("rsa", "ec"):
            c, k = tlsutil.cert(kind)
            self.copy(c, "cert.pem")
            self.copy(k, "key.pem")
            rc, out = self.check()
            self.assertEqual(rc, 0, out)

    def test_mismatched_rsa_key(self):
        self.copy(tlsutil.cert("rsa")[0], "cert.pem")
        self.copy(tlsutil.cert("rsa2")[1], "key.pem")
        out = self.assertBad("key.pem")
        self.assertIn("does not match", out)

    def test_ec_cert_with_rsa_key(self):
        self.copy(tlsutil.cert("ec")[0], "cert.pem")
        self.copy(tlsutil.cert("rsa")[1], "key.pem")
        self.assertBad("key.pem")

    def test_missing_files(self):
        self.copy(tlsutil.cert("rsa")[0], "cert.pem")
        self.assertBad("key.pem")
        os.remove(os.path.join(self.dir, "cert.pem"))
        self.copy(tlsutil.cert("rsa")[1], "key.pem")
        self.assertBad("cert.pem")

    def test_unreadable_key(self):
        self.copy(tlsutil.cert("rsa")[0], "cert.pem")
        os.mkdir(os.path.join(self.dir, "key.pem"))     # unreadable as root too
        self.assertBad("key.pem")
        if os.geteuid() != 0:
            os.rmdir(os.path.join(self.dir, "key.pem"))
            self.copy(tlsutil.cert("rsa")[1], "key.pem")
            os.chmod(os.path.join(self.dir, "key.pem"), 0)
            self.assertBad("key.pem")

    def test_not_pem(self):
        with open(os.path.join(self.dir, "cert.pem"), "w") as f:
            f.write("this is not a certificate\n")
        self.copy(tlsutil.cert("rsa")[1], "key.pem")
        self.assertBad("cert.pem")
        # Key and certificate swapped.
        self.copy(tlsutil.cert("rsa")[1], "cert.pem")
        self.copy(tlsutil.cert("rsa")[0], "key.pem")
        rc, out = self.check()
        self.assertEqual(rc, 1, out)


@need_features("tls", "auth")
class SubmissionClients(tlsutil.TLSServerTest):
    """Real clients: STARTTLS + AUTH on submission, AUTH on smtps."""
    server_args = {"tls": "rsa", "smtps": True, "submission": True}

    def check_delivered(self, t, user="alice", sa=True):
        m = self.server.find(user, t)
        self.assertEqual(len(m), 1, self.server.log()[-1500:])
        rcv = m[0].headers("Received")[0]
        self.assertIn("with ESMTPSA (TLSv1.2 " if sa else "with ESMTPS (", rcv)
        return m[0]

    def test_smtplib_submission_login(self):
        t = token()
        with smtplib.SMTP("127.0.0.1", self.server.submission_port,
                          local_hostname="client.test", timeout=IO_TIMEOUT) as s:
            s.starttls(context=tlsutil.client_ctx())
            s.login("alice", PASSWORD)
            s.sendmail("alice@test.lan", ["bob@test.lan"],
                       "Subject: %s\r\n\r\nsubmitted\r\n" % t)
        self.check_delivered(t, "bob")

    def test_smtplib_smtps_login(self):
        t = token()
        with smtplib.SMTP_SSL("127.0.0.1", self.server.smtps_port,
                              local_hostname="client.test", timeout=IO_TIMEOUT,
                              context=tlsutil.client_ctx()) as s:
            s.login("alice", PASSWORD)
            s.sendmail("alice@test.lan", ["bob@test.lan"],
                       "Subject: %s\r\n\r\nsmtps\r\n" % t)
        self.check_delivered(t, "bob")

    def swaks(self, port, tls_flag, mech):
        t = token()
        rc, out = run_tool(["swaks", "--server", "127.0.0.1", "--port", str(port),
                            tls_flag, "--auth", mech, "--auth-user", "alice",
                            "--auth-password", PASSWORD,
                            "--from", "alice@test.lan", "--to", "bob@test.lan",
                            "--helo", "client.test", "--header", "Subject: " + t,
                            "--timeout", "20"])
        self.assertEqual(rc, 0, out)
        self.assertIn("235 2.7.0", out)
        self.check_delivered(t, "bob")

    @need_tool("swaks")
    def test_swaks_submission_starttls_plain(self):
        self.swaks(self.server.submission_port, "--tls", "PLAIN")

    @need_tool("swaks")
    def test_swaks_smtp_starttls_login(self):
        self.swaks(self.server.port, "--tls", "LOGIN")

    @need_tool("swaks")
    def test_swaks_smtps(self):
        self.swaks(self.server.smtps_port, "--tlsc", "PLAIN")

    def curl(self, url_scheme, port, *extra):
        t = token()
        with tempfile.NamedTemporaryFile("wb", prefix="postie-curl-",
                                         suffix=".eml") as f:
            f.write(crlf("From: alice@test.lan\nSubject: %s\n\nvia curl\n" % t))
            f.flush()
            rc, out = run_tool(
                ["curl", "-sS", "--max-time", "20",
                 "%s://%s:%d" % (url_scheme, HOSTNAME, port),
                 "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME, port),
                 "--cacert", tlsutil.cert()[0],
                 "--user", "alice:" + PASSWORD,
                 "--mail-from", "alice@test.lan", "--mail-rcpt", "bob@test.lan",
                 "-T", f.name] + list(extra))
        self.assertEqual(rc, 0, out)
        self.check_delivered(t, "bob")

    @need_tool("curl")
    def test_curl_submission_ssl_reqd(self):
        self.curl("smtp", self.server.submission_port, "--ssl-reqd")

    @need_tool("curl")
    def test_curl_smtps(self):
        self.curl("smtps", self.server.smtps_port)

    @need_tool("curl")
    def test_curl_ssl_reqd_refuses_without_tls(self):
        """--ssl-reqd against a server that cannot do TLS fails, so the
        STARTTLS tests above do show a real upgrade."""
        with harness.Server() as plain_srv:
            rc, out = run_tool(["curl", "-sS", "--max-time", "20",
                                "smtp://127.0.0.1:%d" % plain_srv.port,
                                "--ssl-reqd", "--mail-from", "a@example.net",
                                "--mail-rcpt", "alice@test.lan", "-T", "/dev/null"])
            self.assertNotEqual(rc, 0, out)

    def msmtp(self, port, starttls):
        if not shutil.which("msmtp"):
            self.skipTest("msmtp not installed (and could not be installed)")
        t = token()
        with tempfile.TemporaryDirectory(prefix="postie-msmtp-") as tmp:
            conf = os.path.join(tmp, "msmtprc")
            with open(conf, "w") as f:
                f.write("defaults\nlogfile %s\n\naccount test\n"
                        "host 127.0.0.1\nport %d\nfrom alice@test.lan\n"
                        "domain client.test\ntls on\ntls_starttls %s\n"
                        "tls_trust_file %s\nauth on\nuser alice\n"
                        "password %s\ntimeout 20\naccount default : test\n"
                        % (os.path.join(tmp, "log"), port,
                           "on" if starttls else "off", tlsutil.cert()[0],
                           PASSWORD))
            os.chmod(conf, 0o600)
            rc, out = run_tool(["msmtp", "-C", conf, "bob@test.lan"],
                               stdin=crlf("From: alice@test.lan\nTo: bob@test.lan"
                                          "\nSubject: %s\n\nvia msmtp\n" % t))
            self.assertEqual(rc, 0, out)
        self.check_delivered(t, "bob")

    def test_msmtp_submission(self):
        self.msmtp(self.server.submission_port, starttls=True)

    def test_msmtp_smtps(self):
        self.msmtp(self.server.smtps_port, starttls=False)


def _ensure_msmtp():
    """Installs msmtp once if it is missing and we may (root, apt-get)."""
    if shutil.which("msmtp") or os.environ.get("POSTIE_NO_INSTALL") == "1":
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "msmtp"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    except (OSError, subprocess.TimeoutExpired):
        pass


def setUpModule():
    if tlsutil.have("tls", "auth"):
        _ensure_msmtp()
