"""IMAP command framing under hostile input, against the real binary: the
pre-auth literal overflow of the command buffer plain
and over imaps, lines at the exact end of the command buffer, every command
answered by exactly one tagged reply. A crash is seen as a dead process."""
import re
import socket
import ssl

import harness
import tlsutil
from harness import IO_TIMEOUT
from test_imap import ImapBase, Raw

CMD_MAX = tlsutil.kconfig("IMAP_CMD_MAX", 8192)
ITEM_MAX = tlsutil.kconfig("IMAP_ITEM_MAX", 16384)


def exploit_line(total=CMD_MAX - 1, lit="{4096}", end=b"\n", head="a LOGIN "):
    """A pre-auth command whose line fills the command buffer to `total`
    bytes (its end not counted) and asks for a literal."""
    pad = total - len(head) - len(lit) - 1
    return (head + "x" * pad + " " + lit).encode() + end


class Framing(ImapBase):

    def alive(self, r, tag="z"):
        """The session and the daemon both still answer."""
        out = r.cmd(tag, "NOOP")
        self.assertTrue(out[-1].startswith(tag + " OK"), out)
        self.assertTrue(self.server.running(), "postie died")

    def tagged_once(self, lines, tag):
        got = [ln for ln in lines if ln.startswith(tag + " ")]
        self.assertEqual(len(got), 1, lines[-5:])
        return got[0]

    def exploit(self, r):
        line = exploit_line()
        self.assertEqual(len(line), CMD_MAX)
        r.send(line)
        first = r.line()
        # A hostile client sends the literal whatever the answer: those
        # bytes must never land past the command buffer (before the fix
        # they overwrote the session and the daemon died).
        r.send(b"A" * 4096 + b"\r\n")
        try:
            out = r.cmd("s", "SELECT INBOX")
        except (harness.Closed, OSError):
            out = None
        self.assertTrue(self.server.running(), "postie died")
        # The literal that cannot fit is refused before it comes, with one
        # tagged answer; the junk line that followed is not a command that
        # logs anyone in.
        self.assertRegex(first, r"^a (NO|BAD) ")
        self.assertIsNotNone(out, "session cut")
        self.assertRegex(out[-1], r"^s BAD .*(Log in|state)", out)
        self.alive(r)

    def test_defect1_exploit_plain(self):
        r = self.raw()
        try:
            self.exploit(r)
        finally:
            r.close()
        self.assertTrue(self.server.running(), "postie died")

    @tlsutil.need_features("tls")
    def test_defect1_exploit_imaps(self):
        sock = socket.create_connection(("127.0.0.1", self.server.imaps_port),
                                        IO_TIMEOUT)
        sock = tlsutil.client_ctx().wrap_socket(
            sock, server_hostname=harness.HOSTNAME)
        r = Raw(None, sock=sock)
        try:
            self.exploit(r)
        finally:
            r.close()
        self.assertTrue(self.server.running(), "postie died")
    def test_lines_at_the_buffer_end(self):
        """Command lines whose end or literal falls at every position around
        the end of the command buffer: each gets one tagged answer, a
        literal is asked for only when it fits, the daemon lives (a new
        session for each length: refusals count as errors)."""
        for total in range(CMD_MAX - 12, CMD_MAX + 3):
            r = self.raw()
            try:
                for end in (b"\n", b"\r\n"):
                    for lit in ("{0}", "{1}", "{2}", "{40}", "{4096}"):
                        r.send(exploit_line(total, lit, end, "a CAPABILITY "))
                        first = r.line()
                        if first.startswith("+"):
                            r.send(b"y" * int(lit[1:-1]) + b"\r\n")
                            ans = r.until("a")
                        else:
                            ans = [first] if first.startswith("a ") else \
                                [first] + r.until("a")
                        self.assertRegex(self.tagged_once(ans, "a"),
                                         r"^a (NO|BAD) ", (total, end, lit))
                self.alive(r)
            finally:
                r.close()
            self.assertTrue(self.server.running(), "postie died at %d" % total)

    def test_too_long_gets_its_tagged_answer(self):
        """An over-long command is answered BAD with its own tag once it is
        over, also when its line ends in a literal (dropped with it)."""
        r = self.raw()
        try:
            r.login()
            r.send(b"t1 NOOP " + b"x" * (CMD_MAX + 100) + b"\r\n")
            self.assertRegex(self.tagged_once(r.until("t1"), "t1"),
                             r"^t1 BAD .*too long")
            # The line ends in a literal sent without waiting: dropped too.
            r.send(b"t2 NOOP " + b"x" * (CMD_MAX + 100) + b" {20+}\r\n"
                   + b"X CREATE injected\r\n" + b" rest\r\n")
            ans = r.until("t2")
            self.assertRegex(self.tagged_once(ans, "t2"), r"^t2 BAD .*too long")
            # A sync literal at the end of an over-long line: the answer
            # comes at once, the client sends no literal.
            r.send(b"t3 NOOP " + b"x" * (CMD_MAX + 100) + b" {20}\r\n")
            self.assertRegex(self.tagged_once(r.until("t3"), "t3"),
                             r"^t3 BAD .*too long")
            out = r.cmd("t4", 'LIST "" "*"')
            self.assertNotIn("injected", "\n".join(out))
            self.alive(r)
        finally:
            r.close()

    @harness.need_feature("imap:id")
    def test_overlong_id_is_answered(self):
        """RFC 2971 allows an ID of 30 pairs of 1024-octet values, more
        than a command may hold: its parameters are only informational,
        so it is answered as if they were NIL (imaptest's "id" test;
        Dovecot answers OK); anything else that long stays BAD."""
        r = self.raw()
        try:
            r.login()
            pairs = " ".join('"k%02d" "%s"' % (i, "v" * 1024) for i in range(30))
            r.send(("i1 ID (%s)\r\n" % pairs).encode())
            ans = r.until("i1")
            self.assertRegex(self.tagged_once(ans, "i1"), r"^i1 OK ")
            self.assertTrue(any(line.startswith("* ID ") for line in ans), ans)
            r.send(("i2 NOOP (%s)\r\n" % pairs).encode())
            self.assertRegex(self.tagged_once(r.until("i2"), "i2"),
                             r"^i2 BAD .*too long")
            self.alive(r)
        finally:
            r.close()


