"""`sendmail` as scripts and users expect it: any local user may send
(spool_dir 0711, run for real as `nobody` with setpriv) while the queue
stays unreadable to them; sendmail before the daemon ever ran makes the
spool (or says what to do); a local submission gets a Received: line and
bare names completed with the hostname (never the masquerade domain); the
README's alert example, taken from README.md, delivers a body."""
import os
import re
import shlex
import stat
import subprocess
import tempfile
import time

import harness
from harness import HOSTNAME, SLOW, need_feature, token
from test_sendmail import Drop

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "README.md")


def nobody_uid():
    import pwd
    return pwd.getpwnam("nobody").pw_uid


def run(cwd, args, stdin=b"", as_nobody=False, name="sendmail"):
    if isinstance(stdin, str):
        stdin = stdin.encode()
    cmd = (NOBODY if as_nobody else []) + harness.command(name, *args)
    p = subprocess.run(cmd, cwd=cwd, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30 * SLOW)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def run_out(cwd, args):
    """(exit code, stdout) of a command as root."""
    p = subprocess.run(harness.command("sendmail", *args), cwd=cwd,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30 * SLOW)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def wait_for(what, fn, timeout=15):
    """fn() until it is true; bounded in count and time."""
    deadline = time.monotonic() + timeout * SLOW
    for _ in range(int(timeout * SLOW / 0.05) + 1):
        r = fn()
        if r or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not r:
        raise AssertionError("timed out waiting for " + what)
    return r


def need_root(self):
    if os.geteuid() != 0:
        self.skipTest("needs root to run commands as another user")
    if not os.path.exists("/usr/bin/setpriv"):
        self.skipTest("no setpriv")


