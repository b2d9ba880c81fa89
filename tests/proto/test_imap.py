"""IMAP4rev1 (RFC 3501) over the mbox index: imaplib over imap (plain and
STARTTLS) and imaps; curl imaps; FETCH of every kind checked against the
mbox; STORE/EXPUNGE persisted; SEARCH keys; two sessions on one mailbox;
IDLE; hostile input (huge literals, bad sets, NUL, deep nesting, wrong
state, STARTTLS injection)."""
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import unittest

import harness
import tlsutil
from harness import IO_TIMEOUT, SLOW, token
from tlsutil import PASSWORD


def have_imap():
    if "imap" in harness.features():
        return True
    try:
        with open(harness.BIN, "rb") as f:
            return b"postie IMAP4rev1 ready" in f.read()
    except OSError:
        return False


def from_line(sender="someone@example.net"):
    return "From %s Sat Jan  3 01:05:34 2026\n" % sender


def mbox_text(bodies):
    out = []
    for b in bodies:
        if not b.endswith("\n"):
            b += "\n"
        quoted = re.sub(r"(?m)^(>*From )", r">\1", b)
        out.append(from_line() + quoted + "\n")
    return "".join(out)


def msg(t, extra="", hdrs=""):
    return ("From: Alice Example <a@example.net>\nTo: bob@test.lan, "
            "\"Carol C\" <carol@test.lan>\nSubject: %s\nDate: Sat, 3 Jan 2026 "
            "01:05:34 +0000\nMessage-ID: <%s@example.net>\n%s\nbody of %s\n%s"
            % (t, t, hdrs, t, extra))


MULTI = """From: x@example.net
Subject: multi
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="BND"

preamble
--BND
Content-Type: text/plain; charset=utf-8

part one
--BND
Content-Type: message/rfc822

From: inner@example.net
Subject: inner

inner body
--BND
Content-Type: application/octet-stream; name="a.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="a.bin"

AAEC
--BND--
epilogue
"""


def crlf_bytes(text):
    return text.replace("\n", "\r\n").encode()


class IMAPServer(tlsutil.TLSServer):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.imap_port = self.imaps_port = None

    def config(self, port):
        text = super().config(port)
        self.imap_port = harness.free_port()
        extra = ["listen imap 127.0.0.1:%d" % self.imap_port]
        if self.tls:
            self.imaps_port = harness.free_port()
            extra.append("listen imaps 127.0.0.1:%d" % self.imaps_port)
        return text + "\n".join(extra) + "\n"

    def imap(self, user="alice", pw=PASSWORD):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=IO_TIMEOUT)
        if user:
            m.login(user, pw)
        return m

    def imap_ssl(self, user="alice", pw=PASSWORD):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port,
                              ssl_context=tlsutil.client_ctx(),
                              timeout=IO_TIMEOUT)
        if user:
            m.login(user, pw)
        return m

    def set_mbox(self, user, text):
        p = self.path("mail", user)
        with open(p, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.chmod(p, 0o600)

    def mbox(self, user):
        with open(self.path("mail", user), "rb") as f:
            return f.read()


class Raw:
    """Exact bytes out, lines in."""

    def __init__(self, port, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port),
                                                     IO_TIMEOUT)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, timeout=None):
        deadline = time.monotonic() + (timeout or IO_TIMEOUT)
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line; pending %r" % self.buf[:200])
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise harness.Closed("closed; pending %r" % self.buf[:200])
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def until(self, tag, timeout=None):
        """Lines up to and including the tagged one."""
        out = []
        for _ in range(100000):
            ln = self.line(timeout)
            out.append(ln)
            if ln.startswith(tag + " "):
                return out
        raise AssertionError("no tagged answer")

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag)

    def login(self):
        r = self.cmd("L", "LOGIN alice \"%s\"" % PASSWORD)
        assert r[-1].startswith("L OK"), r

    def close(self):
        self.sock.close()


