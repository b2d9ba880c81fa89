"""The command line: `postie --help` and `postie help CMD`, unknown options,
`postie passwd` asking twice on a terminal, and `postie user` editing the
users file (comments, order and other fields kept; one rename) and testing
a login without a network client; a daemon reloaded after `user add`
takes the new login and refuses it after `user del`; adds run at once
lose nobody; `make install` puts the sendmail and mailq links where
other MTAs put theirs.
"""
import os
import pty
import select
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

import harness
from harness import IO_TIMEOUT, SLOW

COMMANDS = ("passwd", "user", "status", "sendmail", "mailq", "help")


def built(command):
    """Whether this build has the command (the others are left out of --help)."""
    need = {"passwd": "auth", "sendmail": "sendmail", "mailq": "sendmail",
            "user": "mbox"}.get(command)
    return need is None or need in harness.features()


def run(*args, stdin=b"", cwd=None):
    return subprocess.run(harness.command(*args), input=stdin, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60 * SLOW)


def on_terminal(args, lines):
    """Runs postie with a pseudo-terminal as stdin; types each line after
    the matching prompt. Returns (exit code, everything written)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(harness.command(*args)[0], harness.command(*args))
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + IO_TIMEOUT
    todo = list(lines)
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                # a prompt ends in ": " with echo off: answer it
                if todo and out.rstrip(b" ").endswith(b":"):
                    os.write(fd, todo.pop(0).encode() + b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


class HelpTest(harness.TestCase):
    def test_help_lists_every_command(self):
        for args in (["--help"], ["-h"], ["help"]):
            r = run(*args)
            self.assertEqual(r.returncode, 0, args)
            out = r.stdout.decode()
            for c in COMMANDS:
                if built(c):
                    self.assertIn("postie " + c, out, (args, c))
            self.assertIn("-t", out)

    def test_help_names_what_this_build_has(self):
        """The first line lists the services of this build (postie -V's
        features), and commands it lacks are not offered."""
        f = harness.features()
        out = run("--help").stdout.decode()
        parts = [("SMTP", "smtp"), ("submission", "submission"), ("POP3", "pop3"),
                 ("IMAP", "imap"), ("sendmail", "sendmail"), ("relay", "relay")]
        want = [name for name, feature in parts if feature in f]
        first = out.splitlines()[0]
        self.assertEqual(first, "postie — a small mail server" +
                         (" (%s)" % ", ".join(want) if want else ""))
        for c, feature in (("passwd", "auth"), ("sendmail", "sendmail"),
                           ("mailq", "sendmail")):
            self.assertEqual("  postie " + c in out, feature in f, c)

    @harness.need_feature("mbox")
    def test_help_of_one_command(self):
        r = run("help", "user")
        self.assertEqual(r.returncode, 0)
        # passwd and test are logins' (CONFIG_AUTH): offered only with them
        logins = "auth" in harness.features()
        for sub in ("add NAME", "del NAME", "list", "passwd NAME", "test NAME"):
            login_only = sub in ("passwd NAME", "test NAME")
            self.assertEqual(sub in r.stdout.decode(), logins or not login_only, sub)
        # each exit code the command uses (StatusTest, UserTest) is named
        self.assertIn("77 when the file", r.stdout.decode())
        self.assertIn("69 with no daemon; 77", run("help", "status").stdout.decode())
        r = run("help", "nosuch")
        self.assertEqual(r.returncode, 64)
        self.assertIn("no command 'nosuch'", r.stderr.decode())

    def test_help_of_a_command_not_built(self):
        """A command this build lacks has no help text, only the option
        it needs; the others' help names only what the build has."""
        f = harness.features()
        for c, feature, option in (("passwd", "auth", "CONFIG_AUTH"),
                                   ("sendmail", "sendmail", "CONFIG_SENDMAIL"),
                                   ("mailq", "sendmail", "CONFIG_SENDMAIL"),
                                   ("user", "mbox", "CONFIG_MAILBOXES")):
            r = run("help", c)
            if feature in f:
                self.assertEqual(r.returncode, 0, c)
                continue
            self.assertEqual(r.returncode, 69, c)
            self.assertEqual(r.stdout, b"", c)
            self.assertIn("postie help: %s is not in this build (needs %s)" % (c, option),
                          r.stderr.decode())
        daemon = run("help", "daemon").stdout.decode()
        self.assertEqual("USR1 runs the queue" in daemon, "relay" in f)
        status = run("help", "status").stdout.decode()
        self.assertEqual("the queue" in status, "relay" in f)
        self.assertEqual("TLS sessions" in status, "tls" in f)

    def test_unknown_option_shows_usage(self):
        for opt in ("--bogus", "-Q"):
            r = run(opt)
            self.assertEqual(r.returncode, 64, opt)
            err = r.stderr.decode()
            self.assertIn("unknown option", err)
            self.assertIn("postie help", err)