@need_feature("sendmail")
@need_feature("aliases")   # root: alice
class AnyUser(harness.TestCase):
    """The daemon as root (or run_as nobody) and sendmail as `nobody`."""

    def setUp(self):
        super().setUp()
        need_root(self)
        self.srv = None

    def tearDown(self):
        if self.srv is not None:
            started = self.srv.proc is not None
            rc = self.srv.stop()
            log = self.srv.log()
            self.srv.cleanup()
            if started:
                self.assertEqual(rc, 0, log[-1500:])
        super().tearDown()

    def server(self, **kw):
        extra = kw.pop("extra", "")
        # A smarthost where nothing listens: remote mail waits in the queue.
        self.srv = harness.Server(aliases="root: alice\n",
                                  extra="smarthost 127.0.0.1:9 plain\n" + extra,
                                  **kw)
        os.chmod(self.srv.dir, 0o711)   # a user can reach ./spool, as /var
        return self.srv

    def test_any_user_sends_queue_stays_private(self):
        srv = self.server().start()
        spool = srv.path("spool")
        self.assertEqual(mode(spool), 0o711)
        self.assertEqual(mode(srv.path("spool", "maildrop")), 0o1733)
        self.assertEqual(mode(srv.path("spool", "queue")), 0o700)
        self.assertEqual(mode(srv.path("spool", "tmp")), 0o700)
        t = token()
        rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "alice@test.lan"],
                      "Subject: %s\n\nfrom nobody\n" % t, as_nobody=True)
        self.assertEqual(rc, 0, err)
        m = wait_for("delivery", lambda: srv.find("alice", t))[0]
        rcv = m.headers("Received")[0]
        self.assertRegex(rcv, r"^\(from nobody, uid %d\) by %s \(postie "
                         r"sendmail\) id \S+; \w{3}, " % (nobody_uid(),
                                                          re.escape(HOSTNAME)))
        # A remote message waits in the queue, out of nobody's reach.
        t2 = token()
        rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "far@remote.test"],
                      "Subject: %s\n\nsecret %s\n" % (t2, t2), as_nobody=True)
        self.assertEqual(rc, 0, err)
        queued = wait_for("the queue", lambda: [
            p for p in srv.anywhere(t2) if p.startswith("spool/queue/")])
        qfile = queued[0]
        self.assertEqual(oct(mode(srv.path("spool", "queue"))), oct(0o700))
        for cmd in (["ls", "spool/queue"], ["cat", qfile],
                    ["ls", "spool/maildrop"], ["ls", "spool/tmp"]):
            p = subprocess.run(NOBODY + cmd, cwd=srv.dir, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * SLOW)
            self.assertNotEqual(p.returncode, 0, cmd)
            self.assertIn(b"Permission denied", p.stderr, cmd)
            self.assertNotIn(t2.encode(), p.stdout)

    def test_before_the_daemon_ever_ran(self):
        """Root's sendmail makes the spool for the run_as user; the daemon,
        started later, delivers what waited."""
        srv = self.server(extra="run_as nobody\n", create_mail_dir=False)
        srv.write("postie.conf", srv.config(harness.free_port()))
        spool = srv.path("spool")
        self.assertFalse(os.path.exists(spool))
        t = token()
        rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "root"],
                      "Subject: %s\n\nearly\n" % t)
        self.assertEqual(rc, 0, err)
        for p, want in ((spool, 0o711), (srv.path("spool", "maildrop"), 0o1733)):
            st = os.stat(p)
            self.assertEqual(stat.S_IMODE(st.st_mode), want, p)
            self.assertEqual(st.st_uid, nobody_uid(), p)
        srv.start()
        wait_for("delivery", lambda: srv.find("alice", t))
        self.assertEqual(os.stat(srv.path("mail", "alice")).st_uid, nobody_uid())

    def test_user_cannot_make_the_spool(self):
        srv = self.server()
        srv.write("postie.conf", srv.config(harness.free_port()))
        rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "alice@test.lan"],
                      "Subject: x\n\nx\n", as_nobody=True)
        self.assertEqual(rc, 75, err)
        self.assertIn("start the daemon once", err)
        self.assertIn("spool_dir ./spool", err)
        self.assertFalse(os.path.exists(srv.path("spool")))

    def test_sender_of_a_user_is_the_user(self):
        """A user's -f may only name the user (LOGIN@ a local domain or
        the masquerade address); root may name anybody."""
        srv = self.server()
        srv.write("postie.conf", srv.config(harness.free_port()))
        rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "root"], "Subject: x\n\nx\n")
        self.assertEqual(rc, 0, err)            # makes the spool
        before = set(os.listdir(srv.path("spool", "maildrop")))
        for sender in ("ceo@bank.example", "alice@test.lan", "<>"):
            rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "-f", sender, "root"],
                          "Subject: x\n\nx\n", as_nobody=True)
            self.assertEqual(rc, 77, (sender, err))
            self.assertIn("uid %d may not send as <%s>: only as itself, nobody@ a "
                          "local domain (sender_login_check" % (
                              nobody_uid(), sender.strip("<>")), err)
        for sender in ("nobody@test.lan", "nobody@" + HOSTNAME):
            rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "-f", sender, "root"],
                          "Subject: x\n\nx\n", as_nobody=True)
            self.assertEqual(rc, 0, err)
        self.assertEqual(len(set(os.listdir(srv.path("spool", "maildrop"))) - before), 2)

    def test_forged_maildrop_files_are_set_aside(self):
        """A local user may write into the maildrop without sendmail.
        What the daemon takes from a file is checked against the file's
        owner: the U line, the Received: line sendmail puts first, the
        sender. A file that lies, or is not a maildrop file at all, is
        moved to spool_dir/bad/ (0700) with a log line saying why, and
        nothing of it is delivered."""
        srv = self.server()
        srv.write("postie.conf", srv.config(harness.free_port()))
        drop = srv.path("spool", "maildrop")
        t0 = token("root")
        # root (sendmail makes the spool) may use any sender.
        rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "-f", "ceo@bank.example",
                                "alice@test.lan"], "Subject: %s\n\nx\n" % t0)
        self.assertEqual(rc, 0, err)

        def submit(t):
            names = set(os.listdir(drop))
            rc, err = run(srv.dir, ["-C", "postie.conf", "-i", "alice@test.lan"],
                          "Subject: %s\n\nfrom nobody\n" % t, as_nobody=True)
            self.assertEqual(rc, 0, err)
            new = set(os.listdir(drop)) - names
            self.assertEqual(len(new), 1, new)
            return new.pop()

        def tamper(name, fn):
            path = os.path.join(drop, name)
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "r+b") as f:        # the owner stays nobody
                f.truncate(0)
                f.write(fn(data))
            self.assertEqual(os.stat(path).st_uid, nobody_uid())

        def forge_received(d):
            env, _, msg = d.partition(b"\nD\n")
            rest = msg.split(b"\n", 3)[3]      # drop sendmail's 3 lines
            return env + b"\nD\nReceived: from trusted.example by mx.bank.example; " \
                b"Sat, 5 Dec 2026 10:00:00 +0000\n" + rest

        def add_received(d, name):
            env, _, msg = d.partition(b"\nD\n")
            fake = ("Received: (from root, uid 0)\n\tby %s (postie sendmail) id %s;"
                    "\n\tSat, 5 Dec 2026 10:00:00 +0000\n" % (HOSTNAME, name)).encode()
            return env + b"\nD\n" + fake + msg

        good = token("good")
        good_name = submit(good)
        cases = {}
        for kind, why in (
                ("from", r"sender <ceo@bank\.example> is not the owner's own address"),
                ("uid", r"the U line says uid 0, the file belongs to uid %d" % nobody_uid()),
                ("received", r"the message does not start with the Received: line"),
                ("injected", r"the message does not start with the Received: line"),
                ("junk", r"no envelope|an envelope line sendmail does not write")):
            t = token(kind)
            name = submit(t)
            cases[kind] = (t, name, why)
        uid = nobody_uid()
        tamper(cases["from"][1], lambda d: re.sub(rb"(?m)^F .*$", b"F ceo@bank.example", d, 1))
        tamper(cases["uid"][1], lambda d: re.sub(rb"(?m)^U \d+$", b"U 0", d, 1))
        tamper(cases["received"][1], forge_received)
        tamper(cases["injected"][1], lambda d: add_received(d, cases["injected"][1]))
        tamper(cases["junk"][1], lambda d: b"From: me\nSubject: no envelope\n\n" + d)

        srv.start()
        wait_for("the good message", lambda: srv.find("alice", good))
        wait_for("root's message", lambda: srv.find("alice", t0))
        self.assertEqual(srv.find("alice", t0)[0].sender, "ceo@bank.example")
        bad = srv.path("spool", "bad")
        wait_for("five files in bad/", lambda: os.path.isdir(bad) and
                 len(os.listdir(bad)) == 5)
        self.assertEqual(mode(bad), 0o700)
        log = srv.log()
        for kind, (t, name, why) in cases.items():
            self.assertIn(name, os.listdir(bad), kind)
            self.assertRegex(log, r"maildrop: %s from uid %d refused: (%s)[^\n]*; "
                             r"moved to \S*spool/bad/%s\n" % (
                                 re.escape(name), uid, why, re.escape(name)))
            self.assertEqual([p for p in srv.anywhere(t)], ["spool/bad/" + name], kind)
        self.assertNotIn(good_name, os.listdir(bad))
        self.assertEqual(os.listdir(drop), [])
        rc, out = run_out(srv.dir, ["-C", "postie.conf", "-bp"])
        self.assertEqual(rc, 0, out)
        self.assertIn("-- 5 maildrop files refused, kept in ./spool/bad (the log "
                      "says why)", out)

    def test_private_spool_of_an_older_version(self):
        """A 0700 spool_dir (postie before this change): a clear error,
        and the next start of the daemon opens it."""
        srv = self.server()
        os.mkdir(srv.path("spool"), 0o700)
        os.mkdir(srv.path("spool", "maildrop"))
        os.chmod(srv.path("spool", "maildrop"), 0o1733)
        srv.write("postie.conf", srv.config(harness.free_port()))
        args = ["-C", "postie.conf", "-i", "alice@test.lan"]
        rc, err = run(srv.dir, args, "Subject: x\n\nx\n", as_nobody=True)
        self.assertEqual(rc, 75, err)
        self.assertIn("chmod 711", err)
        srv.start()
        self.assertEqual(mode(srv.path("spool")), 0o711)
        t = token()
        rc, err = run(srv.dir, args, "Subject: %s\n\nx\n" % t, as_nobody=True)
        self.assertEqual(rc, 0, err)
        wait_for("delivery", lambda: srv.find("alice", t))


