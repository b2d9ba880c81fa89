"""The spool against its own users and against a second daemon: the
run_as user's symlinks in spool_dir are refused by the root daemon (never
followed for a chown or chmod), an accepted message is never overwritten
by a later one, two daemons never share a spool, and maildrop file names
reach the log escaped."""
import os
import stat
import subprocess
import tempfile

import harness
from harness import SLOW, need_feature
from test_sendmail_users import NOBODY, need_root, nobody_uid


@need_feature("sendmail")
class RunAsSymlinks(harness.TestCase):
    def setUp(self):
        super().setUp()
        need_root(self)
        self.srv = harness.Server(extra="run_as nobody\n")
        os.chown(self.srv.path("mail"), nobody_uid(), -1)
        os.chmod(self.srv.dir, 0o711)

    def tearDown(self):
        self.srv.stop()
        self.srv.cleanup()
        super().tearDown()

    def test_maildrop_symlink_refused(self):
        srv = self.srv.start()
        srv.stop()
        # A root-owned directory outside the spool (start() removes
        # srv.dir when the daemon fails).
        victim = tempfile.mkdtemp(prefix="postie-victim-")
        self.addCleanup(os.rmdir, victim)
        os.chmod(victim, 0o755)
        # What the run_as user (a compromised daemon) may do in its spool.
        p = subprocess.run(NOBODY + ["sh", "-c", "mv spool/maildrop spool/md.old"
                                     " && ln -s " + victim + " spool/maildrop"],
                           cwd=srv.dir, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        with self.assertRaises(harness.StartError) as cm:
            srv.start()
        self.assertIn("spool/maildrop is a symlink", str(cm.exception))
        st = os.stat(victim)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o755))
