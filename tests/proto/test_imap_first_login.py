"""The first IMAP login of a user makes its folders (store/folders.c:
Sent, Drafts, Trash and Junk, subscribed with INBOX) a step a loop pass,
each step with at most one fsync, and answers LOGIN after the last
(README: Work budget). Before, all of it ran in the LOGIN's pass: about
a dozen fsyncs (18 in a fresh mail_dir) holding every other client.

Proved by counts, never by time:
- `postie status` reports the most fsyncs one loop pass made since start
  ("most fsyncs in one pass N"); a fresh daemon whose only work is first
  logins (by LOGIN and by AUTHENTICATE) must show 1;
- crash safety: for K = 1, 2, ... the daemon is killed (SIGKILL, by
  strace's fault injection) at the K-th fsync after a user's first
  LOGIN, whatever step that is, until a login needs fewer; after each
  kill the state on disk is either no folder base or a whole one, and
  the next login (daemon restarted) finishes the job: the same folders
  and subscriptions as a login never interrupted, nothing left over.
"""
import imaplib
import os
import re
import shutil
import subprocess
import unittest

import harness
import tlsutil
from harness import IO_TIMEOUT, SLOW
from test_imap import IMAPServer, have_imap
from test_imap_folders import listed
from tlsutil import PASSWORD

SPECIALS = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
            "Junk": "\\Junk"}
SUBSCRIBED = "INBOX\nSent\nDrafts\nTrash\nJunk\n"


