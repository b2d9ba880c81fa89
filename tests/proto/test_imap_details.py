"""IMAP protocol details (RFC 3501), each checked on messages delivered
by APPEND: section numbers of a top-level message/rfc822, BODYSTRUCTURE
line counts of parts without a final newline, LSUB's \\Noselect parents
of subscribed children, and (comment) display names in ENVELOPE. The
expected answers are Dovecot's for the same messages."""
import unittest

from test_imap import ImapBase


def crlf(text):
    return text.replace("\n", "\r\n").encode()


RFC822_TOP = crlf("""From: a@example.org
Subject: outer
MIME-Version: 1.0
Content-Type: message/rfc822

From: in@example.org
Subject: inner

inner body
line2
""")


class ImapDetails(ImapBase):

    def append(self, m, data):
        typ, res = m.append("INBOX", None, None, data)
        self.assertEqual(typ, "OK", res)

    def parts(self, data):
        """{item name: literal bytes} of a FETCH answer."""
        out = {}
        for d in data:
            if isinstance(d, tuple):
                out[d[0].split()[-2].decode().lstrip("(")] = d[1]
        return out

    def test_top_level_rfc822_numbering(self):
        m = self.server.imap()
        try:
            self.append(m, RFC822_TOP)
            m.select("INBOX")
            typ, data = m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[1.HEADER] "
                                "BODY.PEEK[1.TEXT] BODY.PEEK[1.1] BODY.PEEK[TEXT])")
            self.assertEqual(typ, "OK", data)
            got = self.parts(data)
            inner_hdr = b"From: in@example.org\r\nSubject: inner\r\n\r\n"
            inner_body = b"inner body\r\nline2\r\n"
            self.assertEqual(got["BODY[1]"], inner_hdr + inner_body)
            self.assertEqual(got["BODY[1.HEADER]"], inner_hdr)
            self.assertEqual(got["BODY[1.TEXT]"], inner_body)
            self.assertEqual(got["BODY[1.1]"], inner_body)
            self.assertEqual(got["BODY[TEXT]"], inner_hdr + inner_body)
            typ, data = m.fetch("1", "(BODY.PEEK[1.HEADER.FIELDS (SUBJECT)])")
            self.assertEqual(typ, "OK", data)
            self.assertEqual(data[0][1], b"Subject: inner\r\n\r\n")
        finally:
            m.logout()

    def test_comment_as_display_name(self):
        m = self.server.imap()
        try:
            self.append(m, crlf(
                "From: bob@example.org (Bob Smith)\n"
                "To: \"Al\" <al@example.org> (c), carl@example.org "
                "(Carl (the) Boss), d@example.org ()\n"
                "Cc: grp: e@example.org (E x);\n"
                "Subject: c\n\nx\n"))
            m.select("INBOX")
            typ, data = m.fetch("1", "(ENVELOPE)")
            self.assertEqual(typ, "OK", data)
            env = data[0].decode()
            bob = '(("Bob Smith" NIL "bob" "example.org"))'
            # From, and Sender and Reply-To that default to it
            self.assertIn('NIL "c" %s %s %s ' % (bob, bob, bob), env)
            self.assertIn('(("Al" NIL "al" "example.org")'
                          '("Carl (the) Boss" NIL "carl" "example.org")'
                          '(NIL NIL "d" "example.org"))', env)
            self.assertIn('((NIL NIL "grp" NIL)("E x" NIL "e" "example.org")'
                          '(NIL NIL NIL NIL))', env)
        finally:
            m.logout()

    def lsub(self, m, pattern):
        """{name: attributes} of LSUB "" pattern (this test's names are
        lower case; the default subscriptions are not)."""
        typ, data = m.lsub('""', pattern)
        self.assertEqual(typ, "OK", data)
        out = {}
        for d in data:
            if d:
                attrs, rest = d.decode().split(") ", 1)
                name = rest.split(" ", 1)[1].strip('"')
                if name[:1].islower():
                    out[name] = attrs.lstrip("(")
        return out

    def test_lsub_lists_noselect_parents(self):
        m = self.server.imap()
        try:
            for f in ("a/b/c", "a/b/d", "a/x", "p/q/r"):
                typ, data = m.create(f)
                self.assertEqual(typ, "OK", data)
            for f in ("a/b/c", "a/b/d", "a/x", "p/q/r", "n/o/p"):
                typ, data = m.subscribe(f)
                self.assertEqual(typ, "OK", data)
            ns = "\\Noselect"
            # a/b once, though two of its children are subscribed
            typ, data = m.lsub('""', "a/%")
            self.assertEqual(len(data), 2, data)
            self.assertEqual(self.lsub(m, "a/%"), {"a/b": ns, "a/x": ""})
            self.assertEqual(self.lsub(m, "%"), {"a": ns, "n": ns, "p": ns})
            self.assertEqual(self.lsub(m, "%/%"), {
                "a/b": ns, "n/o": ns, "p/q": ns, "a/x": ""})
            # "*" matches the children themselves: no parents
            self.assertEqual(self.lsub(m, "a/*"), {
                "a/b/c": "", "a/b/d": "", "a/x": ""})
            # subscribed itself: listed once, as the folder it is (a
            # directory here, so \\Noselect all the same)
            typ, data = m.subscribe("a")
            typ, data = m.lsub('""', "a")
            self.assertEqual(len(data), 1, data)
            self.assertEqual(self.lsub(m, "%"), {"a": ns, "n": ns, "p": ns})
        finally:
            m.logout()
    def test_line_counts_of_parts(self):
        """A part's lines are the line ends in its body; the CRLF before
        a boundary is the delimiter's (Dovecot gives the same)."""
        m = self.server.imap()
        try:
            self.append(m, crlf(
                "From: a@example.org\nSubject: mp\nMIME-Version: 1.0\n"
                "Content-Type: multipart/mixed; boundary=bb\n\n"
                "--bb\nContent-Type: text/plain\n\none\ntwo\n"
                "--bb\nContent-Type: text/plain\n\nthree\n\n"
                "--bb\nContent-Type: text/plain\n\nx\n"
                "--bb\nContent-Type: message/rfc822\n\n"
                "Subject: in\n\nbody\n--bb--\n"))
            m.select("INBOX")
            for item in ("BODYSTRUCTURE", "BODY"):
                typ, data = m.fetch("1", "(%s)" % item)
                self.assertEqual(typ, "OK", data)
                bs = data[0].decode()
                self.assertIn('"7BIT" 8 1', bs)      # one CRLF two
                self.assertIn('"7BIT" 7 1', bs)      # three CRLF
                self.assertIn('"7BIT" 1 0', bs)      # x
                self.assertIn('"7BIT" 4 0', bs)      # the inner body
                self.assertRegex(bs, r'"7BIT" 4 0( NIL){0,4}\) 2')  # message/rfc822
        finally:
            m.logout()

    def test_envelope_empty_sender_and_long_fields(self):
        """An empty Sender/Reply-To is From; a To: of 40 addresses on one
        1.2 KB line comes whole; a field past IMAP_FIELD_MAX is NIL,
        never a shortened list (Dovecot gives the first two the same)."""
        m = self.server.imap()
        try:
            self.append(m, crlf("From: a@example.org (A)\nSender: \n"
                                "Reply-To:\nSubject: e\n\nx\n"))
            to = ", ".join('"Person %d" <p%d@example.org>' % (j, j) for j in range(40))
            self.append(m, crlf("From: a@b\nTo: %s\nSubject: s\n\nx\n" % to))
            many = ",\n ".join("u%05d@example.org" % j for j in range(1000))
            self.append(m, crlf("From: a@b\nTo: %s\nMessage-ID: <%s@x>\n"
                                "Subject: long\n\nx\n" % (many, "i" * 1500)))
            m.select("INBOX")
            typ, data = m.fetch("1:3", "(ENVELOPE)")
            self.assertEqual(typ, "OK", data)
            env = [d.decode() if isinstance(d, bytes) else d[0].decode() + "{}"
                   for d in data if d != b")"]
            a = '(("A" NIL "a" "example.org"))'
            self.assertIn('"e" %s %s %s NIL' % (a, a, a), env[0])
            self.assertEqual(env[1].count('"Person '), 40, env[1])
            self.assertIn('("Person 39" NIL "p39" "example.org")) NIL', env[1])
            # 20 KB of addresses: NIL; the 1.5 KB Message-ID is whole
            self.assertIn('((NIL NIL "a" "b")) NIL NIL NIL NIL "<%s@x>"'
                          % ("i" * 1500), env[2])
        finally:
            m.logout()

    def test_envelope_source_route(self):
        m = self.server.imap()
        try:
            self.append(m, crlf("From: <@route:user@domain>\nSubject: r\n\nx\n"))
            m.select("INBOX")
            typ, data = m.fetch("1", "(ENVELOPE)")
            self.assertEqual(typ, "OK", data)
            self.assertIn('"r" ((NIL "@route" "user" "domain")) '
                          '((NIL "@route" "user" "domain"))', data[0].decode())
        finally:
            m.logout()

    def test_search_address_with_comments(self):
        m = self.server.imap()
        try:
            self.append(m, crlf("From: <user-from (comment)@ (comment) "
                                "domain.org>\nTo: Real To <t@example.org>\n"
                                "Subject: s\n\nx\n"))
            self.append(m, crlf("From: other@domain.org\nSubject: s\n\nx\n"))
            m.select("INBOX")
            for key, want in (("FROM user-from@domain.org", b"1"),
                              ("FROM comment", b"1"), ("TO realto", b""),
                              ("FROM domain.org", b"1 2")):
                typ, data = m.search(None, key)
                self.assertEqual(typ, "OK", data)
                self.assertEqual(data[0], want, key)
        finally:
            m.logout()


if __name__ == "__main__":
    unittest.main()