class ImapBase(harness.ServerTest):
    extra = "plaintext_auth_networks 127.0.0.1/32\n"
    server_kw = {}          # more IMAPServer arguments (max_size...)

    @classmethod
    def setUpClass(cls):
        super(harness.ServerTest, cls).setUpClass()
        if not have_imap():
            raise unittest.SkipTest("imap not in this build")
        tls = tlsutil.have("tls")
        cls.server = IMAPServer(tls="rsa" if tls else None, extra=cls.extra,
                                users=tlsutil.default_users(),
                                **cls.server_kw).start()

    def setUp(self):
        super().setUp()
        for u in ("alice", "bob"):
            self.server.set_mbox(u, "")
            try:
                os.unlink(self.server.path("mail", ".postie", u + ".idx"))
            except OSError:
                pass

    def raw(self):
        return Raw(self.server.imap_port)

    def fetch1(self, m, seq, what):
        typ, data = m.fetch(str(seq), what)
        self.assertEqual(typ, "OK", data)
        return data

    def smtp_deliver(self, rcpt, text):
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("a@example.net", [rcpt],
                                      harness.crlf(text))
            d.cmd("QUIT")
        self.assertEqual(code, 250, lines)


class ImapSession(ImapBase):

    def test_greeting_capability_login_logout(self):
        m = self.server.imap(user=None)
        try:
            caps = m.capabilities
            for k in ("IMAP4REV1", "SASL-IR", "AUTH=PLAIN", "UNSELECT", "CHILDREN"):
                self.assertIn(k, caps)
            # Each optional extension is offered exactly when compiled in.
            for k in ("IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE",
                      "ID", "ENABLE", "LITERAL+"):
                self.assertEqual(k in caps, "imap:" + k.lower() in harness.features(), k)
            if tlsutil.have("tls"):
                self.assertIn("STARTTLS", caps)
            self.assertEqual(m.noop()[0], "OK")
            with self.assertRaises(imaplib.IMAP4.error):
                m.login("alice", "wrong")
            m.login("alice", PASSWORD)
            if "NAMESPACE" in caps:
                self.assertEqual(m.namespace()[0], "OK")
        finally:
            m.logout()

    def test_authenticate_plain_sasl_ir(self):
        r = self.raw()
        try:
            b = tlsutil.b64(b"\0alice\0" + PASSWORD.encode())
            out = r.cmd("a", "AUTHENTICATE PLAIN " + b)
            self.assertTrue(out[-1].startswith("a OK"), out)
            out = r.cmd("b", "SELECT INBOX")
            self.assertTrue(out[-1].startswith("b OK [READ-WRITE]"), out)
        finally:
            r.close()
        r = self.raw()
        try:
            r.send("a AUTHENTICATE PLAIN\r\n")
            self.assertTrue(r.line().startswith("+"))
            r.send(tlsutil.b64(b"\0alice\0" + PASSWORD.encode()) + "\r\n")
            self.assertTrue(r.until("a")[-1].startswith("a OK"))
        finally:
            r.close()
        # A wrong response is answered once the failed-login delay is
        # over, not at the autologout deadline.
        r = self.raw()
        try:
            r.send("a AUTHENTICATE PLAIN\r\n")
            self.assertTrue(r.line().startswith("+"))
            r.send(tlsutil.b64(b"\0alice\0wrong") + "\r\n")
            self.assertTrue(r.until("a")[-1].startswith("a NO [AUTHENTICATIONFAILED]"))
        finally:
            r.close()

    def test_select_status_list(self):
        t = [token("s%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        m = self.server.imap()
        try:
            typ, data = m.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"3"]))
            self.assertEqual(m.response("UIDVALIDITY")[1][0] is not None, True)
            self.assertEqual(m.response("UNSEEN")[1], [b"1"])
            typ, data = m.list()
            self.assertEqual(typ, "OK")
            self.assertTrue(any(b'"INBOX"' in d for d in data), data)
            typ, data = m.lsub()
            self.assertEqual(typ, "OK")
            typ, data = m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)")
            self.assertEqual(typ, "OK")
            self.assertIn(b"MESSAGES 3", data[0])
            self.assertIn(b"UNSEEN 3", data[0])
            self.assertIn(b"UIDNEXT 4", data[0])
            typ, data = m.select("NoSuchBox")
            self.assertEqual(typ, "NO")
            typ, data = m.select("INBOX", readonly=True)
            self.assertEqual(typ, "OK")
        finally:
            m.logout()

    def test_fetch_bodies_match_mbox(self):
        t = [token("f%d" % i) for i in range(3)]
        bodies = [msg(t[0], ".dot\nFrom here\n>From there\n"),
                  msg(t[1], "x" * 5000 + "\n"), MULTI]
        self.server.set_mbox("alice", mbox_text(bodies))
        m = self.server.imap()
        try:
            m.select("INBOX", readonly=True)
            for i, b in enumerate(bodies):
                want = crlf_bytes(b if b.endswith("\n") else b + "\n")
                data = self.fetch1(m, i + 1, "(UID RFC822.SIZE BODY.PEEK[])")
                self.assertEqual(data[0][1], want)
                self.assertIn(b"RFC822.SIZE %d" % len(want), data[0][0])
                self.assertIn(b"UID %d" % (i + 1), data[0][0])
                head, _, text = want.partition(b"\r\n\r\n")
                data = self.fetch1(m, i + 1, "(BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
                self.assertEqual(data[0][1], head + b"\r\n\r\n")
                self.assertEqual(data[1][1], text)
                data = self.fetch1(m, i + 1, "(RFC822.HEADER)")
                self.assertEqual(data[0][1], head + b"\r\n\r\n")
                data = self.fetch1(m, i + 1, "(BODY.PEEK[]<10.20>)")
                self.assertEqual(data[0][1], want[10:30])
                self.assertIn(b"BODY[]<10>", data[0][0])
            data = self.fetch1(m, 1, "(BODY.PEEK[HEADER.FIELDS (SUBJECT from)])")
            self.assertEqual(data[0][1], b"From: Alice Example <a@example.net>\r\n"
                             b"Subject: " + t[0].encode() + b"\r\n\r\n")
            data = self.fetch1(m, 1, "(BODY.PEEK[HEADER.FIELDS.NOT (To Subject Date Message-ID From)])")
            self.assertEqual(data[0][1], b"\r\n")
            data = self.fetch1(m, 1, "(INTERNALDATE FLAGS)")
            self.assertIn(b'INTERNALDATE "03-Jan-2026 01:05:34 +0000"', data[0])
            # EXAMINE shows \Recent without taking it; nothing was marked
            # \Seen by the read-only session
            self.assertIn(b"FLAGS (\\Recent)", data[0])
            data = self.fetch1(m, "1:*", "FLAGS")
            self.assertFalse(any(b"Seen" in d for d in data), data)
        finally:
            m.logout()

    def test_envelope_bodystructure_sections(self):
        t = token("e")
        self.server.set_mbox("alice", mbox_text([msg(t), MULTI]))
        m = self.server.imap()
        try:
            m.select("INBOX")
            data = self.fetch1(m, 1, "(ENVELOPE)")
            env = data[0]
            self.assertIn(b'("Alice Example" NIL "a" "example.net")', env)
            self.assertIn(b'(NIL NIL "bob" "test.lan")("Carol C" NIL "carol" "test.lan")', env)
            self.assertIn(t.encode(), env)
            data = self.fetch1(m, 1, "(BODYSTRUCTURE)")
            self.assertIn(b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT"', data[0])
            data = self.fetch1(m, 2, "(BODYSTRUCTURE)")
            bs = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
            # "part one": its CRLF is the delimiter's, so 0 lines
            self.assertIn(b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 8 0', bs)
            self.assertIn(b'"MESSAGE" "RFC822"', bs)
            self.assertIn(b'"APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 4', bs)
            self.assertIn(b'("ATTACHMENT" ("FILENAME" "a.bin"))', bs)
            self.assertIn(b' "MIXED" ("BOUNDARY" "BND")', bs)
            data = self.fetch1(m, 2, "(BODY.PEEK[1] BODY.PEEK[3] BODY.PEEK[2.TEXT] "
                               "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[3.MIME])")
            parts = [d[1] for d in data if isinstance(d, tuple)]
            self.assertEqual(parts[0], b"part one")
            self.assertEqual(parts[1], b"AAEC")
            self.assertEqual(parts[2], b"inner body")
            self.assertEqual(parts[3], b"Subject: inner\r\n\r\n")
            self.assertTrue(parts[4].startswith(b"Content-Type: application/octet-stream"))
            self.assertTrue(parts[4].endswith(b"\r\n\r\n"))
            data = self.fetch1(m, 2, "(BODY.PEEK[9])")
            first = data[0] if isinstance(data[0], bytes) else data[0][0]
            self.assertTrue(b'BODY[9] ""' in first or b"BODY[9] {0}" in first, data)
        finally:
            m.logout()

    def test_store_seen_expunge_persist(self):
        t = [token("x%d" % i) for i in range(4)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        m = self.server.imap()
        try:
            m.select("INBOX")
            typ, data = m.store("2", "+FLAGS", "(\\Flagged \\Answered)")
            self.assertEqual(typ, "OK")
            self.assertIn(b"\\Answered", data[0])
            data = self.fetch1(m, 3, "(BODY[TEXT])")
            self.assertIn(b"\\Seen", b"".join(x if isinstance(x, bytes) else x[0] for x in data))
            typ, data = m.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
            self.assertEqual(typ, "OK")
            typ, data = m.expunge()
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
            self.assertEqual(len(data), 3)
            # \Recent: this session was the first to select the mailbox
            self.assertIn(b"UID 2 FLAGS (\\Recent \\Answered \\Flagged)", data[0])
            self.assertIn(b"UID 3 FLAGS (\\Recent \\Seen)", data[1])
        finally:
            m.logout()
        msgs = harness.split_mbox(self.server.mbox("alice"))
        self.assertEqual(len(msgs), 3)
        self.assertFalse(any(t[0].encode() in x.raw for x in msgs))
        m = self.server.imap()
        try:
            m.select("INBOX")
            typ, data = m.fetch("1:*", "(UID FLAGS)")
            self.assertIn(b"UID 2 FLAGS (\\Answered \\Flagged)", data[0])
            typ, data = m.store("1:*", "+FLAGS", "\\Deleted")
            self.assertEqual(typ, "OK")
            m.close()
            self.assertEqual(m.select("INBOX")[1], [b"0"])
        finally:
            m.logout()

    def test_search(self):
        bodies = [msg("alpha one", "needle in body\n"), msg("beta two", "x" * 3000),
                  msg("gamma three", hdrs="X-Tag: special\n")]
        self.server.set_mbox("alice", mbox_text(bodies))
        m = self.server.imap()
        try:
            m.select("INBOX")
            m.store("2", "+FLAGS", "\\Flagged")

            def s(*crit):
                typ, data = m.search(None, *crit)
                self.assertEqual(typ, "OK", data)
                return data[0].split()

            self.assertEqual(s("ALL"), [b"1", b"2", b"3"])
            self.assertEqual(s("FLAGGED"), [b"2"])
            self.assertEqual(s("UNFLAGGED"), [b"1", b"3"])
            self.assertEqual(s("SUBJECT", "beta"), [b"2"])
            self.assertEqual(s("BODY", "NEEDLE"), [b"1"])
            self.assertEqual(s("TEXT", "special"), [b"3"])
            self.assertEqual(s("HEADER", "X-Tag", "spec"), [b"3"])
            self.assertEqual(s("LARGER", "2000"), [b"2"])
            self.assertEqual(s("NOT", "LARGER", "2000"), [b"1", b"3"])
            self.assertEqual(s("OR", "1", "3"), [b"1", b"3"])
            self.assertEqual(s("(2:3 UNFLAGGED)"), [b"3"])
            self.assertEqual(s("SINCE", "1-Jan-2026", "BEFORE", "4-Jan-2026"),
                             [b"1", b"2", b"3"])
            self.assertEqual(s("ON", "3-Jan-2026"), [b"1", b"2", b"3"])
            self.assertEqual(s("SENTBEFORE", "3-Jan-2026"), [])
            self.assertEqual(s("SENTON", "3-Jan-2026"), [b"1", b"2", b"3"])
            self.assertEqual(s("FROM", "alice"), [b"1", b"2", b"3"])
            self.assertEqual(s("TO", "carol"), [b"1", b"2", b"3"])
            self.assertEqual(s("UNSEEN", "UID", "2:*"), [b"2", b"3"])
            typ, data = m.uid("SEARCH", None, "FLAGGED")
            self.assertEqual(data[0].split(), [b"2"])
            typ, data = m.search("UTF-8", "ALL")
            self.assertEqual(typ, "OK")
            typ, data = m.search("KOI8-R", "ALL")
            self.assertEqual(typ, "NO")
        finally:
            m.logout()

    @harness.need_feature("imap:idle")
    def test_two_sessions_and_idle(self):
        self.server.set_mbox("alice", mbox_text([msg(token("t%d" % i)) for i in range(3)]))
        a = self.server.imap()
        b = self.raw()
        try:
            a.select("INBOX")
            b.login()
            b.cmd("S", "SELECT INBOX")
            a.store("2", "+FLAGS", "\\Flagged")
            out = b.cmd("N", "NOOP")
            self.assertTrue(any(re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\)\)", l)
                                for l in out), out)
            # new mail shows as EXISTS
            self.smtp_deliver("alice@test.lan", "Subject: new\n\nnew mail\n")
            out = b.cmd("N2", "NOOP")
            self.assertIn("* 4 EXISTS", out)
            # IDLE: another session's expunge arrives without asking
            b.send("I IDLE\r\n")
            self.assertTrue(b.line().startswith("+"))
            a.store("1", "+FLAGS", "\\Deleted")
            self.assertIn("\\Deleted", b.line())
            a.expunge()
            self.assertEqual(b.line(), "* 1 EXPUNGE")
            b.send("DONE\r\n")
            self.assertTrue(b.until("I")[-1].startswith("I OK"))
            out = b.cmd("F", "FETCH 1:* (UID)")
            self.assertEqual([l for l in out if l.startswith("* ")],
                             ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)",
                              "* 3 FETCH (UID 4)"])
        finally:
            a.logout()
            b.close()


