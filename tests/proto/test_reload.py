"""SIGHUP reloads configuration, users and aliases without dropping
sessions; a broken configuration on reload keeps the old one."""
import signal
import socket
import unittest

import harness
from harness import crlf, need_feature, token


class Reload(harness.TestCase):
    """A fresh server per test: each one rewrites its files."""

    def setUp(self):
        super().setUp()
        aliases = "postmaster: demo\n" if "aliases" in harness.features() else None
        self.srv = harness.Server(users=("demo", "alice"), aliases=aliases).start()

    def tearDown(self):
        rc = self.srv.stop()
        log = self.srv.log()
        report = self.srv.sanitizer_report()
        self.srv.cleanup()
        super().tearDown()
        self.assertEqual(rc, 0, log[-1500:])
        self.assertIsNone(report)

    def rcpt_code(self, addr):
        with self.srv.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            return d.code("RCPT TO:<%s>" % addr)

    def test_new_user_after_sighup(self):
        self.assertEqual(self.rcpt_code("newbie@test.lan"), 550)
        self.srv.write("users", "demo:\nalice:\nnewbie:\n")
        self.assertTrue(self.srv.reload())
        self.assertEqual(self.rcpt_code("newbie@test.lan"), 250)
        t = token()
        with self.srv.dialog() as d:
            d.ehlo()
            code, _ = d.send_mail("a@example.net", ["newbie@test.lan"],
                                  crlf("Subject: %s\n\nwelcome\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(len(self.srv.find("newbie", t)), 1)

    def test_removed_user_after_sighup(self):
        self.assertEqual(self.rcpt_code("alice@test.lan"), 250)
        self.srv.write("users", "demo:\n")
        self.assertTrue(self.srv.reload())
        self.assertEqual(self.rcpt_code("alice@test.lan"), 550)
        self.assertEqual(self.rcpt_code("demo@test.lan"), 250)

    def test_open_sessions_survive(self):
        t = token()
        idle = self.srv.dialog()
        busy = self.srv.dialog()
        try:
            idle.ehlo()
            busy.ehlo()
            self.assertEqual(busy.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(busy.code("RCPT TO:<demo@test.lan>"), 250)
            self.assertEqual(busy.code("DATA"), 354)
            busy.send(crlf("Subject: %s\n\nfirst half\n" % t))
            self.srv.write("users", "demo:\nalice:\nlater:\n")
            self.assertTrue(self.srv.reload())
            busy.send(crlf("second half\n") + b".\r\n")
            self.assertEqual(busy.reply()[0], 250)
            # The idle session goes on, and sees the new users.
            self.assertEqual(idle.code("MAIL FROM:<b@example.net>"), 250)
            self.assertEqual(idle.code("RCPT TO:<later@test.lan>"), 250)
            self.assertEqual(idle.code("QUIT"), 221)
        finally:
            idle.close()
            busy.close()
        m = self.srv.find("demo", t)
        self.assertEqual(len(m), 1)
        self.assertEqual(m[0].body, b"first half\nsecond half\n")

    def test_transaction_spanning_reload(self):
        t = token()
        with self.srv.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 250)
            self.srv.write("users", "demo:\nalice:\nzed:\n")
            self.assertTrue(self.srv.reload())
            self.assertEqual(d.code("RCPT TO:<zed@test.lan>"), 250)
            self.assertEqual(d.code("DATA"), 354)
            d.send(crlf("Subject: %s\n\nx\n" % t) + b".\r\n")
            self.assertEqual(d.reply()[0], 250)
        self.assertEqual(len(self.srv.find("alice", t)), 1)
        self.assertEqual(len(self.srv.find("zed", t)), 1)

    def test_recipient_removed_before_end_of_data(self):
        # alice is accepted by RCPT, then removed by a reload before the
        # end of DATA. A 250 now would be a lie: the message would be in
        # no mailbox. Any answer but 250 is fine; 250 needs a stored copy.
        t = token()
        with self.srv.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 250)
            self.assertEqual(d.code("DATA"), 354)
            self.srv.write("users", "demo:\n")
            self.assertTrue(self.srv.reload())
            d.send(crlf("Subject: %s\n\nwhere does this go?\n" % t) + b".\r\n")
            code, lines = d.reply()
        stored = self.srv.anywhere(t)
        if code == 250:
            self.assertNotEqual(stored, [], "250 %r but the message is stored "
                                "nowhere: accepted mail lost" % lines)
        else:
            self.assertEqual(stored, [])

    def test_broken_config_keeps_old(self):
        conf = self.srv.config(self.srv.port)
        self.srv.write("users", "demo:\nalice:\nnewbie:\n")
        self.srv.write("postie.conf", conf + "bogus_directive 1\n")
        self.assertFalse(self.srv.reload())
        self.assertIn("postie.conf:", self.srv.log())
        self.assertTrue(self.srv.running())
        # Old tables stay: the user added with the broken config is unknown.
        self.assertEqual(self.rcpt_code("newbie@test.lan"), 550)
        self.assertEqual(self.rcpt_code("demo@test.lan"), 250)
        # Fixed: the next reload takes it.
        self.srv.write("postie.conf", conf)
        self.assertTrue(self.srv.reload())
        self.assertEqual(self.rcpt_code("newbie@test.lan"), 250)

    def test_broken_users_file_keeps_old(self):
        self.srv.write("users", "demo:\nBad Name:\n")
        self.assertFalse(self.srv.reload())
        self.assertEqual(self.rcpt_code("alice@test.lan"), 250)

    def test_missing_users_file_keeps_old(self):
        import os
        os.unlink(self.srv.path("users"))
        self.assertFalse(self.srv.reload())
        self.assertEqual(self.rcpt_code("alice@test.lan"), 250)

    def test_size_limit_reloaded(self):
        conf = self.srv.config(self.srv.port)
        self.srv.write("postie.conf", conf.replace("max_message_size 1M",
                                                   "max_message_size 2K"))
        self.assertTrue(self.srv.reload())
        with self.srv.dialog() as d:
            lines = d.ehlo()
            self.assertIn("250-SIZE 2048", lines)
            code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                  crlf("Subject: big\n\n" + "x" * 3000 + "\n"))
            self.assertEqual(code, 552)

    def test_many_reloads(self):
        for i in range(20):
            self.srv.write("users", "demo:\nalice:\nu%d:\n" % i)
            self.assertTrue(self.srv.reload())
        self.assertEqual(self.rcpt_code("u19@test.lan"), 250)
        self.assertEqual(self.rcpt_code("u18@test.lan"), 550)

    def test_hup_during_pipelined_burst(self):
        t = token()
        with self.srv.dialog() as d:
            d.ehlo()
            self.srv.signal(signal.SIGHUP)
            d.send(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<demo@test.lan>\r\nDATA\r\n")
            self.assertEqual([r[0] for r in d.replies(3)], [250, 250, 354])
            d.send(crlf("Subject: %s\n\nx\n" % t) + b".\r\n")
            self.assertEqual(d.reply()[0], 250)
        self.assertEqual(len(self.srv.find("demo", t)), 1)

    def test_raised_connection_limit_takes_waiting_clients(self):
        conf = self.srv.config(self.srv.port)
        self.srv.write("postie.conf", conf.replace("max_connections 64",
                                                   "max_connections 1"))
        self.assertTrue(self.srv.reload())
        first = self.srv.dialog()
        waiting = socket.create_connection(("127.0.0.1", self.srv.port),
                                           timeout=10 * harness.SLOW)
        try:
            waiting.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                waiting.recv(100)
            # Raise the limit: the waiting client is greeted without the
            # first one having to leave.
            self.srv.write("postie.conf", conf)
            self.assertTrue(self.srv.reload())
            waiting.settimeout(5 * harness.SLOW)
            try:
                data = waiting.recv(100)
            except socket.timeout:
                data = b"(nothing within 5 s)"
            self.assertTrue(data.startswith(b"220 "), data)
            self.assertEqual(first.code("NOOP"), 250)
        finally:
            first.close()
            waiting.close()

    @need_feature("aliases")
    def test_aliases_reloaded(self):
        self.assertEqual(self.rcpt_code("helpdesk@test.lan"), 550)
        self.srv.write("aliases", "postmaster: demo\nhelpdesk: alice, demo\n")
        self.assertTrue(self.srv.reload())
        t = token()
        with self.srv.dialog() as d:
            d.ehlo()
            code, _ = d.send_mail("a@example.net", ["helpdesk@test.lan"],
                                  crlf("Subject: %s\n\nx\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(len(self.srv.find("alice", t)), 1)
        self.assertEqual(len(self.srv.find("demo", t)), 1)

    @need_feature("aliases")
    def test_broken_aliases_keep_old(self):
        self.srv.write("aliases", "postmaster: demo\nbad: |/bin/sh\n")
        self.assertFalse(self.srv.reload())
        self.assertIn("aliases:2:", self.srv.log())
        self.assertEqual(self.rcpt_code("postmaster@test.lan"), 250)


if __name__ == "__main__":
    unittest.main()
