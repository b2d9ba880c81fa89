"""Mailboxes that another program changed: an mbox left not ending in a
line end (a foreign append, a cut file) gets the missing line ends
before the next delivery, APPEND or COPY, so the new message stays a
message of its own; the UID and flags of the unterminated message are
kept when it is indexed before and after."""
import os
import re
import shutil

import harness
from harness import crlf, token
from test_imap import ImapBase

FOREIGN = (b"From foreign@example.org Sat Dec  5 10:00:00 2026\n"
           b"Message-ID: <foreign@x>\nSubject: foreign\n\nno newline at end")


class ImapExternal(ImapBase):

    def foreign_append(self, path, data=FOREIGN):
        """What another program does: a plain write at the end."""
        with open(path, "ab") as f:
            f.write(data)

    def foreign_rewrite(self, path, line):
        """What mutt does marking a message read: a new file with a
        Status: line after `line`, renamed over the mbox."""
        with open(path, "rb") as f:
            data = f.read().replace(line, line + b"Status: RO\n", 1)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)

    def ids(self, m, folder="INBOX"):
        typ, data = m.select(folder)
        self.assertEqual(typ, "OK", data)
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (Message-ID)] "
                            "BODY.PEEK[TEXT])")
        self.assertEqual(typ, "OK", data)
        parts = [p for p in data if isinstance(p, tuple)]
        out = []
        for i in range(0, len(parts), 2):
            hdr, text = parts[i][1], parts[i + 1][1]
            mid = re.search(rb"<([^>]+)>", hdr).group(1).decode()
            out.append((mid, text))
        return out

    def uidvalidity(self, m, folder="INBOX"):
        typ, data = m.status(folder, "(UIDVALIDITY)")
        self.assertEqual(typ, "OK", data)
        return re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)

    def test_delivery_after_unterminated_mbox(self):
        t = token("first")
        code, _ = self.deliver(["alice@test.lan"],
                               crlf("Message-ID: <%s@x>\nSubject: first\n\nbody\n" % t))
        self.assertEqual(code, 250)
        self.foreign_append(self.server.path("mail", "alice"))
        t2 = token("second")
        code, _ = self.deliver(["alice@test.lan"],
                               crlf("Message-ID: <%s@x>\nSubject: second\n\nbody 2\n" % t2))
        self.assertEqual(code, 250)
        self.assertIn(b"\nno newline at end\n\nFrom ", self.server.mbox("alice"))
        m = self.server.imap()
        try:
            got = self.ids(m)
        finally:
            m.logout()
        self.assertEqual([i for i, _ in got], [t + "@x", "foreign@x", t2 + "@x"])
        self.assertEqual(got[1][1], b"no newline at end\r\n")
        self.assertEqual(got[2][1], b"body 2\r\n")

    def test_uid_and_flags_kept_across_termination(self):
        """The unterminated message is indexed (and flagged) before the
        delivery adds its line end: same UIDVALIDITY, UID, flags, size."""
        code, _ = self.deliver(["alice@test.lan"],
                               crlf("Message-ID: <one@x>\nSubject: one\n\nbody\n"))
        self.assertEqual(code, 250)
        self.foreign_append(self.server.path("mail", "alice"))
        m = self.server.imap()
        try:
            m.select("INBOX")
            typ, data = m.store("2", "+FLAGS", "(\\Flagged)")
            self.assertEqual(typ, "OK", data)
            typ, before = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
            self.assertEqual(typ, "OK", before)
            uv = self.uidvalidity(m)
            code, _ = self.deliver(["alice@test.lan"],
                                   crlf("Message-ID: <three@x>\nSubject: three\n\nb3\n"))
            self.assertEqual(code, 250)
            typ, _ = m.noop()
            self.assertEqual(typ, "OK")
            typ, after = m.fetch("1:2", "(UID FLAGS RFC822.SIZE)")
            self.assertEqual(typ, "OK", after)
            self.assertEqual([re.sub(rb" \\Recent|\\Recent ?", b"", x) for x in after],
                             [re.sub(rb" \\Recent|\\Recent ?", b"", x) for x in before])
            self.assertIn(b"\\Flagged", after[1])
        finally:
            m.logout()
        n = self.server.imap()
        try:
            self.assertEqual(self.uidvalidity(n), uv)
            self.assertEqual([i for i, _ in self.ids(n)], ["one@x", "foreign@x", "three@x"])
        finally:
            n.logout()

    def test_append_and_copy_after_unterminated_mbox(self):
        m = self.server.imap()
        try:
            typ, data = m.create("Box")
            self.assertEqual(typ, "OK", data)
            self.foreign_append(self.server.path("mail", "alice"))
            self.foreign_append(self.server.path("mail", ".postie", "folders", "alice", "Box"))
            typ, data = m.append("INBOX", None, None,
                                 b"Message-ID: <app@x>\r\nSubject: a\r\n\r\nappended\r\n")
            self.assertEqual(typ, "OK", data)
            m.select("INBOX")
            typ, data = m.copy("1:2", "Box")
            self.assertEqual(typ, "OK", data)
            self.assertEqual([i for i, _ in self.ids(m)], ["foreign@x", "app@x"])
            got = self.ids(m, "Box")
            self.assertEqual([i for i, _ in got], ["foreign@x", "foreign@x", "app@x"])
            self.assertEqual(got[1][1], b"no newline at end\r\n")
        finally:
            m.logout()
        # One line end already there: one more makes the blank line.
        self.foreign_append(self.server.path("mail", "alice"),
                            b"From f@x Sat Dec  5 10:00:00 2026\nMessage-ID: <f2@x>\n\nx\n")
        code, _ = self.deliver(["alice@test.lan"],
                               crlf("Message-ID: <d@x>\nSubject: d\n\nbody d\n"))
        self.assertEqual(code, 250)
        self.assertIn(b"\n\nx\n\nFrom ", self.server.mbox("alice"))
        self.assertFalse(self.server.mbox("alice").endswith(b"\n\n\n"))
        n = self.server.imap()
        try:
            self.assertEqual([i for i, _ in self.ids(n)],
                             ["foreign@x", "app@x", "f2@x", "d@x"])
        finally:
            n.logout()

    def test_rewrite_with_new_uidvalidity_says_bye(self):
        """Another program rewrote the mbox so that the index cannot keep
        its UIDs: the selected session gets a BYE with the reason before
        it is closed, on its next command."""
        for i in range(3):
            code, _ = self.deliver(["alice@test.lan"],
                                   crlf("Message-ID: <r%d@x>\nSubject: r%d\n\nbody %d\n"
                                        % (i, i, i)))
            self.assertEqual(code, 250)
        r = self.raw()
        try:
            r.login()
            out = r.cmd("S", "SELECT INBOX")
            self.assertTrue(out[-1].startswith("S OK"), out)
            out = r.cmd("F", "STORE 1 +FLAGS (\\Flagged $label1)")
            self.assertTrue(out[-1].startswith("F OK"), out)
            path = self.server.path("mail", "alice")
            lock = path + ".lock"
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            self.foreign_rewrite(path, b"Subject: r1\n")
            os.unlink(lock)
            r.send("N NOOP\r\n")
            lines = []
            try:
                for _ in range(50):
                    lines.append(r.line())
                    if lines[-1].startswith("N "):
                        break
            except Exception:
                pass
            self.assertTrue(any(x.startswith("* BYE ") for x in lines), lines)
        finally:
            r.close()
        # The new UIDVALIDITY keeps the flags of the messages before the
        # change (same offset and length) and takes the rest from the
        # headers: message 2 is \Seen as mutt wrote.
        m = self.server.imap()
        try:
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK", data)
            typ, data = m.fetch("1:3", "(FLAGS)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"\\Flagged", data[0])
            self.assertIn(b"$label1", data[0])
            self.assertIn(b"\\Seen", data[1])
            self.assertNotIn(b"\\Seen", data[2])
        finally:
            m.logout()

    def idle_lines(self, r, want, limit=120):
        """Untagged lines in IDLE up to one starting with want (or the
        close); the bound is for a busy machine, not a timing claim."""
        lines = []
        try:
            for _ in range(50):
                lines.append(r.line(timeout=limit))
                if lines[-1].startswith(want):
                    break
        except Exception as e:  # closed, or nothing within the bound
            lines.append("(%s)" % type(e).__name__)
        return lines

    @harness.need_feature("imap:idle")
    def test_idle_sees_foreign_append_and_rewrite(self):
        """A session in IDLE is told of another program's changes to the
        mbox without a command and without a delivery by postie: an
        append comes as EXISTS, a rewrite (new file renamed over the
        mbox, as mutt does) that loses the UIDs as BYE."""
        for i in range(2):
            code, _ = self.deliver(["alice@test.lan"],
                                   crlf("Message-ID: <i%d@x>\nSubject: i%d\n\nbody %d\n"
                                        % (i, i, i)))
            self.assertEqual(code, 250)
        path = self.server.path("mail", "alice")
        r = self.raw()
        try:
            r.login()
            out = r.cmd("S", "SELECT INBOX")
            self.assertTrue(out[-1].startswith("S OK"), out)
            r.send("I IDLE\r\n")
            self.assertTrue(r.line().startswith("+"))
            self.foreign_append(path, FOREIGN + b"\n")
            lines = self.idle_lines(r, "* 3 EXISTS")
            self.assertEqual(lines[-1], "* 3 EXISTS", lines)
            self.foreign_rewrite(path, b"Subject: i0\n")
            lines = self.idle_lines(r, "* BYE ")
            self.assertIn("* BYE The mailbox was replaced by another program",
                          lines)
        finally:
            r.close()

    def test_real_mutt_marks_one_read(self):
        """mutt (the real one) reads message 2 and rewrites the mbox in
        place from it on (Status:, Content-Length:, Lines:): message 1
        keeps its IMAP flags and keyword, message 2 is \\Seen, all three
        are there in order."""
        if not shutil.which("mutt"):
            raise AssertionError("mutt not installed (Debian package mutt; "
                                 "tests/install-deps.sh check installs it)")
        from test_imap_clients import mutt_on_mbox
        for i in range(3):
            code, _ = self.deliver(["alice@test.lan"],
                                   crlf("Message-ID: <m%d@x>\nSubject: mutt%d\n\nbody %d\n"
                                        % (i, i, i)))
            self.assertEqual(code, 250)
        m = self.server.imap()
        try:
            m.select("INBOX")
            typ, data = m.store("1", "+FLAGS", "(\\Flagged $label1)")
            self.assertEqual(typ, "OK", data)
        finally:
            m.logout()
        p = mutt_on_mbox(self, "alice", 3)
        p.send("2\r")
        p.settle()
        p.send("\r")                   # read message 2
        p.expect("body 1")
        p.send("q")
        p.settle()
        p.send("q")                     # mutt writes Status: RO
        self.assertEqual(p.wait(), 0, p.screen[-1500:])
        self.assertIn(b"Subject: mutt1\nStatus: RO\n", self.server.mbox("alice"))
        n = self.server.imap()
        try:
            self.assertEqual([i for i, _ in self.ids(n)], ["m0@x", "m1@x", "m2@x"])
            typ, data = n.fetch("1:3", "(FLAGS)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"\\Flagged", data[0])
            self.assertIn(b"$label1", data[0])
            self.assertIn(b"\\Seen", data[1])
            self.assertNotIn(b"\\Seen", data[2])
        finally:
            n.logout()


if __name__ == "__main__":
    import unittest
    unittest.main()
