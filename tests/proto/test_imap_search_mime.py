"""SEARCH over MIME-encoded text (RFC 3501 §6.4.4 with RFC 2045/2047):
header values are matched after decoding their RFC 2047 encoded-words,
BODY and TEXT also match the decoded text of quoted-printable and base64
parts (ISO-8859-1 turned into UTF-8), multipart and message/rfc822
included. Only ASCII letters fold case. Messages are delivered through
the daemon (SMTP) and searched with imaplib; one base64 body is long
enough that its needle spans the 8 KiB reads and the 64 KiB loop pass of
the work budget."""
import base64
import random
import unittest

from test_imap import ImapBase

HEADERS = """From: =?utf-8?q?J=C3=B6rg?= Schmidt <j@example.net>
To: =?iso-8859-1?q?Ren=E9?= <r@test.lan>, alice@test.lan
Subject: =?utf-8?b?Y2Fmw6kgb2xl?= =?UTF-8?Q?_und_Stra=C3=9Fe?= plain-tail
X-Tag: =?utf-8?q?encoded_custom?=

plain body one
"""

QP_BODY = """Subject: qp body
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 soft=
break and a long line that was wrapped in the mid=
dle of a word=20
"""

MULTI = """Subject: multipart
MIME-Version: 1.0
Content-Type: multipart/mixed;
\tboundary="outer-b"

preamble-word
--outer-b
Content-Type: multipart/alternative; boundary=inner-b

--inner-b
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: base64

%s
--inner-b
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<p>na=C3=AFve =3D html</p>
--inner-b--
--outer-b
Content-Type: message/rfc822

Subject: inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

%s
--outer-b--
epilogue
""" % (base64.b64encode("Grüße aus Köln".encode("latin-1")).decode(),
       base64.b64encode("enclosed Überraschung".encode()).decode())


def b64_lines(data):
    text = base64.b64encode(data).decode()
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def needle_text(seed, n):
    rnd = random.Random(seed)
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(n))


# A base64 body whose 7,000-octet needle takes about 9,600 octets
# encoded, from octet 60,000 of the body on: it spans at least one 8 KiB
# read whatever the header's length, and the 64 KiB mark of the message
# (the first loop pass's budget) for any header of up to 5,000 octets.
NEEDLE = needle_text(7, 7000)
PAD1 = needle_text(8, 43846)
BIG = ("Subject: big base64\nMIME-Version: 1.0\n"
       "Content-Type: text/plain; charset=utf-8\n"
       "Content-Transfer-Encoding: base64\n\n%s\n"
       % b64_lines((PAD1 + NEEDLE + needle_text(9, 60000)).encode()))


class SearchMime(ImapBase):

    server_kw = {"max_size": "4M"}

    def search(self, m, *crit, literal=None):
        if literal is not None:
            m.literal = literal.encode()
            typ, data = m.search("UTF-8", *crit)
        else:
            typ, data = m.search(None, *crit)
        self.assertEqual(typ, "OK", data)
        return data[0].decode()

    def test_encoded_headers_and_bodies(self):
        for text in (HEADERS, QP_BODY, MULTI):
            self.smtp_deliver("alice@test.lan", text)
        m = self.server.imap()
        try:
            m.select("INBOX")
            for crit, lit, want in (
                    (("SUBJECT", "ole"), None, "1"),
                    (("SUBJECT",), "café ole", "1"),
                    (("SUBJECT",), "CAFé", "1"),        # ASCII letters fold
                    (("SUBJECT",), "CAFÉ", ""),         # others do not
                    (("SUBJECT",), "ole und Straße plain", "1"),
                    (("SUBJECT", "Y2Fm"), None, ""),    # not the raw bytes
                    (("FROM",), "Jörg Schmidt", "1"),
                    (("TO",), "René", "1"),
                    (("HEADER", "X-Tag", "\"encoded custom\""), None, "1"),
                    (("BODY",), "café soft", "2"),
                    (("BODY", "softbreak"), None, "2"),
                    (("BODY", "middle"), None, "2"),
                    (("BODY",), "café", "2"),
                    (("BODY",), "Grüße aus Köln", "3"),
                    (("BODY",), "naïve = html", "3"),
                    (("BODY",), "Überraschung", "3"),
                    (("TEXT",), "café", "1 2"),
                    (("TEXT", "Schmidt"), None, "1"),
                    (("BODY", "Schmidt"), None, ""),
                    # part headers, boundaries and preamble are no body
                    # text; TEXT also sees the raw message
                    (("BODY", "quoted-printable"), None, ""),
                    (("BODY", "preamble-word"), None, ""),
                    (("BODY", "inner-b"), None, ""),
                    (("TEXT", "preamble-word"), None, "3"),
                    (("NOT", "BODY"), "Köln", "1 2"),
            ):
                self.assertEqual(self.search(m, *crit, literal=lit), want, (crit, lit))
        finally:
            m.logout()

    def test_base64_needle_across_reads_and_passes(self):
        self.smtp_deliver("alice@test.lan", BIG)
        self.smtp_deliver("alice@test.lan", QP_BODY)
        m = self.server.imap()
        try:
            m.select("INBOX")
            self.assertEqual(self.search(m, "BODY", literal=NEEDLE), "1")
            self.assertEqual(self.search(m, "TEXT", literal=NEEDLE.upper()), "1")
            bad = NEEDLE[:5000] + ("x" if NEEDLE[5000] != "x" else "y") + NEEDLE[5001:]
            self.assertEqual(self.search(m, "BODY", literal=bad), "")
            self.assertEqual(self.search(m, "OR", "BODY", "softbreak", "BODY",
                                         literal=NEEDLE[-3000:]), "1 2")
        finally:
            m.logout()


if __name__ == "__main__":
    unittest.main()