class ImapHostile(ImapBase):

    def test_huge_literal_refused_before_reading(self):
        r = self.raw()
        try:
            r.login()
            r.send("a LOGIN {999999999}\r\n")
            ln = r.line()
            self.assertTrue(ln.startswith("a NO"), ln)
            self.assertEqual(r.cmd("b", "NOOP")[-1][:4], "b OK")
            r.send("c LOGIN {999999999+}\r\n")
            self.assertTrue(r.line().startswith("* BYE"))
        finally:
            r.close()

    @harness.need_feature("imap:literal+")
    def test_literals_and_literal_plus(self):
        r = self.raw()
        try:
            r.send("a LOGIN {5}\r\n")
            self.assertTrue(r.line().startswith("+"))
            pw = PASSWORD.encode()
            r.send(b"alice {%d+}\r\n%s\r\n" % (len(pw), pw))
            self.assertTrue(r.until("a")[-1].startswith("a OK"))
        finally:
            r.close()

    def test_bad_syntax_and_state(self):
        self.server.set_mbox("alice", mbox_text([msg("one")]))
        r = self.raw()
        try:
            self.assertTrue(r.cmd("a", "SELECT INBOX")[-1].startswith("a BAD"))
            self.assertTrue(r.cmd("a2", "FETCH 1 FLAGS")[-1].startswith("a2 BAD"))
            r.login()
            self.assertTrue(r.cmd("b", "FETCH 1 FLAGS")[-1].startswith("b BAD"))
            r.cmd("c", "SELECT INBOX")
            for bad in ("FETCH 0 FLAGS", "FETCH 1:x FLAGS", "FETCH 5 FLAGS",
                        "FETCH 1 (FLAGS", "FETCH 1 BODY[1.]", "STORE 1 FLAGS \\Bogus",
                        "SEARCH " + "(" * 40 + "ALL" + ")" * 40,
                        "SEARCH " + "NOT " * 40 + "ALL", "LOGIN x y",
                        "SELECT \"IN\0BOX\""):
                out = r.cmd("d", bad)
                self.assertTrue(out[-1].startswith("d BAD"), (bad, out))
            out = r.cmd("e", "FETCH 1:* FLAGS")
            self.assertTrue(out[-1].startswith("e OK"), out)
            self.assertTrue(r.cmd("f", "UID FETCH 99:100 FLAGS")[-1].startswith("f OK"))
            # Longer than the build's command limit (8192 by default).
            r.send("x" * max(20000, tlsutil.kconfig("IMAP_CMD_MAX", 8192) + 1000)
                   + "\r\n")
            self.assertIn("too long", r.line())
            self.assertTrue(r.cmd("g", "NOOP")[-1].startswith("g OK"))
        finally:
            r.close()

    def test_too_many_errors_ends_session(self):
        r = self.raw()
        try:
            with self.assertRaises(harness.Closed):
                for i in range(100):
                    r.cmd("t%d" % i, "BOGUS")
        finally:
            r.close()


