"""POP3 (RFC 1939, 2449, 2595, 5034) over the mbox index: poplib over
pop3, STLS and pop3s; curl pop3s; fetchmail with certificate checking;
deliveries during a session; mailboxes changed by other programs; kill -9
during the rewrite at QUIT; hostile input."""
import base64
import mailbox
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import harness
import tlsutil
from harness import HOSTNAME, IO_TIMEOUT, SLOW, crlf, token
from tlsutil import PASSWORD

UIDL_RE = re.compile(r"^\d+\.\d+$")


def need_pop3(obj):
    return harness.need_feature("pop3")(obj)


def from_line(sender="someone@example.net"):
    return "From %s Sat Jan  3 01:05:34 2026\n" % sender


def mbox_text(bodies):
    """mboxrd text for message texts (LF line ends, unquoted)."""
    out = []
    for b in bodies:
        if not b.endswith("\n"):
            b += "\n"
        quoted = re.sub(r"(?m)^(>*From )", r">\1", b)
        out.append(from_line() + quoted + "\n")
    return "".join(out)


def msg(t, extra=""):
    return "From: a@example.net\nSubject: %s\n\nbody of %s\n%s" % (t, t, extra)


class POP3Server(tlsutil.TLSServer):
    """TLSServer plus pop3 and pop3s listeners on their own ports."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.pop3_port = self.pop3s_port = None

    def config(self, port):
        text = super().config(port)
        self.pop3_port = harness.free_port()
        extra = ["listen pop3 127.0.0.1:%d" % self.pop3_port]
        if self.tls:
            self.pop3s_port = harness.free_port()
            extra.append("listen pop3s 127.0.0.1:%d" % self.pop3s_port)
        return text + "\n".join(extra) + "\n"

    def pop(self, user="alice", pw=PASSWORD, source=None):
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=IO_TIMEOUT)
        if source:
            p.sock.close()
            p.sock = socket.create_connection(
                ("127.0.0.1", self.pop3_port), IO_TIMEOUT,
                source_address=(source, 0))
            p.file = p.sock.makefile("rb")
            p.welcome = p._getresp()
        if user:
            p.user(user)
            p.pass_(pw)
        return p

    def pop_ssl(self, user="alice", pw=PASSWORD):
        p = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, timeout=IO_TIMEOUT,
                            context=tlsutil.client_ctx())
        p.user(user)
        p.pass_(pw)
        return p

    def set_mbox(self, user, text):
        p = self.path("mail", user)
        with open(p, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.chmod(p, 0o600)


class Raw:
    """A raw POP3 line dialogue (exact bytes)."""

    def __init__(self, port, source=None, sock=None):
        self.sock = sock or socket.create_connection(
            ("127.0.0.1", port), IO_TIMEOUT,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.banner = self.line()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        deadline = time.monotonic() + IO_TIMEOUT
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line")
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

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def multi(self):
        lines = []
        for _ in range(100000):
            ln = self.line()
            if ln == ".":
                return lines
            lines.append(ln[1:] if ln.startswith("..") else ln)
        raise AssertionError("no end of multi-line answer")

    def login(self, user="alice", pw=PASSWORD):
        assert self.cmd("USER " + user).startswith("+OK")
        r = self.cmd("PASS " + pw)
        assert r.startswith("+OK"), r
        return r

    def close(self):
        self.sock.close()


class Pop3Base(harness.ServerTest):
    """A POP3Server with plaintext login allowed for 127.0.0.1 only."""

    extra = "plaintext_auth_networks 127.0.0.1/32\n"

    @classmethod
    def setUpClass(cls):
        super(harness.ServerTest, cls).setUpClass()
        if "pop3" not in harness.features():
            raise __import__("unittest").SkipTest("pop3 not in this build")
        tls = tlsutil.have("tls")
        cls.server = POP3Server(tls="rsa" if tls else None, extra=cls.extra,
                                users=tlsutil.default_users()).start()

    def setUp(self):
        super().setUp()
        for u in ("alice", "bob"):
            self.server.set_mbox(u, "")

    def raw(self, **kw):
        return Raw(self.server.pop3_port, **kw)

    def smtp_deliver(self, rcpt, text):
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("a@example.net", [rcpt], crlf(text))
            d.cmd("QUIT")
        self.assertEqual(code, 250, lines)
        return lines


@need_pop3
class Pop3Session(Pop3Base):

    def test_capa_and_greeting(self):
        p = self.server.pop(user=None)
        try:
            self.assertTrue(p.getwelcome().startswith(b"+OK"))
            capa = p.capa()
            for k in ("TOP", "UIDL", "RESP-CODES", "USER", "SASL", "PIPELINING"):
                self.assertIn(k, capa)
            self.assertEqual(capa["SASL"], ["PLAIN"])
            if tlsutil.have("tls"):
                self.assertIn("STLS", capa)
        finally:
            p.quit()

    def test_stat_list_retr_uidl_top(self):
        bodies = [msg(token("m1"), ".leading dot\n..two dots\nFrom here\n>From there\n"),
                  msg(token("m2"), "x" * 1500 + "\n"),
                  msg(token("m3"))]
        self.server.set_mbox("alice", mbox_text(bodies))
        p = self.server.pop()
        try:
            count, size = p.stat()
            self.assertEqual(count, 3)
            wire = [crlf(b) for b in bodies]
            self.assertEqual(size, sum(len(w) for w in wire))
            _, listing, _ = p.list()
            self.assertEqual([l.decode() for l in listing],
                             ["%d %d" % (i + 1, len(w)) for i, w in enumerate(wire)])
            self.assertEqual(p.list(2).decode(), "+OK 2 %d" % len(wire[1]))
            for i, w in enumerate(wire):
                _, lines, octets = p.retr(i + 1)
                self.assertEqual(b"\r\n".join(lines) + b"\r\n", w)
            _, uidl, _ = p.uidl()
            uids = [l.decode().split()[1] for l in uidl]
            self.assertEqual(len(set(uids)), 3)
            for u in uids:
                self.assertRegex(u, UIDL_RE)
            _, lines, _ = p.top(1, 1)
            self.assertEqual(lines, wire[0].split(b"\r\n")[:4])
            _, lines, _ = p.top(2, 0)
            self.assertEqual(lines[-1], b"")
            self.assertEqual(len(lines), 3)
        finally:
            p.quit()

    def test_dele_applies_at_quit_only(self):
        ts = [token("d%d" % i) for i in range(4)]
        self.server.set_mbox("alice", mbox_text([msg(t) for t in ts]))
        p = self.server.pop()
        _, before, _ = p.uidl()
        p.dele(2)
        self.assertEqual(p.stat()[0], 3)
        with self.assertRaises(poplib.error_proto):
            p.retr(2)
        with self.assertRaises(poplib.error_proto):
            p.dele(2)
        p.rset()
        self.assertEqual(p.stat()[0], 4)
        p.dele(1)
        p.dele(3)
        # Nothing is applied before QUIT.
        self.assertEqual(len(self.server.mbox("alice")), 4)
        resp = p.quit()
        self.assertTrue(resp.startswith(b"+OK"), resp)
        left = self.server.mbox("alice")
        self.assertEqual([ts[1] in m.raw.decode() for m in left], [True, False])
        self.assertIn(ts[3], left[1].raw.decode())
        p = self.server.pop()
        _, after, _ = p.uidl()
        p.quit()
        # UIDs of the kept messages did not change.
        uid = {l.split()[1] for l in before}
        self.assertTrue({l.split()[1] for l in after} <= uid)
        self.assertEqual([l.split()[1] for l in after],
                         [before[1].split()[1], before[3].split()[1]])

    def test_dropped_connection_applies_nothing(self):
        self.server.set_mbox("alice", mbox_text([msg(token()) for _ in range(3)]))
        r = self.raw()
        r.login()
        self.assertTrue(r.cmd("DELE 1").startswith("+OK"))
        self.assertTrue(r.cmd("DELE 2").startswith("+OK"))
        r.close()
        time.sleep(0.3)
        self.assertEqual(len(self.server.mbox("alice")), 3)
        p = self.server.pop()
        self.assertEqual(p.stat()[0], 3)
        p.quit()

    def test_uidl_stable_across_sessions_and_deliveries(self):
        self.server.set_mbox("alice", mbox_text([msg(token()) for _ in range(2)]))
        p = self.server.pop()
        _, u1, _ = p.uidl()
        p.quit()
        self.smtp_deliver("alice@test.lan", msg(token("new")))
        before = len(self.server.log())
        p = self.server.pop()
        _, u2, _ = p.uidl()
        p.quit()
        self.assertEqual(u2[:2], u1)
        self.assertEqual(len(u2), 3)
        # Incremental: the log shows no rebuild for an append.
        self.assertNotIn("rebuilt", self.server.log()[before:])

    def test_auth_plain(self):
        p = self.server.pop(user=None)
        ir = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
        self.assertTrue(p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK"))
        p.quit()
        r = self.raw()
        self.assertEqual(r.cmd("AUTH PLAIN"), "+ ")
        self.assertTrue(r.cmd(ir).startswith("+OK"), "continuation form")
        r.cmd("QUIT")
        r.close()
        r = self.raw()
        self.assertEqual(r.cmd("AUTH PLAIN"), "+ ")
        self.assertTrue(r.cmd("*").startswith("-ERR"))
        self.assertTrue(r.cmd("AUTH CRAM-MD5").startswith("-ERR"))
        self.assertTrue(r.cmd("AUTH PLAIN !!!").startswith("-ERR"))
        r.close()

    def test_bad_password(self):
        r = self.raw()
        self.assertTrue(r.cmd("USER alice").startswith("+OK"))
        t0 = time.monotonic()
        resp = r.cmd("PASS wrong")
        self.assertTrue(resp.startswith("-ERR [AUTH]"), resp)
        self.assertGreater(time.monotonic() - t0, 0.5)
        self.assertTrue(r.cmd("USER nobody").startswith("+OK"))
        self.assertTrue(r.cmd("PASS " + PASSWORD).startswith("-ERR [AUTH]"))
        r.close()

    def test_in_use(self):
        p = self.server.pop()
        try:
            with self.assertRaises(poplib.error_proto) as cm:
                self.server.pop()
            self.assertIn(b"[IN-USE]", cm.exception.args[0])
            q = self.server.pop(user="bob")
            q.quit()
        finally:
            p.quit()
        self.server.pop().quit()

    def test_large_message_streams(self):
        t = token("big")
        body = "".join("line %06d %s\n" % (i, "y" * 60) for i in range(80000))
        text = msg(t, body)
        self.server.set_mbox("alice", mbox_text([text]))
        p = self.server.pop()
        _, lines, _ = p.retr(1)
        p.quit()
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", crlf(text))

    def test_delivery_during_session_survives_rewrite(self):
        ts = [token("k%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(t) for t in ts]))
        p = self.server.pop()
        p.dele(1)
        t_new = token("during")
        lines = self.smtp_deliver("alice@test.lan", msg(t_new))
        # Appended at once, while the session is open: not queued (the
        # mailbox was not held locked) nor waited for (it is there now).
        self.assertIn("delivered as", lines[-1], lines)
        self.assertIn(t_new, self.server.mbox_bytes("alice").decode())
        self.assertEqual(p.stat()[0], 2)     # the snapshot does not change
        p.quit()
        raw = self.server.mbox_bytes("alice").decode()
        self.assertNotIn(ts[0], raw)
        self.assertIn(ts[1], raw)
        self.assertIn(t_new, raw)
        p = self.server.pop()
        self.assertEqual(p.stat()[0], 3)
        _, lines, _ = p.retr(3)
        self.assertIn(t_new.encode(), b"\n".join(lines))
        p.quit()

    def test_changed_by_other_programs(self):
        ts = [token("o%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(t) for t in ts]))
        p = self.server.pop()
        _, u1, _ = p.uidl()
        p.quit()
        uv1 = u1[0].split()[1].split(b".")[0]
        # Appended by hand: incremental, same UIDVALIDITY.
        t4 = token("hand")
        with open(self.server.path("mail", "alice"), "a") as f:
            f.write(mbox_text([msg(t4)]))
        p = self.server.pop()
        _, u2, _ = p.uidl()
        self.assertEqual(u2[:3], u1)
        self.assertEqual(len(u2), 4)
        p.quit()
        # Rewritten like mutt would: message removed with Python's mailbox.
        time.sleep(0.01)
        mb = mailbox.mbox(self.server.path("mail", "alice"))
        mb.lock()
        try:
            keys = sorted(mb.keys())
            mb.remove(keys[0])
            mb.flush()
        finally:
            mb.unlock()
            mb.close()
        p = self.server.pop()
        _, u3, _ = p.uidl()
        self.assertEqual(len(u3), 3)
        self.assertNotEqual(u3[0].split()[1].split(b".")[0], uv1)
        for i, t in enumerate([ts[1], ts[2], t4]):
            _, lines, _ = p.retr(i + 1)
            self.assertIn(t.encode(), b"\n".join(lines))
        p.quit()

    def test_restart_keeps_uidl(self):
        self.server.set_mbox("alice", mbox_text([msg(token()) for _ in range(3)]))
        p = self.server.pop()
        _, u1, _ = p.uidl()
        p.quit()
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        p = self.server.pop()
        _, u2, _ = p.uidl()
        p.quit()
        self.assertEqual(u1, u2)

    def test_index_location(self):
        self.server.set_mbox("alice", mbox_text([msg(token())]))
        self.server.pop().quit()
        self.assertTrue(os.path.exists(self.server.path("mail", ".postie", "alice.idx")))


@need_pop3
class Pop3Hostile(Pop3Base):

    def test_numbers_and_arguments(self):
        self.server.set_mbox("alice", mbox_text([msg(token())]))
        r = self.raw()
        r.login()
        for c in ("RETR 0", "RETR -1", "RETR 99999999999999999999", "RETR 2",
                  "RETR", "RETR 1x", "RETR +1", "DELE 1 2", "LIST 1 2",
                  "TOP 1", "TOP 1 -1", "TOP 1 x", "UIDL 0", "STAT 1",
                  "RETR 4294967297", "FOO"):
            self.assertTrue(r.cmd(c).startswith("-ERR"), c)
        self.assertTrue(r.cmd("NOOP").startswith("+OK"))
        self.assertTrue(r.cmd("QUIT").startswith("+OK"))
        r.close()
        self.assertEqual(len(self.server.mbox("alice")), 1)

    def test_error_limit_counts_protocol_errors_only(self):
        """Ordinary -ERR answers (no such message) never end a session;
        20 protocol errors do, with the error's own -ERR line, then the
        goodbye -ERR, then the close, deletions not applied."""
        self.server.set_mbox("alice", mbox_text([msg(token()), msg(token())]))
        r = self.raw()
        r.login()
        self.assertTrue(r.cmd("DELE 1").startswith("+OK"))
        for i in range(30):
            self.assertTrue(r.cmd("RETR 99").startswith("-ERR"), i)
            self.assertTrue(r.cmd("RETR 1").startswith("-ERR"), i)  # deleted
        self.assertTrue(r.cmd("NOOP").startswith("+OK"))
        for i in range(19):
            self.assertTrue(r.cmd("FOO%d" % i).startswith("-ERR"), i)
        self.assertTrue(r.cmd("NOOP").startswith("+OK"))
        self.assertTrue(r.cmd("BAR").startswith("-ERR Unknown"))
        self.assertEqual(r.line(), "-ERR Too many errors, closing")
        with self.assertRaises(harness.Closed):
            r.line()
        r.close()
        self.assertEqual(len(self.server.mbox("alice")), 2)

    def test_wrong_state(self):
        r = self.raw()
        for c in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "PASS x", "RSET",
                  "UIDL", "TOP 1 1"):
            self.assertTrue(r.cmd(c).startswith("-ERR"), c)
        r.login()
        for c in ("USER alice", "PASS x", "AUTH PLAIN", "STLS"):
            self.assertTrue(r.cmd(c).startswith("-ERR"), c)
        self.assertTrue(r.cmd("STAT").startswith("+OK"))
        r.close()

    def test_long_lines_and_nul(self):
        r = self.raw()
        self.assertTrue(r.cmd("USER " + "a" * 5000).startswith("-ERR"))
        self.assertTrue(r.cmd("NOOP\0x").startswith("-ERR"))
        r.login()
        self.assertTrue(r.cmd("STAT").startswith("+OK"))
        r.close()

    def test_too_many_errors_closes(self):
        r = self.raw()
        with self.assertRaises((harness.Closed, BrokenPipeError,
                                ConnectionResetError)):
            for _ in range(100):
                r.cmd("BOGUS")
        r.close()

    def test_pipelined(self):
        self.server.set_mbox("alice", mbox_text([msg(token()) for _ in range(3)]))
        r = self.raw()
        r.send("USER alice\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 2\r\nNOOP\r\n"
               % PASSWORD)
        self.assertTrue(r.line().startswith("+OK"))
        self.assertTrue(r.line().startswith("+OK"))
        self.assertTrue(r.line().startswith("+OK 3 "))
        self.assertTrue(r.line().startswith("+OK"))
        self.assertEqual(len(r.multi()), 3)
        self.assertTrue(r.line().startswith("+OK"))
        self.assertEqual(len(r.multi()), 3)
        self.assertTrue(r.line().startswith("+OK"))
        self.assertIn("Subject:", r.multi()[1])
        self.assertTrue(r.line().startswith("+OK"))
        r.close()

    def test_plaintext_refused_outside_networks(self):
        r = self.raw(source="127.0.0.2")
        capa = r.cmd("CAPA")
        self.assertTrue(capa.startswith("+OK"))
        lines = r.multi()
        self.assertNotIn("USER", lines)
        self.assertFalse(any(l.startswith("SASL") for l in lines))
        self.assertTrue(r.cmd("USER alice").startswith("-ERR [AUTH]"))
        self.assertTrue(r.cmd("PASS x").startswith("-ERR"))
        self.assertTrue(r.cmd("AUTH PLAIN AGFsaWNlAHg=").startswith("-ERR [AUTH]"))
        r.close()


@need_pop3
@harness.need_feature("tls")
class Pop3TLS(Pop3Base):

    def test_stls_poplib(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=IO_TIMEOUT)
        p.stls(tlsutil.client_ctx())
        self.assertNotIn("STLS", p.capa())
        p.user("alice")
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 0)
        p.quit()

    def test_stls_from_other_network_then_login(self):
        r = Raw(self.server.pop3_port, source="127.0.0.2")
        self.assertTrue(r.cmd("USER alice").startswith("-ERR [AUTH]"))
        self.assertTrue(r.cmd("STLS").startswith("+OK"))
        r.sock = tlsutil.client_ctx().wrap_socket(r.sock, server_hostname=HOSTNAME)
        r.cmd("CAPA")
        self.assertIn("USER", r.multi())
        r.login()
        r.close()

    def test_stls_pipelined_plaintext_dropped(self):
        r = self.raw()
        r.send("STLS\r\nUSER alice\r\nPASS %s\r\n" % PASSWORD)
        self.assertTrue(r.line().startswith("+OK"))
        self.assertEqual(r.buf, b"")
        r.sock = tlsutil.client_ctx().wrap_socket(r.sock, server_hostname=HOSTNAME)
        # The USER/PASS sent in the clear were thrown away: not logged in.
        self.assertTrue(r.cmd("STAT").startswith("-ERR"))
        r.close()

    def test_pop3s(self):
        t = token("s")
        self.server.set_mbox("alice", mbox_text([msg(t)]))
        p = self.server.pop_ssl()
        _, lines, _ = p.retr(1)
        self.assertIn(t.encode(), b"\n".join(lines))
        p.quit()

    @harness.need_tool("curl")
    def test_curl_pop3s(self):
        ts = [token("c%d" % i) for i in range(2)]
        self.server.set_mbox("alice", mbox_text([msg(t) for t in ts]))
        base = "pop3s://127.0.0.1:%d/" % self.server.pop3s_port
        auth = ["-k", "-s", "-S", "--max-time", "30", "-u", "alice:" + PASSWORD]
        out = subprocess.run(["curl"] + auth + [base], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(out.stdout.decode().split("\r\n")) - 1, 2)
        out = subprocess.run(["curl"] + auth + [base + "2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(ts[1].encode(), out.stdout)
        out = subprocess.run(["curl"] + auth + ["-X", "UIDL", base],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        uids = [l.split()[1] for l in out.stdout.decode().split("\r\n") if l]
        self.assertEqual(len(uids), 2)
        for u in uids:
            self.assertRegex(u, UIDL_RE)

    @harness.need_tool("fetchmail")
    def test_fetchmail_checks_certificate(self):
        ts = [token("f%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(t, ".dot line\n") for t in ts]))
        home = tempfile.mkdtemp(prefix="postie-fm-")
        try:
            out = os.path.join(home, "out")
            rc = os.path.join(home, "fetchmailrc")
            with open(rc, "w") as f:
                f.write('set no bouncemail\n'
                        'poll 127.0.0.1 with proto POP3 port %d\n'
                        '  user "alice" there with password "%s" is "x" here\n'
                        '  options ssl sslcertck sslcertfile "%s" '
                        'sslcommonname "%s"\n'
                        '  mda "/bin/sh -c \'cat >> %s\'"\n'
                        % (self.server.pop3s_port, PASSWORD,
                           tlsutil.cert()[0], HOSTNAME, out))
            os.chmod(rc, 0o600)
            env = dict(os.environ, HOME=home)
            r = subprocess.run(["fetchmail", "--nosyslog", "-f", rc, "--pidfile",
                                os.path.join(home, "pid")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout.decode()[-2000:])
            with open(out, "rb") as f:
                got = f.read()
            for t in ts:
                self.assertIn(t.encode(), got)
            self.assertIn(b"\n.dot line\n", got)
            # fetchmail deleted what it fetched (DELE + QUIT).
            self.assertEqual(self.server.mbox("alice"), [])
            # A wrong CA: fetchmail refuses the server.
            rc2 = os.path.join(home, "fetchmailrc2")
            with open(rc, "r") as f, open(rc2, "w") as g:
                g.write(f.read().replace(tlsutil.cert()[0], tlsutil.cert("ec")[0]))
            os.chmod(rc2, 0o600)
            self.server.set_mbox("alice", mbox_text([msg(token())]))
            r = subprocess.run(["fetchmail", "--nosyslog", "-f", rc2, "--pidfile",
                                os.path.join(home, "pid")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(self.server.mbox("alice")), 1)
        finally:
            shutil.rmtree(home, ignore_errors=True)


@need_pop3
class Pop3Crash(harness.TestCase):
    """kill -9 while QUIT rewrites a big mailbox: afterwards the mbox is the
    old or the new one, parses cleanly, nothing torn."""

    timeout = int(150 * SLOW)

    @harness.slow
    def test_kill9_during_rewrite(self):
        srv = POP3Server(tls=None, users=tlsutil.default_users(),
                         extra="plaintext_auth_networks 127.0.0.1/32\n")
        srv.start()
        try:
            n = 1500
            ts = [token("x%d" % i) for i in range(n)]
            filler = ("z" * 70 + "\n") * 200      # ~14 KB per message
            bodies = [msg(t, filler) for t in ts]
            old = mbox_text(bodies).encode()
            kept = [t for i, t in enumerate(ts) if i % 3 == 0]
            outcomes = set()
            for delay in (0.0, 0.02, 0.08, 0.3):
                if not srv.running():
                    srv.start()
                srv.set_mbox("alice", old)
                r = Raw(srv.pop3_port)
                r.login()
                cmds = "".join("DELE %d\r\n" % (i + 1) for i in range(n) if i % 3)
                r.send(cmds)
                for _ in range(n - len(kept)):
                    assert r.line().startswith("+OK")
                r.send("QUIT\r\n")
                time.sleep(delay)
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait(10)
                srv.stop()
                r.close()
                # The dotlock of the killed process would go stale after
                # CONFIG_MBOX_DOTLOCK_STALE seconds; do not wait for that.
                try:
                    os.unlink(srv.path("mail", "alice.lock"))
                except FileNotFoundError:
                    pass
                data = srv.mbox_bytes("alice")
                msgs = harness.split_mbox(data)
                found = [m.headers("subject")[0] for m in msgs]
                if data == old:
                    outcomes.add("old")
                else:
                    self.assertEqual(found, kept, "torn mailbox after kill -9")
                    outcomes.add("new")
                # And postie reads it again cleanly.
                srv.start()
                p = srv.pop()
                self.assertEqual(p.stat()[0], len(msgs))
                p.quit()
                srv.stop()
            self.assertTrue(outcomes)
        finally:
            srv.cleanup()