@harness.need_feature("auth")
class PasswdTest(harness.TestCase):
    def users_check(self, hash_, password):
        """`postie user test` against a users file holding hash_."""
        d = harness.Server(users=())
        try:
            d.write("users", "u:%s\n" % hash_)
            conf = d.write("c.conf", d.config(harness.free_port()))
            return run("user", "-c", conf, "test", "u", stdin=password.encode(),
                       cwd=d.dir).returncode
        finally:
            d.cleanup(force=True)

    def test_asks_twice_on_a_terminal(self):
        rc, out = on_terminal(["passwd"], ["s3cret pass", "s3cret pass"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.count("password:") + out.count("again:"), 2, out)
        self.assertNotIn("s3cret", out)     # no echo
        hash_ = [w for w in out.split() if w.startswith("$6$")][0]
        self.assertEqual(self.users_check(hash_, "s3cret pass"), 0)
        self.assertEqual(self.users_check(hash_, "other"), 1)

    def test_different_answers_change_nothing(self):
        rc, out = on_terminal(["passwd"], ["one", "two"])
        self.assertEqual(rc, 65, out)
        self.assertIn("differ", out)
        self.assertNotIn("$6$", out)

    def test_stdin_once(self):
        r = run("passwd", stdin=b"piped\n")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith(b"$6$"))
        self.assertEqual(self.users_check(r.stdout.decode().strip(), "piped"), 0)


