"""IMAP edge cases from an outside test round, each against the real
daemon: UID ranges beyond the highest UID, CONDSTORE modifiers that
belong to one command only, HIGHESTMODSEQ of untouched mailboxes,
ENVELOPE of addresses without a domain, APPEND of NUL bytes and the
session's protocol-error limit."""
import re
import unittest

import harness
from test_imap import ImapBase


def uids_of(lines):
    return [int(x) for ln in lines for x in re.findall(r"^\* \d+ FETCH \(.*UID (\d+)", ln)]


class ImapEdges(ImapBase):

    def deliver(self, n):
        for i in range(n):
            self.smtp_deliver("alice@test.lan", "Subject: m%d\n\nbody %d\n" % (i, i))

    def test_uid_range_beyond_highest_uid(self):
        """Only '*' stands for the highest UID: a range above it names
        no message (RFC 3501 §6.4.8), "N:*" still names the last."""
        self.deliver(3)
        r = self.raw()
        try:
            r.login()
            r.cmd("s", "SELECT INBOX")
            hi = max(uids_of(r.cmd("f", "UID FETCH 1:* UID")))
            out = r.cmd("a", "UID FETCH %d:%d UID" % (hi + 10, hi + 20))
            self.assertEqual(uids_of(out), [], out)
            self.assertTrue(out[-1].startswith("a OK"), out)
            out = r.cmd("b", "UID FETCH %d:* UID" % (hi + 10))
            self.assertEqual(uids_of(out), [hi], out)
            out = r.cmd("c", "UID FETCH %d:%d,%d:%d UID" % (hi - 1, hi, hi + 5, hi + 9))
            self.assertEqual(uids_of(out), [hi - 1, hi], out)
            out = r.cmd("d", "UID STORE %d:%d +FLAGS (\\Deleted)" % (hi + 10, hi + 20))
            self.assertEqual(uids_of(out), [], out)
            out = r.cmd("e", "FETCH 1:* FLAGS")
            self.assertNotIn("Deleted", "".join(out))
            # after the last message is expunged, the explicit "anything
            # new?" query names nothing either
            r.cmd("g", "UID STORE %d +FLAGS.SILENT (\\Deleted)" % hi)
            r.cmd("h", "EXPUNGE")
            out = r.cmd("i", "UID FETCH %d:4294967295 UID" % (hi + 1))
            self.assertEqual(uids_of(out), [], out)
            out = r.cmd("j", "UID FETCH %d:%d UID" % (hi, hi + 10))
            self.assertEqual(uids_of(out), [], out)
            out = r.cmd("k", "UID SEARCH UID %d:%d" % (hi, hi + 10))
            self.assertIn("* SEARCH", out)
        finally:
            r.close()

    @harness.need_feature("imap:condstore")
    def test_condstore_modifiers_last_one_command(self):
        """CHANGEDSINCE filters only the FETCH it comes with, and
        UNCHANGEDSINCE only its STORE (RFC 7162 §3.1.4, §3.1.3)."""
        self.deliver(2)
        r = self.raw()
        try:
            r.login()
            r.cmd("s", "SELECT INBOX (CONDSTORE)")
            r.cmd("a", "STORE 2 +FLAGS (\\Flagged)")
            out = r.cmd("b", "FETCH 1:* (MODSEQ)")
            mods = [int(x) for x in re.findall(r"MODSEQ \((\d+)\)", " ".join(out))]
            self.assertEqual(len(mods), 2, out)
            out = r.cmd("c", "FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % mods[0])
            self.assertEqual(uids_of(out), [2], out)
            out = r.cmd("d", "FETCH 1 (UID BODY.PEEK[])")
            self.assertEqual(uids_of(out), [1], out)
            out = r.cmd("e", "UID FETCH 1:* FLAGS")
            self.assertEqual(uids_of(out), [1, 2], out)
            r.cmd("f", "UNSELECT")
            r.cmd("g", "SELECT INBOX")
            out = r.cmd("h", "FETCH 1:* UID")
            self.assertEqual(uids_of(out), [1, 2], out)
            # a STORE whose UNCHANGEDSINCE fails; the next plain STORE
            # must not inherit it
            out = r.cmd("i", "STORE 2 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
            self.assertIn("MODIFIED", out[-1])
            out = r.cmd("j", "STORE 2 +FLAGS (\\Answered)")
            self.assertTrue(out[-1].startswith("j OK"), out)
            self.assertNotIn("MODIFIED", out[-1])
            self.assertIn("Answered", " ".join(out))
            out = r.cmd("k", "SEARCH MODSEQ 1")
            out = r.cmd("l", "SEARCH ALL")
            self.assertEqual(out[0], "* SEARCH 1 2", out)
        finally:
            r.close()

    @harness.need_feature("imap:condstore")
    def test_search_modseq_with_entry(self):
        """SEARCH MODSEQ takes the optional entry name and type of RFC
        7162 §3.1.5 (outside attack r7, 02: it was a BAD)."""
        self.deliver(2)
        r = self.raw()
        try:
            r.login()
            r.cmd("s", "SELECT INBOX (CONDSTORE)")
            r.cmd("a", "STORE 2 +FLAGS (\\Draft)")
            out = r.cmd("b", "FETCH 2 (MODSEQ)")
            mod = int(re.findall(r"MODSEQ \((\d+)\)", " ".join(out))[0])
            out = r.cmd("c", 'SEARCH MODSEQ "/flags/\\\\draft" all %d' % mod)
            self.assertTrue(out[-1].startswith("c OK"), out)
            self.assertIn("* SEARCH 2 (MODSEQ %d)" % mod, out)
            out = r.cmd("d", 'UID SEARCH MODSEQ "/flags/$Junk" priv 1')
            self.assertTrue(out[-1].startswith("d OK"), out)
            out = r.cmd("e", 'SEARCH MODSEQ "/flags/x" both 1')
            self.assertTrue(out[-1].startswith("e BAD"), out)
            out = r.cmd("f", 'SEARCH MODSEQ "other" all 1')
            self.assertTrue(out[-1].startswith("f BAD"), out)
        finally:
            r.close()

    def test_envelope_address_without_domain(self):
        """A NIL host marks a group start (RFC 3501 §7.4.2): an address
        without a domain gets the host MISSING_DOMAIN, as in Dovecot."""
        self.smtp_deliver("alice@test.lan", "Subject: cron\n\nx\n")
        r = self.raw()
        try:
            r.login()
            lit = b"From: root\r\nTo: admin, <ops>, grp: a@example.org;\r\nSubject: s\r\n\r\nx\r\n"
            r.send("p APPEND INBOX {%d}\r\n" % len(lit))
            self.assertTrue(r.line().startswith("+"))
            r.send(lit + b"\r\n")
            self.assertTrue(r.until("p")[-1].startswith("p OK"))
            r.cmd("s", "SELECT INBOX")
            out = " ".join(r.cmd("f", "FETCH 2 ENVELOPE"))
            root = '((NIL NIL "root" "MISSING_DOMAIN"))'
            self.assertIn('"s" %s %s %s ' % (root, root, root), out)
            self.assertIn('((NIL NIL "admin" "MISSING_DOMAIN")'
                          '(NIL NIL "ops" "MISSING_DOMAIN")'
                          '(NIL NIL "grp" NIL)(NIL NIL "a" "example.org")'
                          '(NIL NIL NIL NIL))', out)
        finally:
            r.close()

    def test_append_with_nul_refused(self):
        """A literal holds no NUL (RFC 3501 §9 CHAR8): APPEND of such a
        message answers NO, stores nothing, and the session goes on
        right after its literal, in one write or in pieces."""
        r = self.raw()
        try:
            r.login()
            lplus = "imap:literal+" in harness.features()
            for tag, plus in (("a", "+"), ("b", ""))[0 if lplus else 1:]:
                lit = b"Subject: nul\r\n\r\nbefore\x00after\r\n" + b"x" * 5000 + b"\r\n"
                r.send("%s APPEND INBOX {%d%s}\r\n" % (tag, len(lit), plus))
                if not plus:
                    self.assertTrue(r.line().startswith("+"))
                # the NUL alone in its own piece, then the rest and a
                # pipelined NOOP right behind the literal
                i = lit.index(b"\x00")
                r.send(lit[:i])
                r.send(lit[i:i + 1])
                r.send(lit[i + 1:] + b"\r\n" + tag.encode() + b"2 NOOP\r\n")
                out = r.until(tag)
                self.assertTrue(out[-1].startswith(tag + " NO"), out)
                self.assertIn("NUL", out[-1])
                self.assertTrue(r.until(tag + "2")[-1].startswith(tag + "2 OK"))
            out = r.cmd("s", "SELECT INBOX")
            self.assertIn("* 0 EXISTS", out)
            self.assertNotIn(b"before", self.server.mbox_bytes("alice"))
        finally:
            r.close()

    def test_error_limit_counts_bad_only(self):
        """NO answers are results (a stale subscription's folder is
        gone) and never end a session; the 30th BAD does: its tagged
        BAD, then * BYE, then the close."""
        r = self.raw()
        try:
            r.login()
            for i in range(40):
                out = r.cmd("s%d" % i, 'STATUS "Gone%d" (MESSAGES)' % i)
                self.assertTrue(out[-1].startswith("s%d NO" % i), out)
            out = r.cmd("n", "NOOP")
            self.assertTrue(out[-1].startswith("n OK"), out)
            for i in range(29):
                out = r.cmd("b%d" % i, "FROB")
                self.assertTrue(out[-1].startswith("b%d BAD" % i), out)
            self.assertTrue(r.cmd("m", "NOOP")[-1].startswith("m OK"))
            out = r.cmd("z", "FROB")
            self.assertTrue(out[-1].startswith("z BAD"), out)
            self.assertTrue(r.line().startswith("* BYE"))
            with self.assertRaises(harness.Closed):
                r.line()
        finally:
            r.close()


@harness.need_feature("imap:condstore")
class ImapFreshModseq(ImapBase):
    """A daemon that has changed nothing yet (its own server)."""

    def test_highestmodseq_at_least_1(self):
        """RFC 7162 §7: HIGHESTMODSEQ is a mod-sequence-value >= 1; in
        STATUS 0 means the mailbox has no mod-sequences."""
        r = self.raw()
        try:
            r.login()
            text = " ".join(r.cmd("a", "STATUS INBOX (HIGHESTMODSEQ)") +
                            r.cmd("b", "CREATE Fresh") +
                            r.cmd("c", "STATUS Fresh (HIGHESTMODSEQ)") +
                            r.cmd("d", "SELECT Fresh"))
            got = [int(x) for x in re.findall(r"HIGHESTMODSEQ (\d+)", text)]
            self.assertEqual(len(got), 3, text)
            self.assertNotIn(0, got, text)
            r.cmd("e", "SELECT INBOX")
        finally:
            r.close()
        # the first change gets a value above the one announced
        self.smtp_deliver("alice@test.lan", "Subject: x\n\nx\n")
        r = self.raw()
        try:
            r.login()
            before = int(re.findall(r"HIGHESTMODSEQ (\d+)", " ".join(
                r.cmd("f", "SELECT INBOX")))[0])
            r.cmd("g", "STORE 1 +FLAGS (\\Seen)")
            out = r.cmd("h", "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % before)
            self.assertTrue(any("Seen" in ln for ln in out), out)
        finally:
            r.close()


if __name__ == "__main__":
    unittest.main()
