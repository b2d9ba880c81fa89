"""The work budget: a long IMAP command (SEARCH, FETCH, COPY, EXPUNGE) on
big messages advances a bounded amount of mail per loop pass, so other
sessions are served in between. Proved by order, never by time: the
command is pipelined behind a NOOP on the same connection, so once that
NOOP's answer is in, the command has begun; then an SMTP NOOP and an IMAP
NOOP on other connections must be answered while the command's own tagged
answer is still missing. A server that does the whole command in one pass
sends the tagged answer before it reads the other NOOPs. The fixture is
delivered through the daemon (SMTP, max_message_size raised)."""
import select
import time
import unittest

import harness
from test_imap import ImapBase

BIG = 5 * 1024 * 1024
MARK = "the-end-marker-q7"


def big_text(n, tag, tail=""):
    line = "%s line of plain text to search through, nothing to find here\n" % tag
    body = line * (n // len(line))
    return ("From: a@example.net\nTo: alice@test.lan\nSubject: big %s\n"
            "Date: Sat, 3 Jan 2026 01:05:34 +0000\n\n%s%s\n" % (tag, body, tail))


class Budget(ImapBase):

    server_kw = {"max_size": "16M"}

    def setUp(self):
        super().setUp()
        self.smtp_deliver("alice@test.lan", big_text(BIG, "one"))
        self.smtp_deliver("alice@test.lan", big_text(BIG, "two", MARK + "\n"))

    def wait_for(self, a, marker):
        """Reads a's bytes until `marker` is among them (lines may be
        incomplete: "* SEARCH" goes out before the numbers)."""
        deadline = time.monotonic() + harness.IO_TIMEOUT * 4
        while marker not in a.buf:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "no %r: %r" % (marker, a.buf[-200:]))
            a.sock.settimeout(left)
            chunk = a.sock.recv(65536)
            self.assertTrue(chunk, "closed")
            a.buf += chunk

    def served_meanwhile(self, a, tag, command, started, other_imap, smtp):
        """Runs `command` on a; once a's answer shows that it began
        (`started`, or the answer to a NOOP pipelined before it when
        None), NOOPs on an SMTP and another IMAP connection. Returns
        (whether those were answered before the command's tagged answer,
        the lines of that answer)."""
        if started is None:
            a.send("n%s NOOP\r\n%s %s\r\n" % (tag, tag, command))
            out = a.until("n" + tag)
            self.assertTrue(out[-1].startswith("n%s OK" % tag), out)
        else:
            a.send("%s %s\r\n" % (tag, command))
            self.wait_for(a, started.encode())
        self.assertEqual(smtp.code("NOOP"), 250)
        got = other_imap.cmd("o" + tag, "NOOP")
        self.assertTrue(got[-1].startswith("o%s OK" % tag), got)
        # What a has received by now, without waiting: its tagged answer
        # must not be among it.
        while select.select([a.sock], [], [], 0)[0]:
            chunk = a.sock.recv(65536)
            if not chunk:
                break
            a.buf += chunk
        interleaved = ("\r\n%s " % tag).encode() not in b"\r\n" + a.buf
        return interleaved, a.until(tag, timeout=harness.IO_TIMEOUT * 4)

    def check_interleaved(self, commands, started=None):
        """Tries each command (growing work) until one shows interleaving:
        a loaded machine may finish a small one before we look."""
        a, b = self.raw(), self.raw()
        try:
            a.login()
            b.login()
            self.assertTrue(a.cmd("S", "SELECT INBOX")[-1].startswith("S OK"))
            with self.server.dialog() as smtp:
                smtp.ehlo()
                results = []
                for i, command in enumerate(commands):
                    ok, lines = self.served_meanwhile(a, "c%d" % i, command,
                                                      started, b, smtp)
                    self.assertTrue(lines[-1].startswith("c%d OK" % i), lines[-3:])
                    results.append(lines)
                    if ok:
                        return results
                self.fail("no other session was answered while %r... ran"
                          % commands[-1][:60])
        finally:
            a.close()
            b.close()

    def test_search_body_interleaves(self):
        needles = ["zq%d" % k + "x" * 300 for k in range(6)]
        prog = " ".join("NOT BODY %s" % n for n in needles)
        res = self.check_interleaved([
            "SEARCH %s" % prog,
            "SEARCH %s %s" % (prog, prog),
            "UID SEARCH TEXT %s %s %s" % (MARK, prog, prog),
        ], started="* SEARCH")
        for lines in res:
            found = [ln for ln in lines if ln.startswith("* SEARCH")]
            self.assertEqual(len(found), 1, lines)
        # The right answers, also with the needle at the very end.
        a = self.raw()
        try:
            a.login()
            a.cmd("S", "SELECT INBOX")
            self.assertIn("* SEARCH 1 2", a.cmd("t1", "SEARCH %s" % prog))
            self.assertIn("* SEARCH 2", a.cmd("t2", "SEARCH BODY %s %s" % (MARK, prog)))
            self.assertIn("* SEARCH 1", a.cmd("t3", "SEARCH NOT BODY %s" % MARK))
            self.assertIn("* SEARCH", a.cmd("t4", "SEARCH BODY %s" % needles[0]))
        finally:
            a.close()

    def test_copy_and_expunge_interleave(self):
        a = self.raw()
        try:
            a.login()
            self.assertTrue(a.cmd("C", "CREATE Big")[-1].startswith("C OK"))
        finally:
            a.close()
        self.check_interleaved(["COPY 1:* Big", "COPY 1:* Big", "COPY 1:* Big"])
        a = self.raw()
        try:
            a.login()
            out = a.cmd("s", "STATUS Big (MESSAGES)")
            self.assertTrue(any("MESSAGES" in ln for ln in out), out)
            a.cmd("S", "SELECT INBOX")
            a.cmd("f", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        finally:
            a.close()
        self.check_interleaved(["EXPUNGE"])
        self.assertNotIn(b"big one", self.server.mbox("alice"))
        self.assertIn(MARK.encode(), self.server.mbox("alice"))

    def test_fetch_bodystructure_and_partial_interleave(self):
        self.check_interleaved([
            "FETCH 1:2 (BODYSTRUCTURE)",
            "FETCH 1:2 (BODY.PEEK[]<5000000.100> BODYSTRUCTURE)",
            "FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (X-None)] BODY.PEEK[TEXT]<5200000.10> BODYSTRUCTURE)",
        ], started="* 1 FETCH")


if __name__ == "__main__":
    unittest.main()