@unittest.skipUnless(tlsutil.have("tls"), "tls not in this build")
class ImapTLS(ImapBase):
    extra = ""          # no plaintext login anywhere

    def test_logindisabled_then_starttls(self):
        m = self.server.imap(user=None)
        try:
            self.assertIn("LOGINDISABLED", m.capabilities)
            self.assertNotIn("AUTH=PLAIN", m.capabilities)
            typ, data = m._simple_command("LOGIN", "alice", '"%s"' % PASSWORD)
            self.assertEqual(typ, "NO")
            m.starttls(ssl_context=tlsutil.client_ctx())
            self.assertNotIn("STARTTLS", m.capabilities)
            m.login("alice", PASSWORD)
            self.assertEqual(m.select("INBOX")[0], "OK")
        finally:
            m.logout()

    def test_imaps_fetch(self):
        body = msg(token("tls"), "y" * 40000 + "\n")
        self.server.set_mbox("alice", mbox_text([body]))
        m = self.server.imap_ssl()
        try:
            m.select("INBOX")
            data = self.fetch1(m, 1, "(BODY[])")
            self.assertEqual(data[0][1], crlf_bytes(body))
        finally:
            m.logout()

    def test_starttls_injection(self):
        r = self.raw()
        try:
            r.send("a STARTTLS\r\nb CAPABILITY\r\n")
            self.assertTrue(r.line().startswith("a OK"))
            s = tlsutil.client_ctx().wrap_socket(r.sock, server_hostname=harness.HOSTNAME)
            s.settimeout(IO_TIMEOUT)
            s.sendall(b"c NOOP\r\n")
            data = b""
            while b"c OK" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertNotIn(b"b OK", data)
            self.assertIn(b"c OK", data)
            s.close()
        finally:
            pass

    @harness.need_tool("curl")
    def test_curl_imaps(self):
        body = msg(token("curl"))
        self.server.set_mbox("alice", mbox_text([body]))
        url = "imaps://127.0.0.1:%d/INBOX;UID=1" % self.server.imaps_port
        p = subprocess.run(["curl", "-sk", "--max-time", str(int(20 * SLOW)),
                            "-u", "alice:" + PASSWORD, url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, crlf_bytes(body))


if __name__ == "__main__":
    unittest.main()
