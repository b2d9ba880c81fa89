"""IMAP and POP3 on the same mailbox at once: a POP3 session's deletions
(committed at QUIT) reach IMAP sessions, also those in IDLE."""
import poplib
import unittest

import harness
import tlsutil
from harness import IO_TIMEOUT
from test_imap import IMAPServer, ImapBase, have_imap
from test_imap_sessions import body
from tlsutil import PASSWORD


class ImapPop3Server(IMAPServer):
    """IMAPServer plus a pop3 listener."""

    def config(self, port):
        text = super().config(port)
        self.pop3_port = harness.free_port()
        return text + "listen pop3 127.0.0.1:%d\n" % self.pop3_port

    def pop(self, user="alice"):
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=IO_TIMEOUT)
        p.user(user)
        p.pass_(PASSWORD)
        return p


class ImapPop3(ImapBase):

    @classmethod
    def setUpClass(cls):
        super(harness.ServerTest, cls).setUpClass()
        if not have_imap() or "pop3" not in harness.features():
            raise unittest.SkipTest("imap or pop3 not in this build")
        cls.server = ImapPop3Server(tls=None, extra=cls.extra,
                                    users=tlsutil.default_users()).start()

    def fill(self, m, n):
        for i in range(n):
            typ, data = m.append("INBOX", None, None, body("p%d" % i))
            self.assertEqual(typ, "OK", data)

    @harness.need_feature("imap:idle")
    def test_idle_told_of_pop3_deletions(self):
        a = self.server.imap()
        r = self.raw()
        try:
            self.fill(a, 3)
            r.login()
            out = r.cmd("S", "SELECT INBOX")
            self.assertTrue(out[-1].startswith("S OK"), out)
            r.send("I IDLE\r\n")
            self.assertTrue(r.line().startswith("+"))
            p = self.server.pop()
            p.dele(2)
            self.assertTrue(p.quit().startswith(b"+OK"))
            # The IDLE session is told without a command of its own.
            self.assertEqual(r.line(), "* 2 EXPUNGE")
            r.send("DONE\r\n")
            out = r.until("I")
            self.assertTrue(out[-1].startswith("I OK"), out)
        finally:
            a.logout()
            r.close()


if __name__ == "__main__":
    unittest.main()
