"""The work budget between pipelined commands: a session's turn in a loop
pass ends after a command that did durable I/O (an fsync), and the
commands it pipelined after that wait for the next pass. Proved by a
count, never by time: `postie status` reports the most fsyncs the daemon
made in one loop pass since it started ("loop: ... most fsyncs in one
pass N"). Each test starts its own daemon, has one client pipeline many
commands that each fsync in one write (IMAP APPENDs with LITERAL+,
COPYs, CREATE+DELETE; SMTP transactions to a mailbox and to the
queue), checks that every command was answered and did what it should
(framing intact: literals and DATA hold lines that look like commands),
and that no pass made more than FSYNCS_MAX fsyncs.
A server that runs all the buffered commands in one pass makes one
fsync per command in it (dozens: a connection reads 1 KiB a pass at
least)."""
import re
import subprocess
import unittest

import harness
import tlsutil
from test_imap import IMAPServer, Raw, have_imap

# One command's own fsyncs in a pass (an append, or the mailbox's
# directory the first time), with room for one more.
FSYNCS_MAX = 3
N = 40


class PipelineBudget(harness.TestCase):

    def start(self, relay=False):
        if not have_imap():
            raise unittest.SkipTest("imap not in this build")
        extra = "plaintext_auth_networks 127.0.0.1/32\n"
        if relay:
            # Remote mail is queued for a smarthost where nothing listens.
            extra += "relay_networks 127.0.0.0/8\nsmarthost 127.0.0.1:9 plain\n"
        self.srv = IMAPServer(users=tlsutil.default_users(), extra=extra).start()
        self.addCleanup(self.srv.cleanup)
        self.addCleanup(self.srv.stop)
        # The first login makes the user's folders (fsyncs of their own,
        # not pipelining's): done, the daemon starts again with the count
        # at 0.
        for user in ("alice", "bob"):
            self.srv.imap(user=user).logout()
        self.srv.stop()
        self.srv.start()
        self.assertEqual(self.most_fsyncs(), 0)
        return self.srv

    def most_fsyncs(self):
        r = subprocess.run(harness.command("status", "-c", "postie.conf"),
                           cwd=self.srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60 * harness.SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(rb"most fsyncs in one pass (\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        return int(m.group(1))

    def smtp_batch(self, rcpt, word):
        """N transactions to rcpt in one write (DATA holds a line that
        reads like a command); the number of answers that say word."""
        one = ("MAIL FROM:<a@example.net>\r\nRCPT TO:<%s>\r\nDATA\r\n"
               "Subject: p\r\n\r\nMAIL FROM:<x@y.example>\r\nline %%d\r\n.\r\n"
               % rcpt)
        n = 0
        with self.srv.dialog() as d:
            d.ehlo()
            d.send("".join(one % k for k in range(N)) + "QUIT\r\n")
            for _ in range(N * 4 + 1):
                code, lines = d.reply()
                if code == 221:
                    break
                self.assertIn(code, (250, 354), lines)
                n += any(word in ln for ln in lines)
        return n

    def imap_raw(self):
        a = Raw(self.srv.imap_port)
        self.addCleanup(a.close)
        a.login()
        return a

    def test_pipelined_appends_one_per_pass(self):
        if "imap:literal+" not in harness.features():
            raise unittest.SkipTest("LITERAL+ not in this build")
        self.start()
        a = self.imap_raw()
        self.assertTrue(a.cmd("c", "CREATE Piped")[-1].startswith("c OK"))
        # Each message holds a line that reads like a command: a literal
        # cut at a pass's end must stay a literal.
        msgs = [("Subject: piped %d\r\n\r\nz%d LOGOUT\r\nbody %d\r\n" % (k, k, k)).encode()
                for k in range(N)]
        a.send(b"".join(b"p%d APPEND Piped {%d+}\r\n%s\r\n" % (k, len(m), m)
                        for k, m in enumerate(msgs)))
        for k in range(N):
            out = a.until("p%d" % k)
            self.assertTrue(out[-1].startswith("p%d OK" % k), out)
        out = a.cmd("s", "SELECT Piped")
        self.assertIn("* %d EXISTS" % N, out)
        out = a.cmd("f", "FETCH %d BODY.PEEK[TEXT]" % N)
        self.assertIn("z%d LOGOUT" % (N - 1), "\n".join(out))
        self.assertLessEqual(self.most_fsyncs(), FSYNCS_MAX)

    def test_pipelined_copies_one_per_pass(self):
        self.start()
        with self.srv.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("a@example.net", ["alice@test.lan"],
                                      "Subject: to copy\r\n\r\nbody\r\n")
        self.assertEqual(code, 250, lines)
        a = self.imap_raw()
        self.assertTrue(a.cmd("c", "CREATE Copies")[-1].startswith("c OK"))
        self.assertTrue(a.cmd("s", "SELECT INBOX")[-1].startswith("s OK"))
        a.send("".join("k%d COPY 1 Copies\r\n" % k for k in range(N)))
        for k in range(N):
            out = a.until("k%d" % k)
            self.assertTrue(out[-1].startswith("k%d OK" % k), out)
        out = a.cmd("t", "STATUS Copies (MESSAGES)")
        self.assertIn("(MESSAGES %d)" % N, "\n".join(out))
        self.assertLessEqual(self.most_fsyncs(), FSYNCS_MAX)

    def test_pipelined_creates_one_per_pass(self):
        # CREATE and DELETE sync the folder's directory inside the command.
        self.start()
        a = self.imap_raw()
        a.send("".join("c%d CREATE Box%d\r\nd%d DELETE Box%d\r\n" % (k, k, k, k)
                       for k in range(N)) + "e CREATE Kept\r\n")
        for k in range(N):
            for t in ("c%d" % k, "d%d" % k):
                out = a.until(t)
                self.assertTrue(out[-1].startswith(t + " OK"), out)
        self.assertTrue(a.until("e")[-1].startswith("e OK"))
        out = "\n".join(a.cmd("l", 'LIST "" "*"'))
        self.assertIn("Kept", out)
        self.assertNotIn("Box", out)
        self.assertLessEqual(self.most_fsyncs(), FSYNCS_MAX)

    def test_pipelined_relay_one_per_pass(self):
        # Mail to a remote address is queued: a spool file and its
        # directory synced inside the command that ends DATA.
        if "relay" not in harness.features():
            raise unittest.SkipTest("relay not in this build")
        self.start(relay=True)
        self.assertEqual(self.smtp_batch("far@remote.example", "queued"), N)
        self.assertLessEqual(self.most_fsyncs(), FSYNCS_MAX)

    def test_pipelined_smtp_one_per_pass(self):
        self.start()
        self.assertEqual(self.smtp_batch("bob@test.lan", "delivered"), N)
        msgs = harness.split_mbox(self.srv.mbox_bytes("bob"))
        self.assertEqual(len(msgs), N)
        self.assertIn(b"line %d" % (N - 1), msgs[-1].raw)
        self.assertLessEqual(self.most_fsyncs(), FSYNCS_MAX)


if __name__ == "__main__":
    unittest.main()
