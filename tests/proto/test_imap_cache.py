"""IMAP structure cache (NAME.sc beside the index): FETCH of ENVELOPE,
BODYSTRUCTURE and BODY answered from the cache equals the answer of a
parse of the message (forced by asking for a header section too, which
the cache never answers) after flag changes, an EXPUNGE, a restart of
the daemon and a folder deleted and created again; a repeated FETCH
writes nothing. Python imaplib, messages delivered by APPEND."""
import os
import unittest

import harness
from test_imap import ImapBase


def crlf(text):
    return text.replace("\n", "\r\n").encode()


MESSAGES = [
    crlf("From: Ann Example <ann@example.org>\nTo: bob@example.org\n"
         "Subject: plain\nDate: Sun, 1 Nov 2026 10:00:00 +0000\n"
         "Message-ID: <p1@example.org>\n\none\ntwo\n"),
    crlf("From: c@example.org (Carl)\nTo: a@example.org, b@example.org\n"
         "Cc: grp: e@example.org;\nSubject: alternative\n"
         "In-Reply-To: <p1@example.org>\nMIME-Version: 1.0\n"
         "Content-Type: multipart/alternative; boundary=\"b1\"\n\n"
         "--b1\nContent-Type: text/plain; charset=utf-8\n\ntext\n"
         "--b1\nContent-Type: text/html; charset=utf-8\n"
         "Content-Transfer-Encoding: quoted-printable\n\n<p>x</p>\n--b1--\n"),
    crlf("From: a@example.org\nSubject: outer\nMIME-Version: 1.0\n"
         "Content-Type: message/rfc822\n\n"
         "From: in@example.org\nSubject: inner\n\ninner body\nline2\n"),
    crlf("From: d@example.org\nSubject: mixed\nMIME-Version: 1.0\n"
         "Content-Type: multipart/mixed; boundary=b2\n\n"
         "--b2\nContent-Type: text/plain\nContent-Language: en\n\nbody\n"
         "--b2\nContent-Type: application/octet-stream; name=\"a.bin\"\n"
         "Content-Disposition: attachment; filename=\"a.bin\"\n"
         "Content-Transfer-Encoding: base64\n\nAAEC\n--b2--"),
    # An envelope longer than one cache entry: parsed each time.
    crlf("From: e@example.org\nTo: " +
         ", ".join("user%03d@example.org" % i for i in range(400)) +
         "\nSubject: many\n\nx\n"),
    crlf("From: f@example.org\nSubject: no final newline\n\nlast line"),
]

ITEMS = "UID FLAGS ENVELOPE BODYSTRUCTURE BODY"
PARSE = "BODY.PEEK[HEADER.FIELDS (X-NONE)]"


