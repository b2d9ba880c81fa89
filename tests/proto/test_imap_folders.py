"""IMAP folders (store/folders.c): CREATE, DELETE, RENAME (also of INBOX),
LIST/LSUB with hierarchy and SPECIAL-USE, SUBSCRIBE persistence; APPEND,
COPY, MOVE, UID EXPUNGE with UIDPLUS answers; every change checked in the
mbox files on disk, which must stay plain mboxrd."""
import imaplib
import mailbox
import os
import re
import shutil
import unittest

import harness
from harness import token
from test_imap import ImapBase, mbox_text, msg


def folder_path(server, user, name):
    return server.path("mail", ".postie", "folders", user, *name.split("/"))


def listed(m, pattern="*"):
    """{name: attributes} from LIST."""
    typ, data = m.list('""', pattern)
    assert typ == "OK", data
    out = {}
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            d = d[0] + b'"' + d[1] + b'"'
        mo = re.match(rb'\((.*?)\) "/" (.*)$', d)
        assert mo, d
        name = mo.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[name] = mo.group(1).decode().split()
    return out


def mbox_bodies(path):
    """Message payloads of an mbox file, parsed the way mutt would."""
    box = mailbox.mbox(path, create=False)
    try:
        return [m.get_payload() for m in box]
    finally:
        box.close()