@need_feature("sendmail")
class LocalSubmission(harness.TestCase):
    """What sendmail writes, without a daemon (it makes the spool)."""

    HOST = "box.test.lan"

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="postie-sendmail-")
        self.conf("")

    def tearDown(self):
        harness.shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def conf(self, extra):
        with open(os.path.join(self.dir, "postie.conf"), "w") as f:
            f.write("hostname %s\nlocal_domains lan.test\nspool_dir ./spool\n%s"
                    % (self.HOST, extra))

    def one(self, args, stdin):
        rc, err = run(self.dir, ["-C", "postie.conf"] + args, stdin)
        self.assertEqual(rc, 0, err)
        drop = os.path.join(self.dir, "spool", "maildrop")
        self.assertEqual(mode(drop), 0o1733)
        self.assertEqual(mode(os.path.dirname(drop)), 0o711)
        names = os.listdir(drop)
        self.assertEqual(len(names), 1, names)
        with open(os.path.join(drop, names[0]), "rb") as f:
            return Drop(f.read())

    def test_received_line_first(self):
        d = self.one(["-i", "x@example.org"], "Subject: r\n\nx\n")
        self.assertTrue(d.head.startswith("Received: "), d.head[:200])
        rcv = d.headers("Received")
        self.assertEqual(len(rcv), 1)
        self.assertRegex(rcv[0], r"^\(from \S+, uid %d\) by %s \(postie sendmail\)"
                         r" id \S+; \w{3}, \d\d \w{3} \d{4} " % (os.getuid(),
                                                                  self.HOST))

    def test_bare_names_get_the_hostname_not_the_masquerade(self):
        self.conf("masquerade alerts@provider.example\n")
        d = self.one(["-t", "-i"],
                     "To: root, Jo Q <jo>, x@example.org (X), \"a b\"\n"
                     "Cc: team: dave, eve@example.net;, undisclosed:;\n"
                     "Reply-To: admin (The Admin)\nSubject: q\n\nbody\n")
        h = self.HOST
        self.assertEqual(sorted(d.rcpts), sorted([
            "root@" + h, "jo@" + h, "x@example.org", "\"a b\"@" + h,
            "dave@" + h, "eve@example.net"]))
        self.assertEqual(d.headers("To"), [
            "root@%s, Jo Q <jo@%s>, x@example.org (X), \"a b\"@%s" % (h, h, h)])
        self.assertEqual(d.headers("Cc"), [
            "team: dave@%s, eve@example.net;, undisclosed:;" % h])
        self.assertEqual(d.headers("Reply-To"), ["admin@%s (The Admin)" % h])
        self.assertEqual(d.sender, "alerts@provider.example")
        self.assertEqual(d.headers("From"), ['"root" <alerts@provider.example>'])
        self.assertNotIn("provider.example", re.sub(r"(?m)^From: .*\n", "", d.head))