class ImapCache(ImapBase):

    def sc_path(self, user="alice"):
        return self.server.path("mail", ".postie", user + ".sc")

    def sc_state(self):
        """The cache file's mtime and bytes (None in a build without it)."""
        if "structure-cache" not in harness.features():
            return None
        p = self.sc_path()
        st = os.stat(p)
        with open(p, "rb") as f:
            return st.st_mtime_ns, f.read()

    def answers(self, m, parse):
        """{UID: the FETCH answer's text of ITEMS} for all messages; with
        parse, a header section is asked too (the cache cannot answer it,
        so the message is parsed) and cut off."""
        what = "(%s%s)" % (ITEMS, " " + PARSE if parse else "")
        typ, data = m.fetch("1:*", what)
        self.assertEqual(typ, "OK", data)
        out = {}
        for d in data:
            if isinstance(d, tuple):
                line = d[0].decode()
                tail = " BODY[HEADER.FIELDS (X-NONE)] {2}"
                self.assertTrue(line.endswith(tail), line)
                line = line[:-len(tail)]
            elif d == b")":
                continue
            else:
                line = d.decode()
                self.assertTrue(line.endswith(")"), line)
                line = line[:-1]
            seq, rest = line.split(" ", 1)
            uid = int(rest.split()[1])
            out[uid] = rest
        return out

    def check_same(self, m):
        """The cached answer equals the parsed one; returns it."""
        cached = self.answers(m, False)
        self.assertEqual(cached, self.answers(m, True))
        return cached

    def without_flags(self, answers):
        return {u: a[a.index(" ENVELOPE "):] for u, a in answers.items()}

    def test_cached_equals_parsed(self):
        m = self.server.imap()
        try:
            for msg in MESSAGES:
                typ, res = m.append("INBOX", None, None, msg)
                self.assertEqual(typ, "OK", res)
            m.select("INBOX")
            first = self.answers(m, False)      # parses, fills the cache
            self.assertEqual(len(first), len(MESSAGES))
            before = self.sc_state()
            if before is not None:
                self.assertTrue(len(before[1]) > 0)
            self.assertEqual(self.check_same(m), first)
            # a repeated FETCH writes nothing
            self.assertEqual(self.sc_state(), before)
            structure = self.without_flags(first)
            uids = sorted(first)
            # EXAMINE reads the cache (and writes nothing: see
            # test_imap_sessions); the same answers but for \Recent
            m.close()
            typ, res = m.select("INBOX", readonly=True)
            self.assertEqual(typ, "OK", res)
            self.assertEqual(self.without_flags(self.check_same(m)), structure)
            m.close()
            m.select("INBOX")

            # flags change; the cached structure does not
            typ, res = m.store("2,4", "+FLAGS", "(\\Flagged \\Answered)")
            self.assertEqual(typ, "OK", res)
            now = self.check_same(m)
            self.assertIn("\\Flagged", now[uids[1]].split(" ENVELOPE ")[0])
            self.assertIn("\\Answered", now[uids[3]].split(" ENVELOPE ")[0])
            self.assertEqual(self.without_flags(now), structure)

            # an EXPUNGE renumbers the messages after it
            typ, res = m.store("3", "+FLAGS", "(\\Deleted)")
            self.assertEqual(typ, "OK", res)
            typ, res = m.expunge()
            self.assertEqual(typ, "OK", res)
            now = self.check_same(m)
            del structure[uids[2]]
            self.assertEqual(self.without_flags(now), structure)
            # a second session gets the same (but for \Recent)
            m2 = self.server.imap()
            try:
                m2.select("INBOX")
                self.assertEqual(self.without_flags(self.check_same(m2)), structure)
            finally:
                m2.logout()
        finally:
            m.logout()

        # a restart keeps the cache, and it still answers the same
        before = self.sc_state()
        self.server.stop()
        self.server.start()
        m = self.server.imap()
        try:
            m.select("INBOX")
            self.assertEqual(self.without_flags(self.answers(m, False)), structure)
            self.assertEqual(self.sc_state(), before)
            self.assertEqual(self.without_flags(self.check_same(m)), structure)
        finally:
            m.logout()

    def test_folder_created_again(self):
        """DELETE and CREATE give the same UIDs to other messages under a
        new UIDVALIDITY: the old texts must not answer for them."""
        m = self.server.imap()
        try:
            for text in ("first", "later"):      # the same sizes
                typ, res = m.create("again")
                self.assertEqual(typ, "OK", res)
                typ, res = m.append("again", None, None, crlf(
                    "From: %s@example.org\nSubject: %s\n\nbody %s\n" %
                    (text, text, text)))
                self.assertEqual(typ, "OK", res)
                typ, res = m.select("again")
                self.assertEqual(typ, "OK", res)
                got = self.check_same(m)
                self.assertEqual(list(got), [1])
                self.assertIn('"%s"' % text, got[1])
                self.assertEqual(self.check_same(m), got)
                m.close()
                if text == "first":
                    typ, res = m.delete("again")
                    self.assertEqual(typ, "OK", res)
        finally:
            m.logout()

    def test_mbox_edited_elsewhere(self):
        """Another program removes the first message (as mutt does): the
        index starts a new UIDVALIDITY and UID 1 is now another message
        of the very same sizes."""
        m = self.server.imap()
        try:
            for text in ("aaaa", "bbbb"):
                typ, res = m.append("INBOX", None, None, crlf(
                    "From: x@example.org\nSubject: %s\n\nbody %s\n" % (text, text)))
                self.assertEqual(typ, "OK", res)
            m.select("INBOX")
            got = self.check_same(m)
            self.assertIn('"aaaa"', got[1])
            self.assertIn('"bbbb"', got[2])
            m.close()
            box = self.server.mbox("alice")
            second = box.index(b"\nFrom ", 1) + 1
            self.server.set_mbox("alice", box[second:])
            m.select("INBOX")
            got = self.check_same(m)
            self.assertEqual(list(got), [1])
            self.assertIn('"bbbb"', got[1])
        finally:
            m.logout()


if __name__ == "__main__":
    harness.main()