def body(tag, n=3):
    """A message whose lines would be commands if framing were lost."""
    return ("Subject: %s\r\n\r\n" % tag + "".join(
        "X%d CREATE injected%s\r\n" % (i, tag) for i in range(n))).encode()


class Pipelined(ImapBase):
    """Pipelined command streams with literals, sent in one write after a
    pad that puts them at every offset against the connection's input
    buffer, or split in two writes at every byte: every command gets
    exactly one tagged answer, no message line runs as a command."""

    inbuf = tlsutil.kconfig("CONN_INBUF", 1024)

    def check_answers(self, lines, tags):
        for t in tags:
            got = [ln for ln in lines if ln.startswith(t + " ")]
            self.assertEqual(len(got), 1, (t, lines[-8:]))
        bad = [ln for ln in lines if re.match(r"^X\d", ln)]
        self.assertEqual(bad, [], "a message line ran as a command")

    def pad(self, n):
        """NOOP commands of n bytes in all (n == 0 or n >= 8), their tags."""
        out, tags = b"", []
        while n > 0:
            top = min(71, CMD_MAX)      # one NOOP line, CRLF included
            k = n if n <= top else (top if n - top >= 8 else n - 8)
            tag = b"p%d" % len(tags)
            tag += b"x" * (k - 7 - len(tag))
            out += tag + b" NOOP\r\n"
            tags.append(tag.decode())
            n -= k
        return out, tags

    def run_stream(self, r, stream, tags, split=None, pad=0):
        pre, ptags = self.pad(pad)
        data = pre + stream + b"zz NOOP\r\n"
        if split is None:
            r.send(data)
        else:
            cut = len(pre) + split
            r.send(data[:cut])
            r.send(data[cut:])
        lines = r.until("zz")
        self.check_answers(lines, ptags + tags + ["zz"])
        return lines

    def appends(self, good=True):
        """Two APPEND {N+} back to back, then a NOOP."""
        box = b"INBOX" if good else b"nosuch"
        b1, b2 = body(b"one".decode()), body(b"two".decode())
        stream = (b"a1 APPEND " + box + b" {%d+}\r\n" % len(b1) + b1 + b"\r\n"
                  + b"a2 APPEND " + box + b" (\\Seen) {%d+}\r\n" % len(b2) + b2
                  + b"\r\n" + b"n1 NOOP\r\n")
        return stream, ["a1", "a2", "n1"]

    def check_no_injection(self, r):
        out = r.cmd("l", 'LIST "" "*"')
        self.assertNotIn("injected", "\n".join(out))

    @harness.need_feature("imap:literal+")
    def test_refused_appends_every_alignment(self):
        """APPENDs to a missing mailbox are refused but their literals are
        read exactly, at every offset against the input buffer (a new
        session every few rounds: refusals count as errors)."""
        stream, tags = self.appends(good=False)
        pads = [0] + list(range(8, self.inbuf + 8))
        for i in range(0, len(pads), 10):
            r = self.raw()
            try:
                r.login()
                for pad in pads[i:i + 10]:
                    lines = self.run_stream(r, stream, tags, pad=pad)
                    self.assertTrue(any(ln.startswith("a1 NO") for ln in lines))
                self.check_no_injection(r)
            finally:
                r.close()
        self.assertTrue(self.server.running())

    @harness.need_feature("imap:literal+")
    def test_appends_split_at_every_byte(self):
        r = self.raw()
        try:
            r.login()
            r.cmd("s", "SELECT INBOX")
            stream, tags = self.appends(good=True)
            n = 0
            for cut in range(1, len(stream)):
                lines = self.run_stream(r, stream, tags, split=cut)
                self.assertTrue(any(ln.startswith("a1 OK") for ln in lines),
                                lines)
                n += 2
            out = r.cmd("f", "FETCH 1:* (BODY.PEEK[])")
            self.assertTrue(out[-1].startswith("f OK"), out[-3:])
            self.assertEqual(sum(1 for ln in out
                                 if re.match(r"^\* \d+ FETCH .*BODY\[\]", ln)), n)
            self.check_no_injection(r)
        finally:
            r.close()
        self.assertTrue(self.server.running())

    @harness.need_feature("imap:literal+")
    def test_search_append_noop(self):
        r = self.raw()
        try:
            r.login()
            r.cmd("s", "SELECT INBOX")
            b1 = body("three")
            stream = (b"s1 SEARCH ALL\r\na1 APPEND INBOX {%d+}\r\n" % len(b1)
                      + b1 + b"\r\nn1 NOOP\r\n")
            tags = ["s1", "a1", "n1"]
            for pad in (0, 8, 9, 100, self.inbuf - 40, self.inbuf - 1):
                self.run_stream(r, stream, tags, pad=pad)
            for cut in range(1, len(stream), 3):
                self.run_stream(r, stream, tags, split=cut)
            self.check_no_injection(r)
        finally:
            r.close()

    def test_sync_literals_split_at_every_byte(self):
        """A synchronising APPEND and LOGIN: the client waits for '+', its
        lines come in two writes split at every byte."""
        b1 = body("four", 1)
        for cut in range(1, 24):
            r = self.raw()
            try:
                line = b"a LOGIN {5}\r\n"
                r.send(line[:min(cut, len(line) - 1)])
                r.send(line[min(cut, len(line) - 1):])
                self.assertTrue(r.line().startswith("+"))
                rest = b"alice \"%s\"\r\n" % tlsutil.PASSWORD.encode()
                r.send(rest[:cut] if cut < len(rest) else rest)
                if cut < len(rest):
                    r.send(rest[cut:])
                self.assertRegex(r.until("a")[-1], r"^a OK")
                line = b"b APPEND INBOX {%d}\r\n" % len(b1)
                r.send(line[:cut % len(line) or 1])
                r.send(line[cut % len(line) or 1:])
                self.assertTrue(r.line().startswith("+"))
                data = b1 + b"\r\nc NOOP\r\n"
                r.send(data[:cut])
                r.send(data[cut:])
                lines = r.until("c")
                self.check_answers(lines, ["b", "c"])
                self.assertTrue(any(ln.startswith("b OK") for ln in lines))
            finally:
                r.close()
        self.assertTrue(self.server.running())