@harness.need_feature("mbox")
class UserTest(harness.TestCase):
    FILE = ("# the users of this box\n"
            "\n"
            "bob::1000:1000::/home/bob\n"
            "   # the printer\n"
            "printer:\n")

    def setUp(self):
        super().setUp()
        self.srv = harness.Server(users=())
        self.srv.write("users", self.FILE, mode=0o640)
        self.conf = self.srv.write("postie.conf",
                                   self.srv.config(harness.free_port()))

    def tearDown(self):
        self.srv.cleanup(force=True)
        super().tearDown()

    def user(self, *args, stdin=b""):
        return run("user", "-c", self.conf, *args, stdin=stdin, cwd=self.srv.dir)

    def users_file(self):
        with open(self.srv.path("users")) as f:
            return f.read()

    def test_add_del_keep_comments_and_order(self):
        r = self.user("add", "Cam", "--no-login")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.users_file(), self.FILE + "cam:\n")
        self.assertEqual(self.user("del", "printer").returncode, 0)
        self.assertEqual(self.users_file(),
                         self.FILE.replace("printer:\n", "") + "cam:\n")
        self.assertEqual(os.stat(self.srv.path("users")).st_mode & 0o777, 0o640)
        r = self.user("list")
        self.assertEqual(r.stdout.decode().split("\n")[:2], ["bob", "cam"]
                         if "auth" not in harness.features()
                         else ["bob  (no login)", "cam  (no login)"])
        # errors change nothing
        before = self.users_file()
        self.assertNotEqual(self.user("add", "bob", "--no-login").returncode, 0)
        self.assertNotEqual(self.user("del", "nobody").returncode, 0)
        self.assertNotEqual(self.user("add", "bad/name", "--no-login").returncode, 0)
        # bob.lock's INBOX would be bob's dotlock (outside attack, 07)
        r = self.user("add", "bob.lock", "--no-login")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"bob.lock", r.stderr)
        self.assertEqual(self.users_file(), before)
        self.assertEqual([f for f in os.listdir(self.srv.dir) if ".tmp" in f], [])

    @harness.need_feature("auth")
    def test_passwd_keeps_other_fields_and_test_checks_it(self):
        r = self.user("passwd", "bob", stdin=b"n3w\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = self.users_file().split("\n")
        self.assertTrue(lines[2].startswith("bob:$6$"), lines)
        self.assertTrue(lines[2].endswith(":1000:1000::/home/bob"), lines)
        self.assertEqual(lines[:2] + lines[3:], self.FILE.split("\n")[:2] +
                         self.FILE.split("\n")[3:])
        self.assertEqual(self.user("test", "bob", stdin=b"n3w\n").returncode, 0)
        r = self.user("test", "bob", stdin=b"wrong\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("wrong password", r.stdout.decode())
        r = self.user("test", "printer", stdin=b"x\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot log in", r.stdout.decode())
        self.assertEqual(self.user("test", "nobody", stdin=b"x\n").returncode, 1)

    def test_not_writable_is_a_permission_problem(self):
        """A user who may not write the users file or its folder gets 77
        (EX_NOPERM) and who may, not 65 (bad data); the file is unchanged."""
        if os.geteuid() != 0 or not shutil.which("su") or not pwd_exists("nobody"):
            self.skipTest("needs root, su and the user nobody")
        os.chmod(self.srv.dir, 0o755)
        os.chmod(self.srv.path("users"), 0o644)
        os.chmod(self.conf, 0o644)
        cmd = " ".join(harness.command("user", "-c", self.conf, "add", "eve",
                                       "--no-login"))
        r = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", cmd],
                           input=b"pw\n", cwd=self.srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn(b"Permission denied", r.stderr)
        self.assertIn(b"run it as root or as the owner of", r.stderr)
        self.assertEqual(self.users_file(), self.FILE)
        r = self.user("add", "bad.lock", "--no-login")         # bad data stays 65
        self.assertEqual(r.returncode, 65, r.stderr)

    @harness.need_feature("auth")
    def test_daemon_takes_the_new_user_on_reload(self):
        srv = self.srv
        srv.extra = "plaintext_auth_networks 127.0.0.1\n"
        srv.start()
        try:
            conf = srv.path("postie.conf")
            r = run("user", "-c", conf, "add", "carol", stdin=b"carol-pw\n",
                    cwd=srv.dir)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(srv.reload())
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=IO_TIMEOUT) as s:
                s.ehlo()
                s.login("carol", "carol-pw")
            r = run("user", "-c", conf, "del", "carol", cwd=srv.dir)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(srv.reload())
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=IO_TIMEOUT) as s:
                s.ehlo()
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    s.login("carol", "carol-pw")
        finally:
            srv.stop()


    def test_concurrent_adds_lose_nobody(self):
        """Many `user add` at once, and a daemon reloading meanwhile: every
        user is in the file at the end and no reload read a broken one."""
        srv = self.srv
        srv.start()
        names = ["u%02d" % i for i in range(24)]
        procs = []
        try:
            for n in names:
                procs.append(subprocess.Popen(
                    harness.command("user", "-c", self.conf, "add", n, "--no-login"),
                    cwd=srv.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE))
            # reloads while they run (each waits for its outcome: bounded)
            reloads = [srv.reload() for _ in range(3)]
            for n, p in zip(names, procs):
                out, err = p.communicate(timeout=60 * SLOW)
                self.assertEqual(p.returncode, 0, (n, err))
            self.assertEqual(reloads, [True] * 3, srv.log()[-1000:])
            self.assertTrue(srv.reload(), srv.log()[-1000:])
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
            srv.stop()
        text = self.users_file()
        self.assertTrue(text.startswith(self.FILE), text)
        added = text[len(self.FILE):].split("\n")
        self.assertEqual(sorted(added[:-1]), [n + ":" for n in names], text)
        self.assertEqual([f for f in os.listdir(srv.dir) if ".tmp" in f], [])
        self.assertNotIn("reload failed", srv.log())


