"""The spool against its own users and against a second daemon: the
run_as user's symlinks in spool_dir are refused by the root daemon (never
followed for a chown or chmod), an accepted message is never overwritten
by a later one, two daemons never share a spool, and maildrop file names
reach the log escaped."""
import os
import stat
import subprocess
import tempfile
import time

import harness
from harness import SLOW, need_feature, token
from test_sendmail_users import NOBODY, need_root, nobody_uid, wait_for


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
        # postie -t predicts it (it said OK: new-user finding 15)
        t = subprocess.run(harness.command("-t", "-c", "postie.conf"),
                           cwd=srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30 * SLOW)
        self.assertEqual(t.returncode, 1, t.stdout)
        self.assertRegex(t.stdout.decode(), r"postie\.conf:\d+: spool_dir: "
                         r"\S*spool/maildrop is a symlink, not a directory")
        with self.assertRaises(harness.StartError) as cm:
            srv.start()
        self.assertIn("spool/maildrop is a symlink", str(cm.exception))
        st = os.stat(victim)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o755))


@need_feature("sendmail")
class QueueNames(harness.TestCase):
    """The maildrop pickup against names already in the queue."""

    def setUp(self):
        super().setUp()
        # A smarthost where nothing listens: remote mail waits in the queue.
        self.srv = harness.Server(extra="smarthost 127.0.0.1:9 plain\n").start()

    def tearDown(self):
        self.srv.stop()
        self.srv.cleanup()
        super().tearDown()

    def send(self, t):
        p = subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-i",
                                           "far@remote.test"),
                           cwd=self.srv.dir, input=("Subject: %s\n\n%s\n" % (t, t))
                           .encode(), stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        return wait_for("the queue", lambda: [
            p for p in self.srv.anywhere(t) if p.startswith("spool/queue/")])[0]

    def test_pickup_never_replaces_a_queued_file(self):
        """A restarted daemon with the same pid (pid 1 in a namespace)
        once reused SECONDS.PID.mN ids; queued files under every such
        name for the next minute must all survive the next pickup."""
        srv = self.srv
        first = self.send(token())
        with open(srv.path(first), "rb") as f:
            data = f.read()
        now, pid = int(time.time()), srv.proc.pid
        planted = []
        for t in range(now - 2, now + 60):
            for n in (1, 2):
                p = srv.path("spool", "queue", "%d.%d.m%d" % (t, pid, n))
                if not os.path.exists(p):
                    with open(p, "wb") as f:
                        f.write(data)
                    planted.append(p)
        t2 = token()
        second = self.send(t2)
        self.assertFalse(srv.path(second) in planted, second)
        for p in planted:
            with open(p, "rb") as f:
                self.assertEqual(f.read(), data, p)


@need_feature("sendmail")
class MaildropLog(harness.TestCase):
    def test_file_name_escaped_in_log(self):
        srv = harness.Server(extra="smarthost 127.0.0.1:9 plain\n").start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        name = "1.2.3.\x1b[31mRED\npostie: conn 7 203.0.113.9: forged"
        with open(srv.path("spool", "maildrop", name), "w") as f:
            f.write("x")
        wait_for("the set-aside line", lambda: "refused" in srv.log())
        log = srv.log()
        self.assertNotIn("\x1b", log)
        self.assertNotIn("\npostie: conn 7", log)
        shown = "1.2.3.\\x1b[31mRED\\x0apostie: conn 7 203.0.113.9: forged"
        self.assertIn("maildrop: %s from uid 0 refused: " % shown, log)
        self.assertIn("; moved to ./spool/bad/%s\n" % shown, log)
        self.assertEqual(os.listdir(srv.path("spool", "bad")), [name])


class OneDaemonPerSpool(harness.TestCase):
    @harness.need_feature("relay")
    def test_second_daemon_refused(self):
        """No `listen` (the alerts set-up): only the spool's lock stops a
        second daemon from delivering the same queue."""
        srv = harness.Server()
        self.addCleanup(srv.cleanup)
        srv.write("postie.conf", "hostname box.test.lan\n"
                  "mail_dir ./mail\nspool_dir ./spool\n"
                  "local_domains test.lan\n")
        first = subprocess.Popen(harness.command("-c", "postie.conf"),
                                 cwd=srv.dir, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        self.addCleanup(first.wait, 30 * SLOW)
        self.addCleanup(first.terminate)
        wait_for("postie.pid", lambda: open(srv.path("spool", "postie.pid"))
                 .read().strip() == str(first.pid)
                 if os.path.exists(srv.path("spool", "postie.pid")) else False)
        p = subprocess.run(harness.command("-c", "postie.conf"), cwd=srv.dir,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30 * SLOW)
        out = p.stdout.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("another postie (pid %d) runs on spool_dir ./spool"
                      % first.pid, out)
        self.assertIsNone(first.poll())
        with open(srv.path("spool", "postie.pid")) as f:
            self.assertEqual(f.read(), "%d\n" % first.pid)
