"""DATA content: dot stuffing, mboxrd quoting, long lines, bare CR/LF,
SMTP smuggling (CVE-2023-51764 class), NUL bytes."""
import mailbox

import harness
import tlsutil
from harness import crlf, token


class DataContent(harness.ServerTest):
    server_args = {"max_size": "1M", "users": harness.DEFAULT_USERS + ("dave", "erin", "frank")}

    def one(self, user, t):
        msgs = self.server.find(user, t)
        self.assertEqual(len(msgs), 1, "want one message with %s in %s: %r"
                         % (t, user, msgs))
        return msgs[0]

    # --- dot stuffing --------------------------------------------------

    def test_dot_unstuffing(self):
        t = token()
        wire = crlf("Subject: %s\n\n..leading dot\n...two dots\n..\n.x\nend\n" % t)
        code, _ = self.deliver(["demo@test.lan"], wire)
        self.assertEqual(code, 250)
        m = self.one("demo", t)
        self.assertEqual(m.body, b".leading dot\n..two dots\n.\nx\nend\n")

    def test_dot_in_middle_of_line_kept(self):
        t = token()
        code, _ = self.deliver(["demo@test.lan"],
                               crlf("Subject: %s\n\na . b\na.\n" % t))
        self.assertEqual(code, 250)
        self.assertEqual(self.one("demo", t).body, b"a . b\na.\n")

    def test_empty_body(self):
        t = token()
        code, _ = self.deliver(["demo@test.lan"], crlf("Subject: %s\n" % t))
        self.assertEqual(code, 250)
        m = self.one("demo", t)
        self.assertEqual(m.headers("Subject"), [t])

    def test_body_without_final_newline_is_terminated(self):
        # "\r\n.\r\n" ends DATA; the CRLF before the dot belongs to the
        # last line, so the message ends with exactly one newline.
        t = token()
        code, _ = self.deliver(["demo@test.lan"],
                               b"Subject: " + t.encode() + b"\r\n\r\nno blank\r\n")
        self.assertEqual(code, 250)
        raw = self.server.mbox_bytes("demo")
        i = raw.index(b"no blank\n")
        # The writer adds one empty line after the message, then the next
        # From_ line or end of file.
        self.assertTrue(raw[i:].startswith(b"no blank\n\n"))
        self.assertFalse(raw[i:].startswith(b"no blank\n\n\n"))

    # --- mboxrd quoting --------------------------------------------------

    def test_mboxrd_quoting(self):
        t = token()
        body = ("From the start\nFrom: not a header\n>From once\n>>From twice\n"
                "From\nFromage\n From indented\n>From\nx From mid\n")
        code, _ = self.deliver(["carol@test.lan"],
                               crlf("Subject: %s\n\n%s" % (t, body)))
        self.assertEqual(code, 250)
        raw = self.server.mbox_bytes("carol")
        stored = raw[raw.index(t.encode()):]
        # On disk: every ">*From " at a line start has one more '>'.
        self.assertIn(b"\n>From the start\n", stored)
        self.assertIn(b"\nFrom: not a header\n", stored)
        self.assertIn(b"\n>>From once\n", stored)
        self.assertIn(b"\n>>>From twice\n", stored)
        self.assertIn(b"\nFrom\nFromage\n From indented\n>From\nx From mid\n", stored)
        # And back after unquoting.
        self.assertEqual(self.one("carol", t).body, body.encode())

    def test_from_line_split_across_packets(self):
        # The quoting must work when "From " arrives in pieces.
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<carol@test.lan>"), 250)
            self.assertEqual(d.code("DATA"), 354)
            d.send(crlf("Subject: %s\n" % t) + b"\r\nFr")
            import time
            time.sleep(0.05)
            d.send(b"om split\r\n>Fro")
            time.sleep(0.05)
            d.send(b"m split2\r\n.\r\n")
            self.assertEqual(d.reply()[0], 250)
        raw = self.server.mbox_bytes("carol")
        stored = raw[raw.index(t.encode()):]
        self.assertIn(b"\n>From split\n>>From split2\n", stored)
        self.assertEqual(self.one("carol", t).body, b"From split\n>From split2\n")

    def test_python_mailbox_reads_it(self):
        user = "dave"
        # dave gets exactly these three messages (not used elsewhere).
        bodies = ["first\nFrom me\n", "second\n>From x\n", "third\n"]
        toks = []
        for b in bodies:
            t = token()
            toks.append(t)
            code, _ = self.deliver([user + "@test.lan"],
                                   crlf("Subject: %s\n\n%s" % (t, b)))
            self.assertEqual(code, 250)
        path = self.server.path("mail", user)
        box = mailbox.mbox(path, create=False)
        try:
            msgs = list(box)
        finally:
            box.close()
        self.assertEqual(len(msgs), 3)
        for m, t in zip(msgs, toks):
            self.assertEqual(m["Subject"], t)
            self.assertTrue(m.get_from().startswith("sender@example.net "))
        # Python's mbox is mboxo: it shows the quoted form.
        self.assertIn(">From me", msgs[0].get_payload())
        self.assertEqual(len(self.server.mbox(user)), 3)

    def test_from_lines_across_read_chunks(self):
        # Many "From " / ">From " lines of varying length: some straddle
        # the server's internal copy chunks; all must come back exact.
        t = token()
        lines = []
        for i in range(3000):
            pre = ">" * (i % 3)
            lines.append(pre + "From " + "x" * (i % 11))
        body = "\n".join(lines) + "\n"
        code, _ = self.deliver(["erin@test.lan"], crlf("Subject: %s\n\n%s" % (t, body)))
        self.assertEqual(code, 250)
        raw = self.server.mbox_bytes("erin")
        # On disk no line starts with a bare "From " but the separator.
        self.assertEqual(raw.count(b"\nFrom "), 0)
        self.assertTrue(raw.startswith(b"From "))
        self.assertEqual(self.one("erin", t).body, body.encode())

    def test_mbox_from_line_in_message_quoted(self):
        # Some clients hand over a message that starts with an mbox From_
        # line: it must not become a message separator.
        t = token()
        code, _ = self.deliver(["frank@test.lan"],
                               crlf("From someone@example.net Mon Jan  1 00:00:00 2024\n"
                                    "Subject: %s\n\nbody\n" % t))
        self.assertEqual(code, 250)
        msgs = self.server.mbox("frank")
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"\nFrom someone@example.net Mon", msgs[0].raw)

    def test_quoted_sender_with_space_in_from_line(self):
        t = token()
        code, _ = self.deliver(["demo@test.lan"], crlf("Subject: %s\n\nq\n" % t),
                               sender='"john doe"@example.net')
        self.assertEqual(code, 250)
        m = self.one("demo", t)
        # The From_ line stays "From SENDER DATE": no blank in SENDER.
        parts = m.from_line.split(b" ")
        self.assertNotIn(b" ", m.from_line[5:].split(b" ")[0])
        self.assertIn(b"john", parts[1])
        self.assertRegex(m.from_line.decode(),
                         r"^From \S+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")

    def test_helo_cannot_inject_headers(self):
        t = token()
        with self.server.dialog() as d:
            self.assertEqual(d.code("EHLO evil\tX-Injected: yes (by me) <x>"), 250)
            code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                  crlf("Subject: %s\n\nh\n" % t))
            self.assertEqual(code, 250)
        m = self.one("demo", t)
        self.assertEqual(m.headers("X-Injected"), [])
        self.assertEqual(len(m.headers("Received")), 1)
        rcv_line = m.head.split(b"\n")[0]
        self.assertNotIn(b"\t", rcv_line.split(b"from ", 1)[1].split(b" (")[0])

    # --- lines and bytes ------------------------------------------------

    def test_long_body_lines_kept(self):
        t = token()
        line1 = "A" * 5000
        line2 = "".join(chr(0x30 + i % 40) for i in range(20000))
        code, _ = self.deliver(["demo@test.lan"],
                               crlf("Subject: %s\n\n%s\n%s\nshort\n" % (t, line1, line2)))
        self.assertEqual(code, 250)
        self.assertEqual(self.one("demo", t).body,
                         ("%s\n%s\nshort\n" % (line1, line2)).encode())

    def test_bare_cr_kept(self):
        t = token()
        code, _ = self.deliver(["demo@test.lan"],
                               b"Subject: " + t.encode() + b"\r\n\r\na\rb\r\nc\r\r\n")
        self.assertEqual(code, 250)
        body = self.one("demo", t).body
        self.assertIn(b"a\rb\n", body)
        self.assertTrue(body.startswith(b"a\rb\nc"), body)

    def test_nul_in_data_refused(self):
        t = token()
        code, lines = self.deliver(["demo@test.lan"],
                                   b"Subject: " + t.encode() + b"\r\n\r\nnul\x00here\r\n")
        self.assertEqual(code, 554, lines)
        self.assertIn("5.6.0", lines[0])
        self.assertEqual(self.server.anywhere(t), [])
        self.assertEqual(self.server.spool_tmp(), [])

    def test_session_goes_on_after_nul(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                  b"Subject: x\r\n\r\n\x00\r\n")
            self.assertEqual(code, 554)
            code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                  crlf("Subject: %s\n\nok\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(self.one("demo", t).body, b"ok\n")

    def test_refused_message_as_last_error(self):
        # The refusal at the end of DATA (554, a NUL) that is the
        # session's last allowed error: 421 and the end of the session,
        # and the daemon goes on serving.
        max_errors = tlsutil.kconfig("SMTP_MAX_ERRORS", 10)
        with self.server.dialog() as d:
            d.ehlo()
            for _ in range(max_errors - 1):
                self.assertEqual(d.code("XYZZY"), 500)
            code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                  b"Subject: x\r\n\r\n\x00\r\n")
            self.assertEqual(code, 554)
            code, lines = d.reply()
            self.assertEqual(code, 421, lines)
            d.read_until_closed()
        self.assertServing("after a refused message that was the last error")

    # --- smuggling ---------------------------------------------------------

    def smuggle(self, end):
        """DATA with a fake end `end` then a second transaction as text,
        then the real end. Must be one message holding the smuggled text."""
        t, t2 = token("outer"), token("inner")
        fake = (b"Subject: " + t.encode() + b"\r\n\r\nbefore" + end +
                b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<bob@test.lan>\r\n"
                b"DATA\r\nSubject: " + t2.encode() + b"\r\n\r\nsmuggled\r\n")
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("a@example.net", ["alice@test.lan"], fake)
            # One reply for one message: then the session is idle.
            d.send(b"NOOP\r\n")
            code2, _ = d.reply()
            self.assertEqual(code2, 250, "extra replies: the smuggled "
                             "commands were run (%d %r)" % (code, lines))
        if code == 250:
            msgs = self.server.find("alice", t)
            self.assertEqual(len(msgs), 1)
            self.assertIn(b"MAIL FROM:<evil@example.net>", msgs[0].body)
            self.assertIn(t2.encode(), msgs[0].body)
        else:
            # Rejecting the message outright is allowed too.
            self.assertTrue(500 <= code < 600, (code, lines))
            self.assertEqual(self.server.anywhere(t), [])
        self.assertEqual(self.server.find("bob", t2), [])
        self.assertEqual(len(self.server.find("alice", t2)), 1 if code == 250 else 0)

    def test_smuggling_lf_dot_lf(self):
        self.smuggle(b"\n.\n")

    def test_smuggling_lf_dot_crlf(self):
        self.smuggle(b"\n.\r\n")

    def test_smuggling_crlf_dot_lf(self):
        self.smuggle(b"\r\n.\n")

    def test_smuggling_cr_dot_cr(self):
        self.smuggle(b"\r.\r")

    def test_smuggling_cr_dot_crlf(self):
        self.smuggle(b"\r.\r\n")

    def test_smuggling_crlf_dot_cr(self):
        self.smuggle(b"\r\n.\r")

    def test_bare_lf_lines_are_content(self):
        t = token()
        code, _ = self.deliver(["demo@test.lan"],
                               b"Subject: " + t.encode() + b"\r\n\r\none\ntwo\n.\nthree\r\n")
        self.assertEqual(code, 250)
        self.assertIn(b"one\ntwo\n", self.one("demo", t).body)

    def test_data_split_in_tiny_writes(self):
        # Byte by byte over the end marker and dot stuffing.
        t = token()
        wire = crlf("Subject: %s\n\n..dot\nend\n" % t) + b".\r\n"
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 250)
            self.assertEqual(d.code("DATA"), 354)
            import time
            for i in range(len(wire)):
                d.send(wire[i:i + 1])
                if wire[i:i + 1] in (b"\r", b"\n", b"."):
                    time.sleep(0.002)
            self.assertEqual(d.reply()[0], 250)
        self.assertEqual(self.one("demo", t).body, b".dot\nend\n")


if __name__ == "__main__":
    import unittest
    unittest.main()
