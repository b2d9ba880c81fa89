"""RENAME of a mailbox with children is crash-safe (store/folders.c): the
mbox, its index files and NAME.sbd/ are moved one after the other under
an intent file (BASE/.rename, synced first, removed last) that the next
login finishes. Proved by killing the daemon (SIGKILL, by strace's fault
injection) at the K-th fsync or rename after RENAME A Z is sent, for
K = 1, 2, ... until a RENAME needs fewer; after each kill and a restart
the tree (A, A/B, A/B/C, one message each) is whole under one name, no
intent is left, and the next RENAME goes on from there."""
import imaplib
import os
import re
import shutil
import subprocess
import unittest

import harness
import tlsutil
from harness import SLOW
from test_imap import IMAPServer, have_imap
from test_imap_folders import listed

SUBS = ["", "/B", "/B/C"]
CALLS = "fsync,rename,renameat,renameat2"


class RenameCrash(harness.TestCase):

    def start(self):
        if not have_imap():
            raise unittest.SkipTest("imap not in this build")
        h = tlsutil.postie_passwd() if tlsutil.have("auth") else ""
        self.srv = IMAPServer(users={"alice": h},
                              extra="plaintext_auth_networks 127.0.0.1/32\n")
        self.srv.start()
        self.addCleanup(self.srv.cleanup)
        self.addCleanup(self.no_sanitizer_report)
        self.addCleanup(self.srv.stop)
        return self.srv

    def no_sanitizer_report(self):
        report = self.srv.sanitizer_report()
        self.assertIsNone(report, report)

    def messages(self, m, name):
        typ, data = m.status('"%s"' % name, "(MESSAGES)")
        if typ != "OK":
            return None
        return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))

    def where(self, m):
        """The name holding the whole tree; fails on a split one."""
        got = listed(m)
        st = {n + s: self.messages(m, n + s) for n in "AZ" for s in SUBS}
        for src, dst in (("A", "Z"), ("Z", "A")):
            if all(st[src + s] == 1 for s in SUBS) and \
                    all(st[dst + s] is None for s in SUBS):
                self.assertNotIn(dst, got)
                return src
        self.fail("tree split: %r %r" % (st, got))

    def test_kill9_at_every_step_of_a_rename(self):
        if harness.QEMU:
            raise unittest.SkipTest("strace would count qemu's system calls")
        if not shutil.which("strace"):
            raise unittest.SkipTest("strace not installed "
                                    "(tests/install-deps.sh installs it)")
        srv = self.start()
        m = srv.imap(user="alice")
        for f in ("A", "A/B", "A/B/C"):
            self.assertEqual(m.create(f)[0], "OK")
            msg = b"Subject: in %s\r\n\r\nbody\r\n" % f.encode()
            self.assertEqual(m.append(f, None, None, msg)[0], "OK")
        src = self.where(m)
        base = srv.path("mail", ".postie", "folders", "alice")
        kills = 0
        for k in range(1, 40):
            dst = "Z" if src == "A" else "A"
            tracer = subprocess.Popen(
                ["strace", "-p", str(srv.proc.pid), "-e", "trace=" + CALLS,
                 "-e", "inject=%s:signal=KILL:when=%d" % (CALLS, k),
                 "-o", os.devnull],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            whole = False
            try:
                self.assertIn("attached", tracer.stderr.readline().decode())
                try:
                    whole = m.rename(src, dst)[0] == "OK"
                except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError):
                    whole = False
            finally:
                if whole:
                    tracer.terminate()
                tracer.wait(30 * SLOW)
                tracer.stderr.close()
            if whole:
                self.assertEqual(self.where(m), dst)
                self.assertFalse(os.path.exists(os.path.join(base, ".rename")))
                m.logout()
                break
            srv.proc.wait(30 * SLOW)
            self.assertEqual(srv.proc.returncode, -9, srv.log()[-1000:])
            kills += 1
            srv.stop()
            srv.start()
            m = srv.imap(user="alice")
            src = self.where(m)     # whole, under one name or the other
            self.assertFalse(os.path.exists(os.path.join(base, ".rename")))
        else:
            self.fail("a RENAME still made 40 fsyncs and renames")
        # strace counts each call on its own: the 7 fsyncs (the intent's
        # file and entry, the mbox's two directories, NAME.sbd's two, the
        # intent's removal) were each cut, and so were the renames.
        self.assertGreaterEqual(kills, 7, kills)


if __name__ == "__main__":
    unittest.main()