@need_feature("sendmail")
@need_feature("aliases")   # root: alice, as the README's set-up
class ReadmeAlert(harness.TestCase):
    """The alert example of README.md, run with /bin/sh as it stands, with
    `sendmail` on PATH pointing at this configuration."""

    def readme_block(self):
        with open(README, encoding="utf-8") as f:
            text = f.read()
        blocks = re.findall(r"^```\n(.*?)^```$", text, re.S | re.M)
        hits = [b for b in blocks if b.startswith("sendmail -t <<")]
        self.assertEqual(len(hits), 1, "the alert example in README.md")
        return hits[0]

    def test_readme_alert_example(self):
        script = self.readme_block()
        with harness.Server(aliases="root: alice\n") as srv:
            bindir = srv.path("bin")
            os.mkdir(bindir)
            wrapper = os.path.join(bindir, "sendmail")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec %s sendmail -C %s \"$@\"\n" % (
                    " ".join(shlex.quote(a) for a in harness.command()),
                    shlex.quote(srv.path("postie.conf"))))
            os.chmod(wrapper, 0o755)
            env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
            p = subprocess.run(["/bin/sh", "-e", "-c", script], cwd=srv.dir,
                               env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * SLOW)
            self.assertEqual(p.returncode, 0, p.stderr)
            m = wait_for("delivery", lambda: srv.find("alice", "disk almost full"))
            self.assertEqual(len(m), 1)
            m = m[0]
            self.assertEqual(m.headers("To"), ["root@" + HOSTNAME])
            self.assertEqual(m.headers("Subject"),
                             ["disk almost full on " + os.uname().nodename])
            body = m.body.decode("utf-8", "replace")
            df = subprocess.run(["df", "-h", "/"], stdout=subprocess.PIPE,
                                timeout=30).stdout.decode().split("\n")[0]
            self.assertIn(df.split()[0], body)
            self.assertIn("\n/", "\n" + body.split("\n", 1)[1])
