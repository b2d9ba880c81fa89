"""The demo `make run` starts (board/demo/run.sh, the script behind it):
a message sent to it over SMTP is read back with imaplib and poplib, in
the clear from 127.0.0.1 and after STARTTLS/STLS; the curl and mutt
commands its banner prints work as printed; the ports follow
POSTIE_PORT and POSTIE_PORT_BASE on every run, also the second one, and
the banner names the ports in force; an edited configuration is kept; a
second run beside a running demo changes nothing of it.
"""
import base64
import imaplib
import os
import poplib
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness
from harness import IO_TIMEOUT, START_TIMEOUT, token

SCRIPT = os.path.join(harness.REPO, "board", "demo", "run.sh")
OFFSETS = (25, 587, 465, 110, 995, 143, 993)


def free_base():
    """A POSTIE_PORT_BASE whose seven demo ports are all free now (bounded),
    below the ephemeral range the other tests' free ports come from."""
    for _ in range(200):
        base = random.randrange(10000, 31000, 10)
        ok = True
        for off in OFFSETS:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", base + off))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free port base found")


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class ReadmeTest(harness.TestCase):
    def test_readme_table_has_the_default_ports(self):
        """The README's table of demo ports is what run.sh's default base
        gives (the demo tests check run.sh against the banner)."""
        with open(SCRIPT) as f:
            base = int(re.search(r"base=\$\{POSTIE_PORT_BASE:-(\d+)\}", f.read()).group(1))
        with open(os.path.join(harness.REPO, "README.md")) as f:
            readme = f.read()
        names = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps")
        table = dict(re.findall(r"(?m)^\| (%s) \| (\d+)" % "|".join(names), readme))
        self.assertEqual(sorted(table), sorted(names), table)
        for name, off in zip(names, OFFSETS):
            self.assertEqual(int(table[name]), base + off, name)