def long_quoted_message(tag):
    """A message whose ENVELOPE is long: every address header carries a
    quoted display name near the line limit, full of escapes."""
    name = ('\\"q\\" ' * 100)[:700]

    def addr(who):
        return '"%s %s" <%s@example.net>' % (who, name, who)
    hdrs = ["From: " + addr("from"), "Sender: " + addr("sender"),
            "Reply-To: " + addr("reply"), "To: " + addr("to"),
            "Cc: " + addr("cc"), "Bcc: " + addr("bcc"),
            "Subject: %s %s" % (tag, "\"quoted\\\" " * 60),
            "Date: Sat, 3 Jan 2026 01:05:34 +0000",
            "In-Reply-To: <%s@example.net>" % ("r" * 600),
            "Message-ID: <%s.%s@example.net>" % (tag, "m" * 600)]
    return "\n".join(hdrs) + "\n\nbody %s\n" % tag


class FetchRendering(ImapBase):
    """Issue 12, defect 2: a FETCH whose items outgrow the item buffer
    (many ENVELOPEs of a message with long quoted headers) must neither
    write past it into another session nor end the session silently."""

    def test_many_envelopes(self):
        tag = harness.token("env")
        self.smtp_deliver("alice@test.lan", long_quoted_message(tag))
        btag = harness.token("bob")
        self.smtp_deliver("bob@test.lan", "Subject: %s\n\nfor bob\n" % btag)
        victim = self.raw()
        r = self.raw()
        try:
            # bob's session sits next to alice's in the session pool.
            victim.send('v LOGIN bob "%s"\r\n' % tlsutil.PASSWORD)
            self.assertTrue(victim.until("v")[-1].startswith("v OK"))
            self.assertTrue(victim.cmd("v2", "SELECT INBOX")[-1].startswith("v2 OK"))
            r.login()
            self.assertTrue(r.cmd("s", "SELECT INBOX")[-1].startswith("s OK"))
            one = r.cmd("f1", "FETCH 1 (ENVELOPE)")
            self.assertTrue(one[-1].startswith("f1 OK"), one[-1])
            if ITEM_MAX >= 16384:   # else the stand-in (a NIL envelope)
                self.assertIn(tag, "\n".join(one))
            for n in (2, 3, 6, 12, 24):
                cmd = "FETCH 1 (%s)" % " ".join(
                    ["ENVELOPE", "BODYSTRUCTURE"] * (n // 2))
                out = r.cmd("f%d" % n, cmd)
                want = r"^f%d (OK|NO \[LIMIT\])" % n
                if len(cmd) + 6 > CMD_MAX:      # a tiny-limit build
                    want = r"^f%d BAD .*too long" % n
                self.assertRegex(out[-1], want, out[-1])
                self.assertTrue(self.server.running(), "postie died")
            self.alive(r)
            # The other session is untouched: still bob's, still selected.
            out = victim.cmd("v3", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertTrue(out[-1].startswith("v3 OK"), out)
            self.assertIn(btag, "\n".join(out))
            self.assertTrue(victim.cmd("v4", "NOOP")[-1].startswith("v4 OK"))
        finally:
            r.close()
            victim.close()
        self.assertTrue(self.server.running(), "postie died")

    alive = Framing.alive
