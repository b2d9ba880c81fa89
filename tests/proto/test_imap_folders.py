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

    def test_create_delete_rename_hierarchy(self):
        m = self.server.imap()
        try:
            self.assertEqual(m.create("Work")[0], "OK")
            self.assertEqual(m.create("Archive/2026")[0], "OK")
            self.assertEqual(m.create("Lists/")[0], "OK")
            got = listed(m)
            self.assertIn("\\NoInferiors", got["Work"])
            self.assertIn("\\Noselect", got["Archive"])
            self.assertIn("\\HasChildren", got["Archive"])
            self.assertIn("\\HasNoChildren", got["Lists"])
            self.assertIn("Archive/2026", got)
            self.assertTrue(os.path.isfile(folder_path(self.server, "alice", "Archive/2026")))
            # '%' stops at the delimiter.
            self.assertNotIn("Archive/2026", listed(m, "%"))
            self.assertIn("Archive/2026", listed(m, "Archive/%"))
            # Errors: exists, INBOX, bad names, child of an mbox.
            for name, code in (("Work", "ALREADYEXISTS"), ("INBOX", "ALREADYEXISTS"),
                               ("inbox", "ALREADYEXISTS"), (".hidden", "CANNOT"),
                               ("a//b", "CANNOT"), ("x.lock", "CANNOT"),
                               ("Work/sub", "CANNOT"), ("../../etc", "CANNOT")):
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


if __name__ == "__main__":
    unittest.main()