@unittest.skipIf(harness.QEMU, "the demo runs the host binary")
@harness.need_feature("imap")
@harness.need_feature("pop3")
@harness.need_tool("openssl")
class DemoTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="postie-demo-")
        self.proc = None
        self.out = None

    def tearDown(self):
        try:
            self.stop()
        finally:
            if not harness.KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)
            super().tearDown()

    def start(self, base=None, port=None, expect=None, run_dir=None):
        """Runs the demo with these variables (base None: a free one, tried
        again elsewhere if a port is taken meanwhile) and waits for its
        "started" log line, which comes once every listener is bound.
        Returns the base used."""
        for _ in range(5):
            b = base if base is not None else free_base()
            env = dict(os.environ, POSTIE_RUN_DIR=run_dir or os.path.join(self.dir, "run"),
                       POSTIE_PORT_BASE=str(b))
            env.pop("POSTIE_PORT", None)
            if port:
                env["POSTIE_PORT"] = str(port)
            self.out = open(os.path.join(self.dir, "out.log"), "wb")
            self.proc = subprocess.Popen([SCRIPT, harness.BIN], env=env,
                                         stdin=subprocess.DEVNULL, stdout=self.out,
                                         stderr=subprocess.STDOUT)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if re.search(r"postie \S+ started: \d+ listeners", self.output()):
                    want = [(expect if expect is not None else b) + o for o in OFFSETS]
                    if expect is None and port:
                        want[0] = port
                    self.assertTrue(all(listening(p) for p in want), want)
                    return b
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            out = self.output()
            self.stop()
            if base is not None or "in use" not in out:
                self.fail("demo did not start: %s" % out)
        self.fail("demo did not start in 5 tries: %s" % out)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(IO_TIMEOUT)
        if self.out:
            self.out.close()
            self.out = None
        rc, self.proc = (self.proc.returncode if self.proc else 0), None
        return rc

    def output(self):
        with open(os.path.join(self.dir, "out.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def send(self, port):
        t = token("demo")
        with smtplib.SMTP("127.0.0.1", port, timeout=IO_TIMEOUT) as s:
            s.sendmail("you@example.org", ["demo@demo.lan"],
                       "Subject: %s\r\n\r\nhello from the demo test\r\n" % t)
        return t

    def imap_read(self, port, t, starttls):
        m = imaplib.IMAP4("127.0.0.1", port, timeout=IO_TIMEOUT)
        try:
            if starttls:
                ctx = ssl.create_default_context(
                    cafile=os.path.join(self.dir, "run", "cert.pem"))
                m.starttls(ctx)
            m.login("demo", "demo")
            m.select("INBOX")
            typ, data = m.search(None, "SUBJECT", t)
            self.assertEqual(typ, "OK")
            nums = data[0].split()
            self.assertEqual(len(nums), 1, data)
            typ, data = m.fetch(nums[0], "(BODY.PEEK[])")
            self.assertIn(t.encode(), data[0][1])
            m.logout()
        finally:
            try:
                m.shutdown()
            except OSError:
                pass

    def pop3_read(self, port, t, stls):
        p = poplib.POP3("127.0.0.1", port, timeout=IO_TIMEOUT)
        try:
            if stls:
                ctx = ssl.create_default_context(
                    cafile=os.path.join(self.dir, "run", "cert.pem"))
                p.stls(ctx)
            p.user("demo")
            p.pass_("demo")
            n = len(p.list()[1])
            bodies = [b"\n".join(p.retr(i)[1]) for i in range(1, n + 1)]
            self.assertEqual(sum(t.encode() in b for b in bodies), 1)
            p.quit()
        finally:
            p.close()

    def test_send_then_read_with_imap_and_pop3(self):
        base = self.start()
        out = self.output()
        for name, off in (("smtp", 25), ("imap", 143), ("pop3", 110),
                          ("imaps", 993), ("submission", 587)):
            self.assertIn("127.0.0.1:%d" % (base + off), out, name)
        self.assertIn("mutt", out)
        self.assertIn("curl -s -u demo:demo", out)
        t = self.send(base + 25)
        self.imap_read(base + 143, t, starttls=False)
        self.imap_read(base + 143, t, starttls=True)
        self.pop3_read(base + 110, t, stls=False)
        self.pop3_read(base + 110, t, stls=True)
        # implicit TLS, checked against the demo's own certificate
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "run", "cert.pem"))
        m = imaplib.IMAP4_SSL("127.0.0.1", base + 993, ssl_context=ctx,
                              timeout=IO_TIMEOUT)
        m.login("demo", "demo")
        m.logout()
        self.assertEqual(self.stop(), 0)

    def test_ports_follow_the_variables_on_every_run(self):
        base = self.start()
        self.assertEqual(self.stop(), 0)
        # The second run, with other ports: the configuration follows.
        base2 = free_base()
        port2 = base2 + 7       # POSTIE_PORT apart from the base
        self.start(base2, port=port2)
        self.assertIn("127.0.0.1:%d" % port2, self.output())
        t = self.send(port2)
        self.imap_read(base2 + 143, t, starttls=False)
        self.assertFalse(listening(base + 25))
        self.assertEqual(self.stop(), 0)

    def test_banner_paths_work_from_any_directory(self):
        """The banner is read in another terminal: the mbox, certificate
        and configuration it names are absolute paths, also for a
        POSTIE_RUN_DIR given relative to the source tree."""
        rel = os.path.relpath(os.path.join(self.dir, "run"), harness.REPO)
        base = self.start(run_dir=rel)
        t = self.send(base + 25)
        out = self.output()
        run = os.path.realpath(os.path.join(self.dir, "run"))
        mbox = re.search(r"mutt -f (\S+) ", out)
        self.assertTrue(mbox, out)
        self.assertEqual(mbox.group(1), os.path.join(run, "mail", "demo"))
        with open(mbox.group(1), "rb") as f:
            self.assertIn(t.encode(), f.read())
        self.assertIn("(%s)" % os.path.join(run, "cert.pem"), out)
        self.assertIn("(configuration: %s)" % os.path.join(run, "postie.conf"), out)
        self.assertEqual(self.stop(), 0)

    def test_second_run_leaves_the_running_demo_alone(self):
        """A second `make run` while one runs in the same folder refuses
        before it rewrites anything, names the folder and how to start a
        second demo; the first one keeps serving on its ports."""
        base = self.start()
        conf = os.path.join(self.dir, "run", "postie.conf")
        with open(conf, "rb") as f:
            before = f.read()
        env = dict(os.environ, POSTIE_RUN_DIR=os.path.join(self.dir, "run"),
                   POSTIE_PORT_BASE=str(free_base()))
        env.pop("POSTIE_PORT", None)
        r = subprocess.run([SCRIPT, harness.BIN], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=START_TIMEOUT)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("a demo already runs in %s" % os.path.join(self.dir, "run"), out)
        self.assertIn("POSTIE_RUN_DIR=", out)
        self.assertNotIn("user demo, password demo", out)      # no banner
        with open(conf, "rb") as f:
            self.assertEqual(f.read(), before)
        t = self.send(base + 25)
        self.imap_read(base + 143, t, starttls=False)
        self.assertEqual(self.stop(), 0)

    def test_edited_configuration_is_kept(self):
        base = self.start()
        self.assertEqual(self.stop(), 0)
        conf = os.path.join(self.dir, "run", "postie.conf")
        with open(conf) as f:
            lines = f.read().splitlines()[1:]       # the GENERATED line goes
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        base2 = free_base()
        self.start(base2, expect=base)     # the edited file's ports stay
        self.assertIn("was edited", self.output())
        self.assertIn("127.0.0.1:%d" % (base + 25), self.output())
        self.assertTrue(listening(base + 25))
        self.assertEqual(self.stop(), 0)

    @harness.need_tool("curl")
    def test_banner_commands_send_and_read(self):
        """The commands the banner prints, run as printed: curl sends one
        message and reads it back over IMAP and POP3; mutt, answering its
        first-run questions (~/Mail, the self-signed certificate), shows it
        in INBOX."""
        base = self.start()
        out = self.output()
        send = re.search(r"curl -s smtp://\S+ [^\n]*\\\n\s*[^\n]*", out)
        reads = re.findall(r"curl -s -u demo:demo \S+", out)
        self.assertTrue(send, out)
        self.assertEqual(len(reads), 2, out)
        self.assertIn("127.0.0.1:%d" % (base + 25), send.group(0))

        def sh(cmd):
            r = subprocess.run(["bash", "-c", cmd], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=IO_TIMEOUT)
            text = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 0, (cmd, text))
            return text
        sh(send.group(0).replace("\\\n", " "))
        for cmd in reads:
            self.assertIn("Subject: hello", sh(cmd), cmd)
        mutt = re.search(r"mutt -e '[^'\n]*' -f imap://\S+", out)
        self.assertTrue(mutt, out)
        if not shutil.which("mutt"):
            return
        from test_imap_clients import Pty
        home = os.path.join(self.dir, "home")
        os.mkdir(home)
        env = {"HOME": home, "TERM": "vt100", "LANG": "C.UTF-8",
               "PATH": os.environ["PATH"]}
        p = Pty(["bash", "-c", "exec " + mutt.group(0)], env, home)
        try:
            # a first run asks what a new user answers: make ~/Mail, and
            # accept the self-signed certificate once
            for _ in range(4):
                m = p.expect(r"Create it\?|\(r\)eject, accept \(o\)nce|hello")
                if m.group(0) == "hello":
                    break
                p.send("\r" if m.group(0) == "Create it?" else "o")
            self.assertEqual(m.group(0), "hello", p.screen[-1500:])
            p.send("q")
        finally:
            p.close()
        self.assertEqual(self.stop(), 0)

    def test_logs_name_the_service_the_user_and_unique_ids(self):
        """Logs an operator can grep: each session under the service name
        it was configured as, failed logins with the (sanitized) user, and
        delivery ids that do not repeat after a restart."""
        base = self.start()
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "run", "cert.pem"))
        for off in (993, 995, 465):     # implicit TLS: imaps, pop3s, smtps
            with socket.create_connection(("127.0.0.1", base + off),
                                          timeout=IO_TIMEOUT) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.recv(100)
        with smtplib.SMTP("127.0.0.1", base + 587, timeout=IO_TIMEOUT) as s:
            s.ehlo()
        m = imaplib.IMAP4("127.0.0.1", base + 143, timeout=IO_TIMEOUT)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("nosuch", "wrong")
        m.shutdown()
        with smtplib.SMTP("127.0.0.1", base + 25, timeout=IO_TIMEOUT) as s:
            s.ehlo()
            plain = base64.b64encode(b"\0bob\x1b[2J\0wrong").decode()
            self.assertEqual(s.docmd("AUTH", "PLAIN " + plain)[0], 535)
            s.mail("a@example.org")
            s.rcpt("demo@demo.lan")
            code, first = s.data("Subject: one\r\n\r\nx\r\n")
        self.assertEqual(self.stop(), 0)
        log = self.output()
        for service in ("imaps", "pop3s", "smtps", "submission", "imap", "smtp"):
            self.assertRegex(log, r"conn \d+ 127\.0\.0\.1: %s connect" % service)
            self.assertIn("listening for %s on" % service, log)
        self.assertIn("imap failed login for 'nosuch'", log)
        self.assertIn("smtp failed login for 'bob\\x1b[2J'", log)
        self.assertNotIn("\x1b", log)
        pattern = r"delivered ([0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+) "
        ids = re.findall(pattern, log)
        self.start(base)
        with smtplib.SMTP("127.0.0.1", base + 25, timeout=IO_TIMEOUT) as s:
            s.sendmail("a@example.org", ["demo@demo.lan"], "Subject: two\r\n\r\nx\r\n")
        self.assertEqual(self.stop(), 0)
        ids += re.findall(pattern, self.output())
        self.assertEqual(len(ids), 2, self.output())
        self.assertNotEqual(ids[0], ids[1])
        self.assertIn(ids[0].encode(), first)

if __name__ == "__main__":
    unittest.main()
