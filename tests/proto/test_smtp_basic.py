"""Basic SMTP with real clients: smtplib, curl, swaks; EHLO keywords,
delivery to mbox (From_ line, Received:, body), envelopes, pipelining."""
import email.utils
import os
import re
import smtplib
import subprocess
import time

import harness
from harness import HOSTNAME, SLOW, crlf, need_feature, need_tool, token

ALIASES = "postmaster: demo\n"


class BasicSmtp(harness.ServerTest):
    server_args = {"aliases": ALIASES, "max_size": "1M"}

    @classmethod
    def setUpClass(cls):
        # Without the aliases feature an aliases directive is a config error.
        if "aliases" not in harness.features():
            cls.server_args = {"max_size": "1M", "users": harness.DEFAULT_USERS
                               + ("postmaster",)}
        super().setUpClass()

    # --- greeting and EHLO ---------------------------------------------

    def test_banner_names_hostname(self):
        with self.server.dialog() as d:
            code, lines = d.banner
            self.assertEqual(code, 220)
            self.assertTrue(lines[0].startswith("220 " + HOSTNAME), lines)

    def test_ehlo_keywords(self):
        with self.server.smtplib() as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            self.assertTrue(s.has_extn("pipelining"))
            self.assertTrue(s.has_extn("8bitmime"))
            self.assertTrue(s.has_extn("enhancedstatuscodes"))
            self.assertTrue(s.has_extn("size"))
            self.assertEqual(int(s.esmtp_features["size"]), 1024 * 1024)
            self.assertEqual("smtputf8" in s.esmtp_features,
                             "smtputf8" in harness.features(),
                             "SMTPUTF8 advertised iff the feature is built in")

    def test_ehlo_reply_format(self):
        with self.server.dialog() as d:
            lines = d.ehlo("client.test")
            self.assertTrue(lines[0].startswith("250-" + HOSTNAME), lines)
            for l in lines[:-1]:
                self.assertTrue(l.startswith("250-"), lines)
            self.assertTrue(lines[-1].startswith("250 "), lines)
            self.assertIn("250-SIZE 1048576", lines)

    def test_helo(self):
        with self.server.smtplib() as s:
            code, msg = s.helo("client.test")
            self.assertEqual(code, 250)
            self.assertIn(HOSTNAME.encode(), msg)
            t = token()
            s.sendmail("a@example.net", ["demo@test.lan"],
                       "Subject: helo %s\r\n\r\nhello\r\n" % t)
        m = self.server.find("demo", t)
        self.assertEqual(len(m), 1)
        rcv = m[0].headers("Received")[0]
        self.assertIn("with SMTP", rcv)

    def test_helo_and_ehlo_need_argument(self):
        with self.server.dialog() as d:
            self.assertEqual(d.code("EHLO"), 501)
            self.assertEqual(d.code("HELO"), 501)
            self.assertEqual(d.code("EHLO ok.test"), 250)

    def test_noop_help_vrfy_quit(self):
        with self.server.dialog() as d:
            self.assertEqual(d.code("NOOP"), 250)
            self.assertEqual(d.code("HELP"), 214)
            self.assertIn(d.code("VRFY demo"), (252, 250, 550, 502))
            self.assertEqual(d.code("QUIT"), 221)
            self.assertEqual(d.read_until_closed(), b"")

    # --- delivery ------------------------------------------------------

    def test_smtplib_delivery(self):
        t = token()
        msg = ("From: Sender <sender@example.net>\r\nTo: demo@test.lan\r\n"
               "Subject: %s\r\nMessage-ID: <%s@example.net>\r\n\r\n"
               "line one\r\nline two\r\n\r\nlast line\r\n" % (t, t))
        before = time.time()
        with self.server.smtplib() as s:
            s.ehlo("client.test")
            refused = s.sendmail("sender@example.net", ["demo@test.lan"], msg)
            self.assertEqual(refused, {})
        msgs = self.server.find("demo", t)
        self.assertEqual(len(msgs), 1, self.server.mbox("demo"))
        m = msgs[0]
        # From_ line: "From sender date" with an asctime-style date.
        fl = m.from_line.decode()
        mo = re.match(r"^From (\S+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})$", fl)
        self.assertTrue(mo, fl)
        self.assertEqual(mo.group(1), "sender@example.net")
        when = time.mktime(time.strptime(mo.group(2), "%a %b %d %H:%M:%S %Y"))
        when -= time.timezone if not time.daylight else time.altzone
        # gmtime or localtime: within a day of now, that is all we need.
        self.assertLess(abs(when - before), 86400 + 60)
        # Received: first, naming our hostname and the client address.
        first = m.head.split(b"\n")[0]
        self.assertTrue(first.startswith(b"Received: "), m.head)
        rcv = m.headers("Received")[0]
        self.assertIn("by " + HOSTNAME, rcv)
        self.assertIn("127.0.0.1", rcv)
        self.assertIn("client.test", rcv)
        self.assertIn("ESMTP", rcv)
        self.assertIn("for <demo@test.lan>", rcv)
        date = rcv.rsplit(";", 1)[1].strip()
        self.assertIsNotNone(email.utils.parsedate_tz(date), date)
        self.assertEqual(m.headers("Subject"), [t])
        self.assertTrue(m.body.startswith(b"line one\nline two\n\nlast line\n"),
                        m.body)
        # Stored with LF line ends only.
        self.assertNotIn(b"\r", m.raw)

    def test_message_to_two_users(self):
        t = token()
        with self.server.smtplib() as s:
            refused = s.sendmail("x@example.net", ["alice@test.lan", "bob@example.org"],
                                 "Subject: %s\r\n\r\nto two\r\n" % t)
            self.assertEqual(refused, {})
        for u in ("alice", "bob"):
            m = self.server.find(u, t)
            self.assertEqual(len(m), 1, u)
            self.assertEqual(m[0].body, b"to two\n")
            # Two recipients: no "for <...>" clause naming just one.
            self.assertNotIn("for <", m[0].headers("Received")[0])

    def test_same_user_twice_one_copy(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            code, _ = d.send_mail("x@example.net",
                                  ["carol@test.lan", "CAROL@example.org"],
                                  crlf("Subject: %s\n\ndup\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(len(self.server.find("carol", t)), 1)

    def test_mail_loop_refused(self):
        # RFC 5321 6.3: a message that went round a loop (two boxes
        # relaying to each other) is refused, not passed on forever.
        import tlsutil
        limit = tlsutil.kconfig("SMTP_MAX_HOPS", 50)
        for hops, want in ((limit - 1, 250), (limit, 554)):
            t = token()
            head = "".join("Received: from hop%d by relay%d.example.net\r\n"
                           "\tfor <demo@test.lan>; Sat, 5 Dec 2026 20:00:00 +0000\r\n"
                           % (i, i) for i in range(hops))
            with self.server.dialog() as d:
                d.ehlo()
                code, text = d.send_mail("x@example.net", ["demo@test.lan"],
                                         head + "Subject: %s\r\n\r\n"
                                         "received: in the body is no hop\r\n"
                                         % t)
                self.assertEqual(code, want, (hops, text))
            self.assertEqual(len(self.server.find("demo", t)), want == 250)
        self.assertIn("5.4.6", " ".join(text))

    def test_null_sender(self):
        t = token()
        with self.server.smtplib() as s:
            s.sendmail("", ["demo@test.lan"], "Subject: bounce %s\r\n\r\nbounce\r\n" % t)
        m = self.server.find("demo", t)
        self.assertEqual(len(m), 1)
        self.assertTrue(m[0].from_line.startswith(b"From MAILER-DAEMON "),
                        m[0].from_line)

    def test_case_insensitive_user_and_domain(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            code, _ = d.send_mail("x@example.net", ["DEMO@TEST.LAN"],
                                  crlf("Subject: %s\n\ncase\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(len(self.server.find("demo", t)), 1)

    def test_postmaster_without_domain(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<x@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<postmaster>"), 250)
            self.assertEqual(d.code("RCPT TO:<Postmaster>"), 250)
            self.assertEqual(d.code("DATA"), 354)
            d.send(crlf("Subject: %s\n\npm\n" % t) + b".\r\n")
            self.assertEqual(d.reply()[0], 250)
        who = "demo" if "aliases" in harness.features() else "postmaster"
        self.assertEqual(len(self.server.find(who, t)), 1)

    def test_several_messages_one_session(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            for i in range(5):
                code, _ = d.send_mail("x@example.net", ["alice@test.lan"],
                                      crlf("Subject: %s #%d\n\nn%d\n" % (t, i, i)))
                self.assertEqual(code, 250)
        got = self.server.find("alice", t)
        self.assertEqual([m.body for m in got], [b"n%d\n" % i for i in range(5)])
        self.assertEqual(self.server.spool_tmp(), [])

    def test_rset_clears_transaction(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<x@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 250)
            self.assertEqual(d.code("RSET"), 250)
            # The transaction is gone: RCPT needs a MAIL again, DATA too.
            self.assertEqual(d.code("RCPT TO:<bob@test.lan>"), 503)
            self.assertEqual(d.code("DATA"), 503)
            code, _ = d.send_mail("y@example.net", ["bob@test.lan"],
                                  crlf("Subject: %s\n\nafter rset\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(self.server.find("alice", t), [])
        m = self.server.find("bob", t)
        self.assertEqual(len(m), 1)
        self.assertTrue(m[0].from_line.startswith(b"From y@example.net "))

    def test_pipelining_one_write(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            d.send("MAIL FROM:<p@example.net>\r\nRCPT TO:<alice@test.lan>\r\n"
                   "RCPT TO:<nobody@test.lan>\r\nRCPT TO:<bob@test.lan>\r\nDATA\r\n")
            codes = [r[0] for r in d.replies(5)]
            self.assertEqual(codes, [250, 250, 550, 250, 354])
            d.send(crlf("Subject: %s\n\npipelined\n" % t) + b".\r\nQUIT\r\n")
            self.assertEqual(d.reply()[0], 250)
            self.assertEqual(d.reply()[0], 221)
        for u in ("alice", "bob"):
            self.assertEqual(len(self.server.find(u, t)), 1, u)

    def test_pipelining_whole_transaction_one_write(self):
        t = token()
        with self.server.dialog() as d:
            d.send(b"EHLO c.test\r\nMAIL FROM:<p@example.net>\r\n"
                   b"RCPT TO:<demo@test.lan>\r\nDATA\r\n" +
                   crlf("Subject: %s\n\nall at once\n" % t) + b".\r\nQUIT\r\n")
            codes = [r[0] for r in d.replies(6)]
            self.assertEqual(codes, [250, 250, 250, 354, 250, 221])
            self.assertEqual(d.read_until_closed(), b"")
        m = self.server.find("demo", t)
        self.assertEqual(len(m), 1)
        self.assertEqual(m[0].body, b"all at once\n")

    # --- SMTPUTF8 ---------------------------------------------------------

    @need_feature("smtputf8")
    def test_smtputf8_sender_accepted(self):
        t = token()
        sender = "j\u00f6rg@b\u00fccher.example"
        with self.server.dialog() as d:
            d.ehlo()
            code, _ = d.send_mail(sender, ["demo@test.lan"],
                                  crlf("Subject: %s\n\nutf8 \u00e9t\u00e9\n" % t),
                                  " SMTPUTF8")
            self.assertEqual(code, 250)
        m = self.server.find("demo", t)
        self.assertEqual(len(m), 1)
        self.assertEqual(m[0].sender, sender)
        self.assertIn("UTF8SMTP", m[0].headers("Received")[0])
        self.assertIn("utf8 \u00e9t\u00e9".encode(), m[0].body)

    @need_feature("smtputf8")
    def test_smtputf8_needed_for_utf8_addresses(self):
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.cmd("MAIL FROM:<j\u00f6rg@example.net>")
            self.assertEqual(code, 553, lines)
            self.assertIn("5.6.7", lines[0])
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            code, lines = d.cmd("RCPT TO:<d\u00e9mo@test.lan>")
            self.assertEqual(code, 553, lines)
            # The session is fine afterwards.
            self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 250)
            self.assertEqual(d.code("RSET"), 250)

    def test_invalid_utf8_address_refused(self):
        with self.server.dialog() as d:
            d.ehlo()
            code = d.code(b"MAIL FROM:<a\xff\xfe@example.net> SMTPUTF8")
            self.assertGreaterEqual(code, 500)
            self.assertEqual(d.code("NOOP"), 250)

    # --- 8BITMIME and parameters ----------------------------------------

    def test_8bit_body_intact(self):
        t = token()
        payload = bytes(range(0x80, 0x100)) + b" \xc3\xa9t\xc3\xa9 \xff\xfe"
        body = crlf(b"Subject: " + t.encode() + b"\nContent-Type: text/plain; "
                    b"charset=latin1\nContent-Transfer-Encoding: 8bit\n\n" +
                    payload + b"\n")
        code, _ = self.deliver(["demo@test.lan"], body, params=" BODY=8BITMIME")
        self.assertEqual(code, 250)
        m = self.server.find("demo", t)
        self.assertEqual(len(m), 1)
        self.assertEqual(m[0].body, payload + b"\n")

    def test_body_7bit_param_and_bad_body(self):
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net> BODY=7BIT"), 250)
            self.assertEqual(d.code("RSET"), 250)
            code = d.code("MAIL FROM:<a@example.net> BODY=BINARYMIME")
            self.assertTrue(500 <= code < 600, code)
            code = d.code("MAIL FROM:<a@example.net> FOO=BAR")
            self.assertTrue(500 <= code < 600, code)
            self.assertEqual(d.code("MAIL FROM:<a@example.net> SIZE=100"), 250)

    def test_size_param_over_limit(self):
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.cmd("MAIL FROM:<a@example.net> SIZE=%d" % (2 * 1024 * 1024))
            self.assertEqual(code, 552, lines)
            self.assertEqual(d.code("MAIL FROM:<a@example.net> SIZE=1000"), 250)
            code = d.code("MAIL FROM:<a@example.net> SIZE=99999999999999999999999")
            self.assertTrue(500 <= code < 600, code)

    def test_size_param_at_limit_ok(self):
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net> SIZE=%d" % (1024 * 1024)),
                             250)

    def test_message_over_max_size(self):
        t = token()
        big = ("X" * 998 + "\n") * 1100      # about 1.1 MB > 1M
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("a@example.net", ["demo@test.lan"],
                                      crlf("Subject: %s\n\n%s" % (t, big)))
            self.assertEqual(code, 552, lines)
            self.assertIn("5.3.4", lines[0])
            # The session goes on.
            t2 = token()
            code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                  crlf("Subject: %s\n\nsmall\n" % t2))
            self.assertEqual(code, 250)
        self.assertEqual(self.server.find("demo", t), [])
        self.assertEqual(self.server.anywhere(t), [])
        self.assertEqual(len(self.server.find("demo", t2)), 1)
        self.assertEqual(self.server.spool_tmp(), [])

    def test_message_just_under_max_size(self):
        t = token()
        head = "Subject: %s\n\n" % t
        # Count what the server counts: the message as received, headers
        # included, with CRLF; keep a margin for its Received: header.
        body = ("Y" * 99 + "\n") * ((1024 * 1024 - 4096) // 100)
        code, _ = self.deliver(["bob@test.lan"], crlf(head + body))
        self.assertEqual(code, 250)
        m = self.server.find("bob", t)
        self.assertEqual(len(m), 1)
        self.assertEqual(m[0].body, body.encode())

    # --- real clients ------------------------------------------------------

    @need_tool("curl")
    def test_curl(self):
        t = token()
        msgfile = self.server.path("curl-%s.eml" % t)
        with open(msgfile, "wb") as f:
            f.write(crlf("From: c@example.net\nTo: alice@test.lan\nSubject: %s\n\n"
                         "sent by curl\n.leading dot\n" % t))
        r = subprocess.run(["curl", "-sS", "--max-time", str(int(20 * SLOW)),
                            "smtp://127.0.0.1:%d/client.test" % self.server.port,
                            "--mail-from", "c@example.net",
                            "--mail-rcpt", "alice@test.lan",
                            "--mail-rcpt", "bob@test.lan",
                            "-T", msgfile],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        for u in ("alice", "bob"):
            m = self.server.find(u, t)
            self.assertEqual(len(m), 1, u)
            self.assertEqual(m[0].body, b"sent by curl\n.leading dot\n")
            self.assertTrue(m[0].from_line.startswith(b"From c@example.net "))

    @need_tool("curl")
    def test_curl_unknown_rcpt_fails(self):
        msgfile = self.server.path("curl-bad.eml")
        with open(msgfile, "wb") as f:
            f.write(b"Subject: x\r\n\r\nx\r\n")
        r = subprocess.run(["curl", "-sS", "--max-time", str(int(20 * SLOW)),
                            "smtp://127.0.0.1:%d" % self.server.port,
                            "--mail-from", "c@example.net",
                            "--mail-rcpt", "nobody@test.lan", "-T", msgfile],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertNotEqual(r.returncode, 0)

    @need_tool("swaks")
    def test_swaks_pipeline(self):
        t = token()
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.server.port,
                            "--helo", "swaks.test",
                            "--from", "s@example.net",
                            "--to", "carol@test.lan,demo@example.org",
                            "--header", "Subject: %s" % t,
                            "--body", "swaks body %s\n..dots\n" % t,
                            "--pipeline", "--timeout", str(int(20 * SLOW))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=40 * SLOW)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("PIPELINING", out)
        for u in ("carol", "demo"):
            m = self.server.find(u, t)
            self.assertEqual(len(m), 1, u)
            self.assertIn(("swaks body %s\n..dots\n" % t).encode(), m[0].body)
            self.assertEqual(m[0].headers("Subject"), [t])

    @need_tool("swaks")
    def test_swaks_8bit_body(self):
        t = token()
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.server.port,
                            "--from", "s@example.net", "--to", "bob@test.lan",
                            "--header", "Subject: %s" % t,
                            "--body", "caf\u00e9 8bit",
                            "--timeout", str(int(20 * SLOW))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=40 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout)
        m = self.server.find("bob", t)
        self.assertEqual(len(m), 1)
        self.assertIn("caf\u00e9 8bit".encode(), m[0].body)


if __name__ == "__main__":
    import unittest
    unittest.main()