class FirstLogin(harness.TestCase):

    def start(self, users):
        if not have_imap():
            raise unittest.SkipTest("imap not in this build")
        if "imap:special-use" not in harness.features():
            raise unittest.SkipTest("special-use folders not in this build")
        h = tlsutil.postie_passwd() if tlsutil.have("auth") else ""
        self.srv = IMAPServer(users={u: h for u in users},
                              extra="plaintext_auth_networks 127.0.0.1/32\n")
        self.srv.start()
        self.addCleanup(self.srv.cleanup)
        self.addCleanup(self.no_sanitizer_report)
        self.addCleanup(self.srv.stop)
        return self.srv

    def no_sanitizer_report(self):
        report = self.srv.sanitizer_report()
        self.assertIsNone(report, report)

    def most_fsyncs(self):
        r = subprocess.run(harness.command("status", "-c", "postie.conf"),
                           cwd=self.srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(rb"most fsyncs in one pass (\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        return int(m.group(1))

    def folders(self, user):
        return self.srv.path("mail", ".postie", "folders", user)

    def leftovers(self):
        top = self.srv.path("mail", ".postie", "folders")
        return [n for n in os.listdir(top) if n.startswith(".")] \
            if os.path.isdir(top) else []

    def check_whole(self, m, user):
        """A logged-in session m of user sees the folders of a first
        login, and the disk holds exactly them."""
        got = listed(m)
        self.assertEqual(set(got), {"INBOX"} | set(SPECIALS), got)
        for name, attr in SPECIALS.items():
            self.assertIn(attr, got[name])
        typ, data = m.lsub('""', "*")
        self.assertEqual(typ, "OK")
        self.assertEqual(len([d for d in data if d]), 5, data)
        base = self.folders(user)
        self.assertEqual(sorted(os.listdir(base)),
                         sorted([".postie"] + list(SPECIALS)))
        with open(os.path.join(base, ".postie", "subscriptions")) as f:
            self.assertEqual(f.read(), SUBSCRIBED)
        for name in SPECIALS:
            self.assertEqual(os.path.getsize(os.path.join(base, name)), 0)

    def test_first_logins_one_fsync_a_pass(self):
        srv = self.start(("alice", "bob", "carol"))
        self.assertEqual(self.most_fsyncs(), 0)
        # alice by LOGIN, bob by AUTHENTICATE PLAIN; carol never logs in.
        for user in ("alice", "bob"):
            m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=IO_TIMEOUT)
            try:
                if user == "alice":
                    m.login(user, PASSWORD)
                else:
                    m.authenticate("PLAIN", lambda _: "\0bob\0%s" % PASSWORD)
                self.check_whole(m, user)
            finally:
                m.logout()
            self.assertLessEqual(self.most_fsyncs(), 1)
        self.assertFalse(os.path.exists(self.folders("carol")))
        self.assertEqual(self.leftovers(), [])
        # A second login has nothing to make: no fsync at all.
        srv.stop()
        srv.start()
        srv.imap(user="alice").logout()
        self.assertEqual(self.most_fsyncs(), 0)

    def test_deep_create_one_fsync_a_pass(self):
        # CREATE of a name 8 levels deep makes its missing parents a
        # directory (and an fsync) a loop pass, then the folder.
        srv = self.start(("alice",))
        m = srv.imap(user="alice")
        try:
            typ, data = m.create("a/b/c/d/e/f/g/h")
            self.assertEqual(typ, "OK", data)
            self.assertLessEqual(self.most_fsyncs(), 1)
            got = listed(m)
            self.assertIn("a/b/c/d/e/f/g/h", got)
            self.assertIn("\\Noselect", got["a/b/c/d"])
            self.assertTrue(os.path.isfile(os.path.join(
                self.folders("alice"), *"abcdefgh")))
            typ, data = m.create("a/b/c/d/e/f/g/h")
            self.assertEqual(typ, "NO")
            self.assertIn(b"ALREADYEXISTS", data[0])
            typ, data = m.create("x/y/")
            self.assertEqual(typ, "OK", data)
            self.assertTrue(os.path.isdir(os.path.join(self.folders("alice"),
                                                       "x", "y")))
        finally:
            m.logout()

    def test_kill9_at_every_fsync_of_a_first_login(self):
        if harness.QEMU:
            raise unittest.SkipTest("strace would count qemu's system calls")
        if not shutil.which("strace"):
            raise unittest.SkipTest("strace not installed "
                                    "(tests/install-deps.sh installs it)")
        n = 16
        users = ["u%d" % k for k in range(1, n + 1)]
        srv = self.start(users)
        killed = []
        for k, user in enumerate(users, 1):
            tracer = subprocess.Popen(
                ["strace", "-p", str(srv.proc.pid), "-e", "trace=fsync",
                 "-e", "inject=fsync:signal=KILL:when=%d" % k, "-o", os.devnull],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            whole = False
            try:
                # strace says so on stderr once it is attached.
                line = tracer.stderr.readline().decode()
                self.assertIn("attached", line)
                try:
                    srv.imap(user=user).logout()
                    whole = True
                except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError):
                    whole = False
            finally:
                if whole:
                    tracer.terminate()
                tracer.wait(30 * SLOW)
                tracer.stderr.close()
            if whole:
                # This login needed fewer than k fsyncs: every step was
                # cut once.
                break
            srv.proc.wait(30 * SLOW)
            self.assertEqual(srv.proc.returncode, -9, srv.log()[-1000:])
            # No base, or a whole one (the kill came after the rename).
            base = self.folders(user)
            partial = not os.path.isdir(base)
            killed.append((k, partial))
            srv.stop()
            srv.start()
            m = srv.imap(user=user)
            try:
                self.check_whole(m, user)
            finally:
                m.logout()
            self.assertEqual(self.leftovers(), [])
        else:
            self.fail("a first login still made %d fsyncs" % n)
        # The first login of a fresh mail_dir syncs at least the setup
        # directory, its .postie, four folders, the subscriptions, two
        # directories and the rename: at least nine steps were cut.
        self.assertGreaterEqual(len(killed), 9, killed)
        # Every kill before the last left no base; the last came at the
        # fsync after the rename that published it whole.
        self.assertEqual([p for k, p in killed],
                         [True] * (len(killed) - 1) + [False], killed)


if __name__ == "__main__":
    unittest.main()
