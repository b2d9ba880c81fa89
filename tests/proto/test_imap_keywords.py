"""IMAP keywords ($Junk, $label1, ...): kept per message in the index,
PERMANENTFLAGS with \\*, FLAGS listing the mailbox's keywords, SEARCH
KEYWORD/UNKEYWORD, STORE +FLAGS NIL (the keyword NIL), APPEND/COPY/EXPUNGE keep them,
another session sees them, a cap with NO [LIMIT], and flag lists longer
than a session's output buffer."""
import os
import shutil
import unittest

import harness
from test_imap import ImapBase
from test_imap_sessions import body
from test_imap_sessions import uid_flags as flags_of

class ImapKeywords(ImapBase):

    def setUp(self):
        super().setUp()
        for u in ("alice", "bob"):
            try:
                os.unlink(self.server.path("mail", ".postie", u + ".kw"))
            except OSError:
                pass

    def fill(self, m, n, folder="INBOX"):
        for i in range(n):
            typ, data = m.append(folder, None, None, body("k%d" % i))
            self.assertEqual(typ, "OK", data)

    def uid_flags(self, m):
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        self.assertEqual(typ, "OK", data)
        return flags_of(data)

    def test_store_fetch_search_and_select(self):
        a = self.server.imap()
        try:
            self.fill(a, 3)
            typ, _ = a.select("INBOX")
            self.assertIn(b"\\*", a.response("PERMANENTFLAGS")[1][0])
            typ, data = a.store("1", "+FLAGS", "($Junk $label1)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"$Junk $label1", data[0])
            typ, data = a.store("2", "+FLAGS", "($NotJunk \\Seen)")
            self.assertEqual(typ, "OK", data)
            # case-insensitive: one keyword, first spelling kept
            typ, data = a.store("3", "+FLAGS", "($junk)")
            self.assertIn(b"$Junk", data[0])
            self.assertEqual(a.search(None, "KEYWORD", "$Junk")[1], [b"1 3"])
            self.assertEqual(a.search(None, "UNKEYWORD", "$junk")[1], [b"2"])
            self.assertEqual(a.search(None, "KEYWORD", "$Unknown")[1], [b""])
            self.assertEqual(a.search(None, "UNKEYWORD", "$Unknown")[1], [b"1 2 3"])
            typ, data = a.store("1", "-FLAGS", "($label1)")
            self.assertEqual(typ, "OK", data)
            a.logout()
            # a new session: kept in the index, listed in FLAGS
            a = self.server.imap()
            a.select("INBOX")
            fl = a.response("FLAGS")[1][0].decode()
            for k in ("$Junk", "$label1", "$NotJunk", "\\Seen"):
                self.assertIn(k, fl)
            got = self.uid_flags(a)
            self.assertEqual(got[1], {"$Junk"})
            self.assertEqual(got[2], {"$NotJunk", "\\Seen"})
            self.assertEqual(got[3], {"$Junk"})
            # replacing drops keywords too
            typ, data = a.store("3", "FLAGS", "(\\Flagged)")
            self.assertEqual(self.uid_flags(a)[3], {"\\Flagged"})
        finally:
            a.logout()

    def test_flags_before_a_new_keyword_is_shown(self):
        """RFC 3501 7.2.6: a keyword new to a session comes in "* FLAGS"
        before any FETCH shows it, whether this session's STORE made it
        or another session's (imaptest: "Keyword used without being in
        FLAGS")."""
        a = self.server.imap()
        r = self.raw()
        try:
            self.fill(a, 2)
            r.login()
            r.cmd("S", "SELECT INBOX")
            a.select("INBOX")
            out = r.cmd("A", "STORE 1 +FLAGS ($Mine)")
            self.assertTrue(out[-1].startswith("A OK"), out)
            fl = [i for i, l in enumerate(out) if l.startswith("* FLAGS")]
            fe = [i for i, l in enumerate(out) if "FETCH" in l]
            self.assertTrue(fl and fe and fl[0] < fe[0], out)
            self.assertIn("$Mine", out[fl[0]])
            # another session's: pushed at NOOP, or shown by FETCH
            for kw, cmd in (("$Theirs", "NOOP"), ("$Third", "FETCH 1:2 (FLAGS)")):
                typ, data = a.store("2", "+FLAGS", "(%s)" % kw)
                self.assertEqual(typ, "OK", data)
                out = r.cmd("B", cmd)
                fl = [i for i, l in enumerate(out)
                      if l.startswith("* FLAGS") and kw in l]
                fe = [i for i, l in enumerate(out) if kw in l and "FETCH" in l]
                self.assertTrue(fl and fe and fl[0] < fe[0], out)
        finally:
            a.logout()
            r.close()

    def test_nil_and_empty_lists(self):
        a = self.server.imap()
        r = self.raw()
        try:
            self.fill(a, 2)
            a.logout()
            a = None
            r.login()
            r.cmd("S", "SELECT INBOX")
            out = r.cmd("A", "STORE 1 +FLAGS ($Forwarded)")
            self.assertTrue(out[-1].startswith("A OK"), out)
            for cmd in ("STORE 1 +FLAGS NIL", "STORE 1 +FLAGS ()",
                        "STORE 1 -FLAGS ()", "STORE 1 +FLAGS.SILENT NIL"):
                out = r.cmd("B", cmd)
                self.assertTrue(out[-1].startswith("B OK"), (cmd, out))
            # a bare NIL is the keyword "NIL" (RFC 3501 grammar; Dovecot
            # and imaptest's "nil" test agree)
            out = r.cmd("C", "FETCH 1 (FLAGS)")
            self.assertIn("FLAGS (\\Recent $Forwarded NIL)", out[-2])
            out = r.cmd("D", "STORE 1 FLAGS NIL")
            self.assertTrue(out[-1].startswith("D OK"), out)
            out = r.cmd("E", "FETCH 1 (FLAGS)")
            self.assertIn("FLAGS (\\Recent NIL)", out[0])
            out = r.cmd("F", "STORE 1 FLAGS ()")
            out = r.cmd("G", "FETCH 1 (FLAGS)")
            self.assertIn("FLAGS (\\Recent)", out[0])
        finally:
            if a:
                a.logout()
            r.close()

    def test_append_copy_expunge_and_other_session(self):
        a, b = self.server.imap(), self.server.imap()
        try:
            typ, data = a.append("INBOX", "($MDNSent \\Seen $label2)", None, body("ap"))
            self.assertEqual(typ, "OK", data)
            self.fill(a, 2)
            a.select("INBOX")
            b.select("INBOX")
            self.assertEqual(self.uid_flags(a)[1], {"$MDNSent", "\\Seen", "$label2"})
            a.store("2", "+FLAGS", "(\\Deleted)")
            a.store("3", "+FLAGS", "($Important)")
            typ, _ = b.noop()
            # b is told of the new keyword (FLAGS) and the change (FETCH)
            self.assertIn(b"$Important", b.response("FLAGS")[1][-1])
            self.assertTrue(any(b"$Important" in (x or b"")
                                for x in b.response("FETCH")[1]))
            a.expunge()
            # b stores a keyword after a's expunge: kept
            typ, data = b.store("3", "+FLAGS", "($Phishing)")
            self.assertEqual(typ, "OK", data)
            got = self.uid_flags(a)
            self.assertEqual(got[1], {"$MDNSent", "\\Seen", "$label2"})
            self.assertEqual(got[3], {"$Important", "$Phishing"})
            a.create("Kept")
            typ, data = a.copy("1:2", "Kept")
            self.assertEqual(typ, "OK", data)
            c = self.server.imap()
            c.select("Kept")
            got = self.uid_flags(c)
            c.logout()
            self.assertEqual(got[1], {"$MDNSent", "\\Seen", "$label2"})
            self.assertEqual(got[2], {"$Important", "$Phishing"})
        finally:
            a.logout()
            b.logout()

    def test_cap_answers_limit(self):
        a = self.server.imap()
        try:
            self.fill(a, 1)
            a.select("INBOX")
            made = 0
            for i in range(70):
                typ, data = a.store("1", "+FLAGS", "(kw%d)" % i)
                if typ != "OK":
                    self.assertEqual(typ, "NO")
                    self.assertIn(b"[LIMIT]", data[0])
                    break
                made += 1
            self.assertTrue(1 <= made <= 64, made)
            self.assertEqual(typ, "NO")
            # the rest still works: known keywords and system flags
            typ, data = a.store("1", "-FLAGS", "(kw0 \\Seen)")
            self.assertEqual(typ, "OK", data)
            typ, data = a.store("1", "+FLAGS", "(kw0)")
            self.assertEqual(typ, "OK", data)
            a.close()
            a.select("INBOX")
            self.assertNotIn(b"\\*", a.response("PERMANENTFLAGS")[1][0])
            self.assertEqual(len(self.uid_flags(a)[1]), made)
        finally:
            a.logout()

    def test_refused_store_adds_no_keyword(self):
        # A STORE whose new keywords do not all fit is refused whole: none
        # of its names enters the mailbox's table, later ones still fit.
        a = self.server.imap()
        try:
            self.fill(a, 1)
            a.select("INBOX")
            typ, data = a.store("1", "+FLAGS",
                                "(%s)" % " ".join("n%d" % i for i in range(40)))
            self.assertEqual(typ, "NO")
            self.assertIn(b"[LIMIT]", data[0])
            typ, data = a.store("1", "+FLAGS", "($Forwarded)")
            self.assertEqual(typ, "OK", data)
            a.close()
            a.select("INBOX")
            self.assertNotIn(b"n0", a.response("FLAGS")[1][-1])
            self.assertEqual(self.uid_flags(a)[1], {"$Forwarded"})
        finally:
            a.logout()

    def test_full_target_table_refuses_copy_move_append(self):
        # COPY, MOVE and APPEND that would bring keywords a full target
        # table cannot take are refused (NO [LIMIT]) with nothing copied,
        # moved or appended, rather than the keywords dropped.
        a = self.server.imap()
        try:
            for box in ("KFull", "Src"):
                a.create(box)
            for i in range(32):
                typ, data = a.append("KFull", "(full%d)" % i, None, body("f%d" % i))
                self.assertEqual(typ, "OK", data)
            typ, data = a.append("Src", "(\\Flagged $Junk $label1)", None, body("src"))
            self.assertEqual(typ, "OK", data)
            typ, data = a.append("Src", "(full3)", None, body("known"))
            self.assertEqual(typ, "OK", data)
            a.select("Src")
            verbs = ("COPY", "MOVE") if "imap:move" in harness.features() else ("COPY",)
            for verb in verbs:
                typ, data = a._simple_command(verb, "1", "KFull")
                self.assertEqual(typ, "NO", verb)
                self.assertIn(b"[LIMIT]", data[-1], verb)
            typ, data = a.append("KFull", "(newkw)", None, body("new"))
            self.assertEqual(typ, "NO")
            self.assertIn(b"[LIMIT]", data[0])
            typ, data = a.status("KFull", "(MESSAGES)")
            self.assertIn(b"MESSAGES 32", data[0])
            self.assertEqual(self.uid_flags(a)[1], {"\\Flagged", "$Junk", "$label1"})
            # keywords the target knows go in
            typ, data = a.copy("2", "KFull")
            self.assertEqual(typ, "OK", data)
            a.select("KFull")
            self.assertEqual(self.uid_flags(a)[33], {"full3"})
        finally:
            a.logout()

    def test_long_flag_lists_do_not_overflow(self):
        a = self.server.imap()
        r = self.raw()
        try:
            self.fill(a, 3)
            a.select("INBOX")
            names = ["$Keyword_with_a_rather_long_name_%02d" % i for i in range(24)]
            typ, data = a.store("1:3", "+FLAGS", "(%s)" % " ".join(names))
            self.assertEqual(typ, "OK", data)
            r.login()
            out = r.cmd("S", "SELECT INBOX")
            self.assertTrue(out[-1].startswith("S OK"), out)
            self.assertTrue(all(n in out[2] for n in names), out[2])
            out = r.cmd("F", "FETCH 1:* (FLAGS)")
            self.assertTrue(out[-1].startswith("F OK"), out)
            self.assertEqual(len([l for l in out if all(n in l for n in names)]), 3)
            out = r.cmd("T", "STORE 1:3 +FLAGS (\\Flagged)")
            self.assertTrue(out[-1].startswith("T OK"), out)
            self.assertEqual(len([l for l in out if "\\Flagged" in l and names[-1] in l]), 3)
            a.store("2", "-FLAGS", "(%s)" % names[0])
            out = r.cmd("N", "NOOP")
            self.assertTrue(out[-1].startswith("N OK"), out)
            self.assertNotIn("does not fit", self.server.log())
        finally:
            a.logout()
            r.close()


if __name__ == "__main__":
    unittest.main()


class ImapImport(ImapBase):
    """Flags in the headers of an mbox indexed the first time: Status:,
    X-Status:, X-Keywords: as mutt and Dovecot write them."""

    def setUp(self):
        super().setUp()
        for f in ("alice.kw",):
            try:
                os.unlink(self.server.path("mail", ".postie", f))
            except OSError:
                pass

    def flags_now(self):
        a = self.server.imap()
        try:
            a.select("INBOX", readonly=True)
            typ, data = a.fetch("1:*", "(UID FLAGS)")
            self.assertEqual(typ, "OK", data)
            return flags_of(data)
        finally:
            a.logout()

    def test_headers_read_at_first_index_only(self):
        # the daemon writes the mbox (SMTP delivery, no index yet)
        self.smtp_deliver("alice@test.lan", "Subject: one\nStatus: RO\n"
                          "X-Status: AF\nX-Keywords: $label1 Work,Home\n\nbody\n")
        self.smtp_deliver("alice@test.lan", "Subject: two\nStatus: O\n"
                          "X-Keywords: $Junk\n\t$NotJunk\n\nbody\n")
        self.smtp_deliver("alice@test.lan", "Subject: three\nX-Status: DT\n"
                          "X-Keywords: bad(name) ok_name\n\nX-Status: F\n")
        self.smtp_deliver("alice@test.lan", "Subject: four\n\nStatus: RO\n")
        self.assertFalse(os.path.exists(self.server.path("mail", ".postie", "alice.idx")))
        got = self.flags_now()
        self.assertEqual(got[1], {"\\Seen", "\\Answered", "\\Flagged", "$label1",
                                  "Work", "Home"})
        self.assertEqual(got[2], {"$Junk", "$NotJunk"})
        # \Deleted never comes from a header; body lines are no header
        self.assertEqual(got[3], {"\\Draft", "ok_name"})
        self.assertEqual(got[4], set())
        # once indexed, a new message's headers are content, not flags
        self.smtp_deliver("alice@test.lan", "Subject: five\nStatus: RO\n"
                          "X-Keywords: $Junk\n\nbody\n")
        self.assertEqual(self.flags_now()[5], set())

    def test_mutt_written_mbox(self):
        if not shutil.which("mutt"):
            raise AssertionError("mutt not installed (Debian package mutt; "
                                 "tests/install-deps.sh check installs it)")
        from test_imap_clients import mutt_on_mbox
        for i in range(3):
            self.smtp_deliver("alice@test.lan", "Subject: mutt%d\n\nbody %d\n" % (i, i))
        p = mutt_on_mbox(self, "alice", 3)
        p.send("\r")                    # read message 1
        p.expect("body 0")
        p.send("q")
        p.settle()
        p.send("2\r")                   # flag message 2
        p.settle()
        p.send("F")
        p.settle()
        p.send("q")                     # mutt writes Status:/X-Status:
        self.assertEqual(p.wait(), 0, p.screen[-1500:])
        with open(self.server.path("mail", "alice"), "rb") as f:
            raw = f.read()
        self.assertIn(b"X-Status: F", raw)
        got = self.flags_now()
        self.assertEqual(got[1], {"\\Seen"})
        self.assertEqual(got[2], {"\\Flagged"})
        self.assertEqual(got[3], set())