class ImapFolders(ImapBase):

    def setUp(self):
        super().setUp()
        for u in ("alice", "bob"):
            shutil.rmtree(self.server.path("mail", ".postie", "folders", u),
                          ignore_errors=True)

    @harness.need_feature("imap:special-use")
    def test_first_login_makes_special_use_folders(self):
        m = self.server.imap()
        try:
            self.assertIn("SPECIAL-USE", m.capabilities)
            got = listed(m)
            self.assertEqual(set(got), {"INBOX", "Sent", "Drafts", "Trash", "Junk"})
            for name, attr in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                               ("Trash", "\\Trash"), ("Junk", "\\Junk")):
                self.assertIn(attr, got[name])
                self.assertTrue(os.path.isfile(folder_path(self.server, "alice", name)))
            typ, data = m.lsub('""', "*")
            self.assertEqual(typ, "OK")
            self.assertEqual(len([d for d in data if d]), 5, data)
            # LIST-EXTENDED selection: only the special-use ones.
            typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
            self.assertEqual(typ, "OK")
            self.assertEqual(len(m.untagged_responses.pop("LIST", [])), 4)
        finally:
            m.logout()

    def test_long_list_answer_is_complete(self):
        # LIST and LSUB answers larger than the item buffer (16 KB) go out
        # in parts: every folder is listed, none cut off under an OK.
        m = self.server.imap()
        try:
            names = ["Customers/Company %03d Limited - correspondence "
                     "and invoices %s" % (i, "x" * 20) for i in range(200)]
            for i, name in enumerate(names):
                self.assertEqual(m.create('"%s"' % name)[0], "OK", name)
                self.assertEqual(m.subscribe('"%s"' % name)[0], "OK", name)
            typ, data = m.list('""', "*")
            self.assertEqual(typ, "OK")
            self.assertGreater(sum(len(d) for d in data if d), 16384)
            got = listed(m)
            for name in names:
                self.assertIn(name, got)
            typ, data = m.lsub('""', "Customers/*")
            self.assertEqual(typ, "OK")
            self.assertEqual(len([d for d in data if d and b"Company" in d]), 200)
            typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', "*")
            self.assertEqual(typ, "OK")
            self.assertEqual(len([d for d in m.untagged_responses.pop("LIST", [])
                                  if b"Company" in d]), 200)
        finally:
            m.logout()

    def test_create_delete_rename_hierarchy(self):
        m = self.server.imap()
        try:
            self.assertEqual(m.create("Work")[0], "OK")
            self.assertEqual(m.create("Archive/2026")[0], "OK")
            self.assertEqual(m.create("Lists/")[0], "OK")
            got = listed(m)
            self.assertIn("\\HasNoChildren", got["Work"])
            self.assertNotIn("\\NoInferiors", got["Work"])
            # INBOX is mail_dir/USER: no children, and LIST says so
            self.assertIn("\\NoInferiors", got["INBOX"])
            self.assertEqual(m.create("INBOX/sub")[0], "NO")
            self.assertIn("\\Noselect", got["Archive"])
            self.assertIn("\\HasChildren", got["Archive"])
            self.assertIn("\\HasNoChildren", got["Lists"])
            self.assertIn("Archive/2026", got)
            self.assertTrue(os.path.isfile(folder_path(self.server, "alice", "Archive/2026")))
            # '%' stops at the delimiter.
            self.assertNotIn("Archive/2026", listed(m, "%"))
            self.assertIn("Archive/2026", listed(m, "Archive/%"))
            # Errors: exists, INBOX, bad names (NAME.sbd holds children).
            for name, code in (("Work", "ALREADYEXISTS"), ("INBOX", "ALREADYEXISTS"),
                               ("inbox", "ALREADYEXISTS"), (".hidden", "CANNOT"),
                               ("a//b", "CANNOT"), ("x.lock", "CANNOT"),
                               ("x.sbd", "CANNOT"), ("../../etc", "CANNOT")):
                typ, data = m.create(name)
                self.assertEqual(typ, "NO", name)
                self.assertIn(code.encode(), data[0], name)
            self.assertEqual(m.select("Work")[0], "OK")
            # Selected: cannot go away under the session.
            self.assertEqual(m.delete("Work")[0], "NO")
            self.assertEqual(m.rename("Work", "Job")[0], "NO")
            m.close()
            self.assertEqual(m.rename("Work", "Old/Job")[0], "OK")
            self.assertFalse(os.path.exists(folder_path(self.server, "alice", "Work")))
            self.assertTrue(os.path.isfile(folder_path(self.server, "alice", "Old/Job")))
            self.assertEqual(m.rename("Archive", "Past")[0], "OK")
            self.assertIn("Past/2026", listed(m))
            self.assertEqual(m.rename("Past", "Past/inside")[0], "NO")
            self.assertEqual(m.rename("Nope", "Other")[0], "NO")
            typ, data = m.delete("Past")
            self.assertEqual(typ, "NO")
            self.assertIn(b"HASCHILDREN", data[0])
            self.assertEqual(m.delete("Past/2026")[0], "OK")
            self.assertEqual(m.delete("Past")[0], "OK")
            self.assertEqual(m.delete("INBOX")[0], "NO")
            typ, data = m.delete("Past")
            self.assertIn(b"NONEXISTENT", data[0])
            got = listed(m)
            self.assertNotIn("Past", got)
            self.assertNotIn("Past/2026", got)
        finally:
            m.logout()

    def test_mailbox_with_children(self):
        """A folder that holds mail can have subfolders: NAME + NAME.sbd/
        (Thunderbird's layout); a \\Noselect parent becomes a mailbox on
        CREATE, its children moving into NAME.sbd."""
        m = self.server.imap()
        base = lambda *p: self.server.path("mail", ".postie", "folders", "alice", *p)
        try:
            self.assertEqual(m.create("Work")[0], "OK")
            self.assertEqual(m.append("Work", None, None, b"Subject: w\r\n\r\nwork\r\n")[0], "OK")
            self.assertEqual(m.create("Work/Sub")[0], "OK")
            self.assertEqual(m.append("Work/Sub", None, None, b"Subject: s\r\n\r\nsub\r\n")[0], "OK")
            self.assertTrue(os.path.isfile(base("Work")))
            self.assertTrue(os.path.isfile(base("Work.sbd", "Sub")))
            got = listed(m)
            self.assertEqual(got["Work"], ["\\HasChildren"])
            self.assertEqual(got["Work/Sub"], ["\\HasNoChildren"])
            self.assertNotIn("Work.sbd", got)
            self.assertEqual(listed(m, "Work/%"), {"Work/Sub": ["\\HasNoChildren"]})
            for name, want in (("Work", b"work"), ("Work/Sub", b"sub")):
                self.assertEqual(m.select(name)[0], "OK", name)
                typ, data = m.fetch("1", "(BODY.PEEK[TEXT])")
                self.assertIn(want, data[0][1])
                m.close()
            # a parent in use cannot be renamed from under its child
            other = self.server.imap()
            other.select("Work/Sub")
            self.assertEqual(m.rename("Work", "Job")[0], "NO")
            other.logout()
            self.assertEqual(m.rename("Work", "Job")[0], "OK")
            self.assertEqual(sorted(n for n in listed(m) if n.startswith(("Job", "Work"))),
                             ["Job", "Job/Sub"])
            self.assertEqual(mbox_bodies(base("Job.sbd", "Sub")), ["sub\n"])
            # DELETE keeps the children; the name is \\Noselect until made again
            self.assertEqual(m.delete("Job")[0], "OK")
            got = listed(m)
            self.assertIn("\\Noselect", got["Job"])
            self.assertIn("Job/Sub", got)
            self.assertEqual(m.select("Job")[0], "NO")
            self.assertEqual(m.create("Job")[0], "OK")
            self.assertEqual(listed(m)["Job"], ["\\HasChildren"])
            # an old-style \\Noselect directory parent becomes a mailbox
            self.assertEqual(m.create("Archive/2026")[0], "OK")
            self.assertEqual(m.append("Archive/2026", None, None, b"Subject: a\r\n\r\narch\r\n")[0], "OK")
            self.assertTrue(os.path.isdir(base("Archive")))
            self.assertEqual(m.create("Archive")[0], "OK")
            self.assertTrue(os.path.isfile(base("Archive")))
            self.assertEqual(mbox_bodies(base("Archive.sbd", "2026")), ["arch\n"])
            self.assertEqual(m.status("Archive/2026", "(MESSAGES)")[1][0].split()[-1], b"1)")
            # the last child gone: DELETE of the parent removes all
            self.assertEqual(m.delete("Job/Sub")[0], "OK")
            self.assertEqual(m.delete("Job")[0], "OK")
            self.assertFalse(os.path.exists(base("Job.sbd")))
            self.assertNotIn("Job", listed(m))
        finally:
            m.logout()

    def test_rename_inbox_moves_its_mail(self):
        t = [token("ri%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        m = self.server.imap()
        try:
            self.assertEqual(m.rename("INBOX", "Saved")[0], "OK")
            self.assertEqual(m.select("Saved")[0], "OK")
            typ, data = m.search(None, "ALL")
            self.assertEqual(data, [b"1 2 3"])
            m.close()
            typ, data = m.select("INBOX")
            self.assertEqual(data, [b"0"])
        finally:
            m.logout()
        bodies = mbox_bodies(folder_path(self.server, "alice", "Saved"))
        self.assertEqual(len(bodies), 3)
        for x, b in zip(t, bodies):
            self.assertIn(x, b)

    def test_subscriptions_persist(self):
        m = self.server.imap()
        try:
            self.assertEqual(m.create("News")[0], "OK")
            self.assertEqual(m.subscribe("News")[0], "OK")
            self.assertEqual(m.subscribe("Gone/Away")[0], "OK")
        finally:
            m.logout()
        m = self.server.imap()
        try:
            typ, data = m.lsub('""', "*")
            names = b" ".join(d for d in data if d)
            self.assertIn(b"News", names)
            self.assertIn(b"Gone/Away", names)
            self.assertEqual(m.unsubscribe("News")[0], "OK")
            typ, data = m.lsub('""', "N*")
            self.assertEqual([d for d in data if d], [])
            # LIST (SUBSCRIBED) marks what is gone \NonExistent.
            typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', "Gone*")
            self.assertEqual(typ, "OK")
            lines = m.untagged_responses.pop("LIST", [])
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(b"\\NonExistent", lines[0])
        finally:
            m.logout()

    def test_subscriptions_hold_every_folder_at_the_longest_name(self):
        # Subscriptions have room for all the folders FOLDER_MAX (250)
        # allows at the longest name (200 octets); past that (names of
        # folders that do not exist may be subscribed too) the answer
        # and the log say what is full.
        m = self.server.imap()
        try:
            names = ["%03d%s" % (i, "s" * 197) for i in range(240)]
            for name in names:
                self.assertEqual(m.create(name)[0], "OK", name)
                typ, data = m.subscribe(name)
                self.assertEqual(typ, "OK", data)
            typ, data = m.lsub('""', "*")
            self.assertEqual(typ, "OK")
            got = [d for d in data if d and b"sss" in d]
            self.assertEqual(len(got), 240)
            refused = None
            for i in range(20):
                typ, data = m.subscribe("Gone%03d%s" % (i, "g" * 193))
                if typ != "OK":
                    refused = data[0].decode()
                    break
            self.assertIsNotNone(refused)
            self.assertRegex(refused, r"^\[LIMIT\] Too many subscriptions "
                             r"\(\d+ octets of names at most\)")
            self.assertIn("subscriptions full", self.server.log())
            self.assertNotIn("Too many links", self.server.log())
            # What is there stays; UNSUBSCRIBE makes room again.
            self.assertEqual(m.unsubscribe(names[0])[0], "OK")
            self.assertEqual(m.subscribe("Gone%03d%s" % (i, "g" * 193))[0], "OK")
            typ, data = m.lsub('""', "*")
            self.assertEqual(len([d for d in data if d and b"sss" in d]), 239)
        finally:
            m.logout()

    def test_status_of_folder_and_quoted_name(self):
        m = self.server.imap()
        try:
            self.assertEqual(m.create('"My \\"quoted\\" box"')[0], "OK")
            typ, data = m.status('"My \\"quoted\\" box"', "(MESSAGES UIDNEXT)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b'"My \\"quoted\\" box"', data[0])
            self.assertIn(b"MESSAGES 0", data[0])
            self.assertIn('My "quoted" box', listed(m))
        finally:
            m.logout()

    def test_list_pattern_is_linear(self):
        # A pattern that makes a backtracking matcher explode.
        m = self.server.imap()
        try:
            self.assertEqual(m.create("a" * 150)[0], "OK")
            pat = "*a" * 100 + "*b"
            typ, data = m.list('""', '"%s"' % pat)
            self.assertEqual(typ, "OK")
            self.assertEqual([d for d in data if d], [])
        finally:
            m.logout()


@harness.need_feature("imap:special-use")
@harness.need_feature("imap:uidplus")
@harness.need_feature("imap:move")
@harness.need_feature("imap:literal+")
class ImapAppendCopyMove(ImapBase):

    def setUp(self):
        super().setUp()
        for u in ("alice", "bob"):
            shutil.rmtree(self.server.path("mail", ".postie", "folders", u),
                          ignore_errors=True)

    def uids(self, m, crit="ALL"):
        typ, data = m.uid("SEARCH", None, crit)
        self.assertEqual(typ, "OK", data)
        return [int(x) for x in data[0].split()]

    def test_append_flags_date_appenduid(self):
        t = token("ap")
        body = ("From: a@example.net\r\nSubject: appended\r\n\r\n"
                "line one %s\r\nFrom the start\r\n>From quoted\r\nlast\r\n" % t)
        m = self.server.imap()
        try:
            self.assertIn("UIDPLUS", m.capabilities)
            typ, data = m.append("Drafts", "(\\Draft \\Seen $Kw)",
                                 '"05-Mar-2026 10:20:30 +0100"', body.encode())
            self.assertEqual(typ, "OK", data)
            mo = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
            self.assertTrue(mo, data)
            self.assertEqual(m.select("Drafts")[0], "OK")
            typ, data = m.uid("FETCH", mo.group(2).decode(),
                              "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
            self.assertEqual(typ, "OK", data)
            meta = data[0][0]
            self.assertIn(b"\\Draft", meta)
            self.assertIn(b"\\Seen", meta)
            self.assertIn(b'"05-Mar-2026 09:20:30 +0000"', meta)
            self.assertEqual(data[0][1], body.encode())
            self.assertIn(b"RFC822.SIZE %d" % len(body), meta)
            self.assertEqual(self.uids(m), [int(mo.group(2))])
        finally:
            m.logout()
        # On disk: plain mboxrd that mutt's parser reads back.
        raw = open(folder_path(self.server, "alice", "Drafts"), "rb").read()
        self.assertTrue(raw.startswith(b"From MAILER-DAEMON "), raw[:60])
        self.assertIn(b"\n>From the start\n>>From quoted\n", raw)
        self.assertNotIn(b"\r", raw)
        bodies = mbox_bodies(folder_path(self.server, "alice", "Drafts"))
        self.assertEqual(len(bodies), 1)
        self.assertIn("From the start", bodies[0])

    def test_append_errors_and_literal_plus(self):
        r = self.raw()
        try:
            r.login()
            # No such folder: TRYCREATE before the literal is sent.
            r.send("a APPEND Nope {5}\r\n")
            out = r.until("a")
            self.assertIn("a NO [TRYCREATE]", out[-1])
            # LITERAL+: the message comes anyway and is dropped.
            r.send("b APPEND Nope {5+}\r\nhello\r\n")
            self.assertIn("b NO [TRYCREATE]", r.until("b")[-1])
            r.send("c APPEND INBOX {0}\r\n")
            self.assertTrue(r.until("c")[-1].startswith("c NO"))
            # Over max_message_size: refused before a byte is read.
            r.send("d APPEND INBOX {999999999999}\r\n")
            self.assertIn("d NO [TOOBIG]", r.until("d")[-1])
            # A good one with LITERAL+ and a mailbox name as a literal.
            r.send("e APPEND {5+}\r\nINBOX {18+}\r\nSubject: x\r\n\r\nhi\r\n\r\n")
            out = r.until("e")
            self.assertTrue(out[-1].startswith("e OK [APPENDUID "), out)
            # MULTIAPPEND is not offered.
            r.send("f APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\n")
            out = r.until("f"); self.assertTrue(out[-1].startswith("f BAD"), out)
            r.send("g APPEND INBOX (\\Bogus) {3+}\r\nabc\r\n")
            self.assertTrue(r.until("g")[-1].startswith("g BAD"))
            out = r.cmd("h", "STATUS INBOX (MESSAGES)")
            self.assertIn("MESSAGES 1", out[0])
        finally:
            r.close()

    def test_append_to_selected_mailbox_sends_exists(self):
        m = self.server.imap()
        other = self.server.imap()
        try:
            m.select("INBOX")
            other.select("INBOX")
            typ, data = m.append("INBOX", None, None, b"Subject: s\r\n\r\nbody\r\n")
            self.assertEqual(typ, "OK")
            self.assertEqual(m.untagged_responses.get("EXISTS")[-1], b"1")
            typ, data = other.noop()
            self.assertEqual(other.untagged_responses.get("EXISTS")[-1], b"1")
        finally:
            m.logout()
            other.logout()

    def test_copy_move_uid_expunge_on_disk(self):
        t = [token("cm%d" % i) for i in range(6)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        m = self.server.imap()
        try:
            m.create("Keep")
            m.select("INBOX")
            m.store("2", "+FLAGS", "(\\Flagged)")
            u = self.uids(m)
            typ, data = m.copy("1:2", "Keep")
            self.assertEqual(typ, "OK", data)
            mo = re.search(rb"COPYUID (\d+) (\S+) (\S+)\]", data[0])
            self.assertTrue(mo, data)
            self.assertEqual(mo.group(2), b"%d:%d" % (u[0], u[1]))
            typ, data = m.copy("1", "Nope")
            self.assertIn(b"TRYCREATE", data[0])
            # MOVE: COPYUID untagged, with a text (resp-text needs one:
            # imaptest "Missing text in resp-text"), then EXPUNGE answers.
            typ, data = m._simple_command("MOVE", "3", "Trash")
            self.assertEqual(typ, "OK", data)
            self.assertTrue(m.untagged_responses.pop("COPYUID", None))
            ok = m.untagged_responses.pop("OK", [])
            self.assertTrue(any(re.match(rb"\[COPYUID [^]]*\] \S", x) for x in ok), ok)
            self.assertEqual(m.untagged_responses.pop("EXPUNGE", None), [b"3"])
            # UID MOVE and UID EXPUNGE touch only what they name.
            typ, data = m.uid("MOVE", str(u[5]), "Trash")
            self.assertEqual(typ, "OK", data)
            m.store("1:2", "+FLAGS", "(\\Deleted)")
            typ, data = m.uid("EXPUNGE", str(u[0]))
            self.assertEqual(typ, "OK", data)
            self.assertEqual(self.uids(m), [u[1], u[3], u[4]])
            self.assertEqual(self.uids(m, "DELETED"), [u[1]])
            # Nothing matches: fine for UID forms.
            self.assertEqual(m.uid("COPY", "99999", "Keep")[0], "OK")
            m.select("Keep")
            typ, data = m.fetch("1:*", "(FLAGS)")
            self.assertEqual(len(data), 2)
            self.assertIn(b"\\Flagged", data[1])
            self.assertNotIn(b"\\Flagged", data[0])
        finally:
            m.logout()
        inbox = mbox_bodies(self.server.path("mail", "alice"))
        self.assertEqual([t[i] in b for i, b in zip((1, 3, 4), inbox)], [True] * 3)
        self.assertEqual(len(inbox), 3)
        keep = mbox_bodies(folder_path(self.server, "alice", "Keep"))
        self.assertEqual(len(keep), 2)
        self.assertIn(t[0], keep[0])
        self.assertIn(t[1], keep[1])
        trash = mbox_bodies(folder_path(self.server, "alice", "Trash"))
        self.assertEqual(len(trash), 2)
        self.assertIn(t[2], trash[0])
        self.assertIn(t[5], trash[1])

    def test_pipelined_after_copy_move_append(self):
        # The answer of a command that waits (lock, copy, index) comes
        # before the answers of commands pipelined behind it.
        t = [token("pl%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        r = self.raw()
        try:
            r.login()
            r.cmd("s", "SELECT INBOX")
            r.send("a MOVE 1 Trash\r\nb COPY 1 Junk\r\n"
                   "c APPEND Junk {12+}\r\nSubject: p\r\n\r\nd NOOP\r\n")
            out = r.until("d")
            tags = [x.split()[0] for x in out if not x.startswith("*")]
            self.assertEqual(tags, ["a", "b", "c", "d"], out)
            self.assertIn("* 1 EXPUNGE", out)
            self.assertTrue(all(x.split()[1] == "OK" for x in out
                                if not x.startswith("*")), out)
            out = r.cmd("e", "STATUS Junk (MESSAGES)")
            self.assertIn("MESSAGES 2", out[0])
        finally:
            r.close()
        self.assertEqual(len(mbox_bodies(self.server.path("mail", "alice"))), 2)

    def test_concurrent_big_fetches_share_the_stream_buffers(self):
        # More sessions stream at once than there are lent buffers
        # (CONN_STREAM_BUFS, 2 by default): every answer is still exact.
        import concurrent.futures
        big = "y" * 900 + "\n"
        t = [token("sb%d" % i) for i in range(30)]
        self.server.set_mbox("alice", mbox_text([msg(x, extra=big * 40) for x in t]))

        def one(k):
            m = self.server.imap()
            try:
                m.select("INBOX", readonly=True)
                typ, data = m.fetch("1:*", "(BODY.PEEK[])")
                bodies = [d[1] for d in data if isinstance(d, tuple)]
                return [x in b.decode() and len(b) > 36000 for x, b in zip(t, bodies)]
            finally:
                m.logout()

        with concurrent.futures.ThreadPoolExecutor(5) as ex:
            results = list(ex.map(one, range(5)))
        self.assertEqual(results, [[True] * 30] * 5)

    def test_copy_to_same_mailbox_and_large_copy(self):
        big = "x" * 1000 + "\n"
        t = [token("lc%d" % i) for i in range(40)]
        self.server.set_mbox("alice", mbox_text([msg(x, extra=big * 60) for x in t]))
        m = self.server.imap()
        try:
            m.select("INBOX")
            typ, data = m.copy("1:*", "INBOX")
            self.assertEqual(typ, "OK", data)
            self.assertEqual(m.untagged_responses.get("EXISTS")[-1], b"80")
            typ, data = m.copy("1:*", "Junk")
            self.assertEqual(typ, "OK", data)
            typ, data = m.status("Junk", "(MESSAGES)")
            self.assertIn(b"MESSAGES 80", data[0])
        finally:
            m.logout()
        self.assertEqual(len(mbox_bodies(folder_path(self.server, "alice", "Junk"))), 80)


@harness.need_feature("imap:condstore")
class ImapCondstore(ImapBase):
    """RFC 7162 over the index's mod-sequences."""

    def test_modseq_changedsince_unchangedsince_search(self):
        t = [token("cs%d" % i) for i in range(4)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        r = self.raw()
        other = self.server.imap()
        try:
            r.login()
            self.assertIn("CONDSTORE", r.cmd("c", "CAPABILITY")[0])
            out = r.cmd("s", "SELECT INBOX (CONDSTORE)")
            hm = [int(re.search(r"HIGHESTMODSEQ (\d+)", x).group(1))
                  for x in out if "HIGHESTMODSEQ" in x]
            self.assertEqual(len(hm), 1, out)
            h0 = hm[0]
            out = r.cmd("f", "FETCH 1:* (MODSEQ)")
            mods = [int(re.search(r"MODSEQ \((\d+)\)", x).group(1))
                    for x in out if x.startswith("* ") and "FETCH" in x]
            self.assertEqual(len(mods), 4)
            self.assertEqual(len(set(mods)), 4, "distinct mod-sequences")
            self.assertLessEqual(max(mods), h0)
            # A change made elsewhere raises its modseq above h0.
            other.select("INBOX")
            other.store("2", "+FLAGS", "(\\Flagged)")
            out = r.cmd("g", "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
            fetched = [x for x in out if x.startswith("* ") and "FETCH" in x]
            self.assertEqual(len(fetched), 1, out)
            self.assertTrue(fetched[0].startswith("* 2 FETCH"), out)
            self.assertIn("\\Flagged", fetched[0])
            m2 = int(re.search(r"MODSEQ \((\d+)\)", fetched[0]).group(1))
            self.assertGreater(m2, h0)
            # UNCHANGEDSINCE: message 2 changed after h0 and is left alone.
            out = r.cmd("h", "STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)" % h0)
            self.assertIn("[MODIFIED 2]", out[-1], out)
            silent = [x for x in out if x.startswith("* ") and "FETCH" in x]
            self.assertEqual(len(silent), 2, out)       # MODSEQ despite .SILENT
            for x in silent:
                self.assertIn("MODSEQ", x)
            out = r.cmd("i", "FETCH 2 (FLAGS)")
            self.assertNotIn("\\Seen", out[0])
            # SEARCH MODSEQ answers the highest of the matches.
            out = r.cmd("j", "SEARCH MODSEQ %d" % (m2 + 1))
            line = [x for x in out if x.startswith("* SEARCH")][0]
            mo = re.match(r"\* SEARCH ([\d ]+) \(MODSEQ (\d+)\)$", line)
            self.assertTrue(mo, line)
            self.assertEqual(sorted(int(x) for x in mo.group(1).split()), [1, 3])
            # STATUS sees the highest; expunge raises it.
            st1 = other.status("INBOX", "(HIGHESTMODSEQ)")[1][0]
            h1 = int(re.search(rb"HIGHESTMODSEQ (\d+)", st1).group(1))
            self.assertGreaterEqual(h1, m2)
            other.store("4", "+FLAGS", "(\\Deleted)")
            other.expunge()
            st2 = other.status("INBOX", "(HIGHESTMODSEQ)")[1][0]
            self.assertGreater(int(re.search(rb"HIGHESTMODSEQ (\d+)", st2).group(1)), h1)
            out = r.cmd("k", "ENABLE CONDSTORE")
            self.assertTrue(out[-1].startswith("k OK"), out)
        finally:
            r.close()
            other.logout()

    def test_modseq_survives_restart_of_the_session(self):
        t = [token("cr%d" % i) for i in range(2)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        m = self.server.imap()
        try:
            m.select("INBOX")
            m.store("1", "+FLAGS", "(\\Answered)")
            typ, data = m.fetch("1:2", "(MODSEQ)")
            before = data
        finally:
            m.logout()
        m = self.server.imap()
        try:
            m.select("INBOX", readonly=True)
            typ, data = m.fetch("1:2", "(MODSEQ)")
            self.assertEqual(data, before)
        finally:
            m.logout()


class ImapRecent(ImapBase):
    """\Recent (RFC 3501 2.3.2): a message is recent in the one session
    that first selects the mailbox after it arrived."""

    def test_recent_taken_by_the_first_select(self):
        t = [token("rc%d" % i) for i in range(3)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        a = self.server.imap()
        b = self.server.imap()
        c = self.server.imap()
        try:
            typ, data = c.status("INBOX", "(RECENT)")
            self.assertIn(b"RECENT 3", data[0])
            c.select("INBOX", readonly=True)             # EXAMINE takes nothing
            self.assertEqual(c.untagged_responses.get("RECENT"), [b"3"])
            a.select("INBOX")
            self.assertEqual(a.untagged_responses.get("RECENT"), [b"3"])
            b.select("INBOX")
            self.assertEqual(b.untagged_responses.get("RECENT"), [b"0"])
            self.assertIn(b"RECENT 0", b.status("INBOX", "(RECENT)")[1][0])
            self.assertEqual(a.search(None, "RECENT")[1], [b"1 2 3"])
            self.assertEqual(b.search(None, "RECENT")[1], [b""])
            self.assertEqual(b.search(None, "OLD")[1], [b"1 2 3"])
            a.store("1", "+FLAGS", "(\\Seen)")
            self.assertEqual(a.search(None, "NEW")[1], [b"2 3"])
            # A delivery: the first session to notice takes it.
            self.smtp_deliver("alice@test.lan", "Subject: new\n\nnew\n")
            a.noop()
            self.assertEqual(a.untagged_responses.get("RECENT")[-1], b"4")
            typ, data = a.fetch("4", "(FLAGS)")
            self.assertIn(b"\\Recent", data[0])
            b.noop()
            self.assertEqual(b.untagged_responses.get("RECENT")[-1], b"0")
            typ, data = b.fetch("4", "(FLAGS)")
            self.assertNotIn(b"\\Recent", data[0])
            # \Recent cannot be stored.
            typ, data = b.store("1", "+FLAGS", "(\\Recent)")
            self.assertEqual(typ, "OK")
            self.assertNotIn(b"\\Recent", b.fetch("1", "(FLAGS)")[1][0])
        finally:
            for m in (a, b, c):
                m.logout()
        # The next session sees nothing recent.
        m = self.server.imap()
        try:
            m.select("INBOX")
            self.assertEqual(m.untagged_responses.get("RECENT"), [b"0"])
        finally:
            m.logout()


class ImapStructureFastPath(ImapBase):
    """BODYSTRUCTURE of a single-part message comes from its header and the
    index (no read of the body); it must equal what the full parse gives
    (forced here by asking for a numbered section in the same FETCH)."""

    def test_header_only_bodystructure_matches_full_parse(self):
        msgs = [
            "Subject: a\n\nhello\nworld\n",
            "Subject: crlf\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nl1\r\nl2\r\n",
            "Subject: empty body\n\n",
            "Subject: only header\nX-A: b\n",
            "Subject: quoted\n\n>From x\n>>From y\n",
            "Content-Type: text/html; charset=\"iso-8859-1\"; name=x\n"
            "Content-Transfer-Encoding: quoted-printable\n"
            "Content-Disposition: attachment; filename=a.html\n"
            "Content-Language: en\nContent-ID: <x@y>\n\n<p>=E9</p>\n",
            "Subject: cr\n\na\rb\r\n\rc\n",
            "Content-Type: application/octet-stream\n\n" + "x" * 5000 + "\n" + "y\n" * 50,
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n",
            "Content-Type: message/rfc822\n\nSubject: in\n\nbody\n",
            "Subject: last, no newline\n\nend",
        ]
        text = "".join("From a@b Sat Jan  3 01:05:34 2026\n" + m +
                       ("" if i == len(msgs) - 1 else "\n")
                       for i, m in enumerate(msgs))
        self.server.set_mbox("alice", text)
        m = self.server.imap()
        try:
            m.select("INBOX", readonly=True)
            for what in ("BODYSTRUCTURE", "BODY"):
                typ, fast = m.fetch("1:*", "(%s)" % what)
                typ, full = m.fetch("1:*", "(%s BODY.PEEK[1])" % what)
                full = [d[0] for d in full if isinstance(d, tuple)]
                self.assertEqual(len(fast), len(msgs))
                self.assertEqual(len(full), len(msgs))
                for n, (a, b) in enumerate(zip(fast, full)):
                    inner = a[a.index(b"(") + 1:-1]
                    self.assertIn(inner, b, "message %d" % (n + 1))
        finally:
            m.logout()


if __name__ == "__main__":
    unittest.main()