class StatusTest(harness.TestCase):
    """`postie status` asks the running daemon over its root-only socket."""

    def status(self, srv, user=None):
        cmd = harness.command("status", "-c", "postie.conf")
        if user:
            cmd = ["su", user, "-s", "/bin/sh", "-c", " ".join(cmd)]
        return subprocess.run(cmd, cwd=srv.dir, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60 * SLOW)

    def test_report(self):
        relay = "relay" in harness.features()
        extra = ""
        if relay:
            # everything remote goes to a port where nothing listens
            extra = "relay_networks 127.0.0.0/8\nsmarthost 127.0.0.1:9 plain\n"
        srv = harness.Server(extra=extra)
        srv.write("postie.conf", srv.config(harness.free_port()))
        r = self.status(srv)
        self.assertEqual(r.returncode, 69, r.stderr)        # no daemon yet
        self.assertIn(b"no daemon answers", r.stderr)
        srv.start()
        try:
            mode = os.stat(srv.path("spool", "postie.ctl")).st_mode
            self.assertEqual(mode & 0o777, 0o600)
            with srv.dialog() as d:
                d.ehlo()
                if relay:
                    code, _ = d.send_mail("a@test.lan", ["x@remote.example"],
                                          harness.crlf("Subject: s\n\nx\n"))
                    self.assertEqual(code, 250)
                    deadline = time.monotonic() + IO_TIMEOUT
                    while "deferred" not in srv.log() and time.monotonic() < deadline:
                        time.sleep(0.1)
                r = self.status(srv)            # while the session is open
            self.assertEqual(r.returncode, 0, r.stderr)
            out = r.stdout.decode()
            self.assertRegex(out, r"postie \S+, pid %d, up \d+s" % srv.proc.pid)
            self.assertRegex(out, r"sessions: 1 of 64 slots in use")
            self.assertRegex(out, r"\n  smtp +1\n")
            if "tls" in harness.features():
                self.assertRegex(out, r"tls: 0 of \d+ sessions in use")
            import tlsutil
            bufs = tlsutil.kconfig("CONN_STREAM_BUFS", 2)
            if bufs and {"pop3", "imap"} & harness.features():
                self.assertIn("stream buffers: 0 of %d lent" % bufs, out)
            else:
                self.assertNotIn("stream buffers", out)     # lent to POP3/IMAP only
            if relay:
                self.assertRegex(out, r"queue: 1 message\(s\), oldest \d+s \(since ")
                self.assertRegex(out, r"last relay error: \d+s ago: \S+: <?x@remote.example")
            if "auth" in harness.features():
                self.assertIn("bans: 0 active", out)
            if os.geteuid() == 0 and shutil.which("su") and pwd_exists("nobody"):
                os.chmod(srv.dir, 0o755)
                os.chmod(srv.path("postie.conf"), 0o644)
                r = self.status(srv, user="nobody")
                self.assertEqual(r.returncode, 77, r.stderr)
                self.assertIn(b"only the user that started the daemon", r.stderr)
        finally:
            srv.stop()
            self.assertFalse(os.path.exists(srv.path("spool", "postie.ctl")))
            srv.cleanup()


HOST_BIN = os.path.join(harness.REPO, "build", "host", "postie")


@unittest.skipIf(harness.QEMU or os.path.realpath(harness.BIN) != os.path.realpath(HOST_BIN),
                 "make install installs the host build (build/host/postie)")
class InstallTest(harness.TestCase):
    """`make install` puts the links where Debian's Postfix and the OpenWrt
    package put theirs: mailq in bin (in a user's PATH), sendmail in sbin
    and /usr/lib/sendmail; relative, so they work inside DESTDIR too."""

    def install(self, *args):
        d = tempfile.mkdtemp(prefix="postie-install-")
        self.addCleanup(shutil.rmtree, d, True)
        r = subprocess.run(["make", "-s", "install", "DESTDIR=" + d] + list(args),
                           cwd=harness.REPO, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout.decode("utf-8", "replace"))
        return d

    def test_links_where_users_and_scripts_look(self):
        usr = os.path.join(self.install(), "usr")
        postie = os.path.join(usr, "sbin", "postie")
        for link in ("sbin/sendmail", "bin/mailq", "lib/sendmail"):
            path = os.path.join(usr, link)
            self.assertTrue(os.path.islink(path), link)
            self.assertFalse(os.path.isabs(os.readlink(path)), link)
            self.assertEqual(os.path.realpath(path), os.path.realpath(postie), link)
        self.assertFalse(os.path.lexists(os.path.join(usr, "sbin", "mailq")))
        for man in ("man8/postie.8", "man5/postie.conf.5"):
            self.assertTrue(os.path.isfile(os.path.join(usr, "share", "man", man)), man)
        if "sendmail" in harness.features():
            srv = harness.Server()
            try:
                srv.write("postie.conf", srv.config(harness.free_port()))
                r = subprocess.run([os.path.join(usr, "bin", "mailq"), "-C", "postie.conf"],
                                   cwd=srv.dir, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=60 * SLOW)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(b"Mail queue is empty", r.stdout)
            finally:
                srv.cleanup()

    def test_other_prefix_and_no_links(self):
        d = self.install("PREFIX=/usr/local")
        self.assertTrue(os.path.islink(os.path.join(d, "usr/local/bin/mailq")))
        self.assertFalse(os.path.lexists(os.path.join(d, "usr/lib/sendmail")))
        self.assertFalse(os.path.lexists(os.path.join(d, "usr/local/lib/sendmail")))
        d = self.install("SENDMAIL_LINKS=0")
        links = [os.path.join(p, f) for p, _, fs in os.walk(d) for f in fs
                 if os.path.islink(os.path.join(p, f))]
        self.assertEqual(links, [])
        self.assertTrue(os.path.isfile(os.path.join(d, "usr/sbin/postie")))


def pwd_exists(name):
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False

if __name__ == "__main__":
    unittest.main()
