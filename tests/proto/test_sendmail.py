"""`postie sendmail` / `mailq` without the daemon: what lands in
spool_dir/maildrop (spool format, complete, no dot-files left), option
handling, refusals with sysexits codes, and the queue listing.
The daemon's pickup of maildrop/ and mailq's listing of what the daemon
queued are tested end to end in test_queue.py."""
import os
import re
import shutil
import subprocess
import tempfile

import harness
from harness import SLOW, need_feature

HOST = "box.test.lan"


class Drop:
    """One parsed maildrop file."""

    def __init__(self, data):
        self.raw = data
        env, sep, self.msg = data.partition(b"\nD\n")
        if not sep:
            raise AssertionError("no D line in %r" % data[:300])
        self.sender = None
        self.rcpts = []
        self.uid = None
        for line in env.split(b"\n"):
            kind, _, val = line.partition(b" ")
            if kind == b"F":
                self.sender = val.decode()
            elif kind == b"R":
                self.rcpts.append(val.decode())
            elif kind == b"U":
                self.uid = int(val)
            else:
                raise AssertionError("unexpected envelope line %r" % line)
        head, _, self.body = self.msg.partition(b"\n\n")
        self.head = head.decode("utf-8", "replace")

    def headers(self, name):
        out = []
        for line in self.head.split("\n"):
            if line[:1] in (" ", "\t") and out:
                out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
                continue
            k, sep, v = line.partition(":")
            if sep:
                out.append((k.strip().lower(), v.strip()))
        return [v for k, v in out if k == name.lower()]


@need_feature("sendmail")
class SendmailTest(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="postie-sendmail-")
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool, 0o700)
        self.drop = os.path.join(self.spool, "maildrop")
        os.mkdir(self.drop)
        os.chmod(self.drop, 0o1733)     # as the daemon makes it
        self.conf("")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def conf(self, extra, max_size="4K"):
        with open(os.path.join(self.dir, "postie.conf"), "w") as f:
            f.write("hostname %s\nspool_dir ./spool\nmax_message_size %s\n%s"
                    % (HOST, max_size, extra))

    def run_cmd(self, args, stdin=b"", name="sendmail"):
        if isinstance(stdin, str):
            stdin = stdin.encode()
        p = subprocess.run(harness.command(name, "-C", "postie.conf", *args),
                           cwd=self.dir, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    def send(self, args, stdin, want=0):
        rc, out, err = self.run_cmd(args, stdin)
        self.assertEqual(rc, want, "exit %d, stderr %r" % (rc, err))
        return err

    def files(self):
        return sorted(os.listdir(self.drop))

    def one(self):
        names = self.files()
        self.assertEqual(len(names), 1, names)
        self.assertFalse(names[0].startswith("."), names)
        path = os.path.join(self.drop, names[0])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        with open(path, "rb") as f:
            return Drop(f.read())

    def assertNothing(self):
        self.assertEqual(self.files(), [])

    def test_relative_spool_from_another_directory(self):
        # spool_dir ./spool is the config file's directory's spool, also
        # for a sendmail started elsewhere (it made ./spool in its own
        # working directory, where no daemon looks: new-user finding 08).
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(elsewhere)
        p = subprocess.run(harness.command("sendmail", "-C", "../postie.conf",
                                           "alice@example.org"),
                           cwd=elsewhere, input=b"Subject: from elsewhere\n\nx\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.listdir(elsewhere), [])
        self.assertEqual(self.one().rcpts, ["alice@example.org"])

    # ---- messages ----------------------------------------------------

    def test_plain_recipients(self):
        self.send(["alice@example.org", "bob@example.net, carol@example.com"],
                  "Subject: plain\n\nhello\n")
        d = self.one()
        self.assertEqual(d.rcpts, ["alice@example.org", "bob@example.net",
                                   "carol@example.com"])
        self.assertEqual(d.uid, os.getuid())
        self.assertTrue(d.sender.endswith("@" + HOST), d.sender)
        self.assertEqual(d.headers("subject"), ["plain"])
        self.assertEqual(len(d.headers("from")), 1)
        self.assertEqual(len(d.headers("date")), 1)
        self.assertEqual(len(d.headers("message-id")), 1)
        self.assertTrue(d.headers("message-id")[0].endswith("@%s>" % HOST))
        self.assertEqual(d.body, b"hello\n")

    def test_unqualified_recipient_gets_hostname(self):
        self.send(["root"], "Subject: cron\n\nout\n")
        self.assertEqual(self.one().rcpts, ["root@" + HOST])

    def test_existing_headers_kept(self):
        msg = ("From: Someone <someone@example.org>\nDate: Mon, 1 Jan 2024 "
               "00:00:00 +0000\nMessage-ID: <keep@example.org>\n"
               "Subject: kept\n\nbody\n")
        self.send(["alice@example.org"], msg)
        d = self.one()
        self.assertEqual(d.headers("from"), ["Someone <someone@example.org>"])
        self.assertEqual(d.headers("message-id"), ["<keep@example.org>"])
        self.assertEqual(len(d.headers("date")), 1)

    def test_no_header_section(self):
        self.send(["alice@example.org"], "just a line of text\nand another\n")
        d = self.one()
        self.assertEqual(len(d.headers("from")), 1)
        self.assertEqual(d.body, b"just a line of text\nand another\n")

    def test_t_reads_recipients_and_drops_bcc(self):
        msg = ("To: Alice <alice@example.org>, \"Bob, B.\" <bob@example.net>\n"
               "Cc: carol@example.com (Carol)\nBcc: hidden@example.com,\n"
               " hidden2@example.com\nSubject: t\n\nbody\n")
        self.send(["-t"], msg)
        d = self.one()
        self.assertEqual(sorted(d.rcpts), sorted([
            "alice@example.org", "bob@example.net", "carol@example.com",
            "hidden@example.com", "hidden2@example.com"]))
        self.assertEqual(d.headers("bcc"), [])
        self.assertNotIn(b"hidden", d.msg)
        self.assertEqual(len(d.headers("to")), 1)

    def test_t_adds_command_line_recipients(self):
        self.send(["-t", "extra@example.org", "alice@example.org"],
                  "To: alice@example.org\n\nx\n")
        self.assertEqual(self.one().rcpts,
                         ["extra@example.org", "alice@example.org"])

    def test_t_group_syntax(self):
        self.send(["-t", "x@example.org"],
                  "To: undisclosed-recipients:;\n\nx\n")
        self.assertEqual(self.one().rcpts, ["x@example.org"])

    def test_t_without_recipients(self):
        rc, _, err = self.run_cmd(["-t"], "Subject: none\n\nx\n")
        self.assertEqual(rc, 64, err)
        self.assertNothing()

    def test_dot_ends_input(self):
        self.send(["alice@example.org"], "Subject: d\n\nbefore\n.\nafter\n")
        self.assertEqual(self.one().body, b"before\n")

    def test_i_keeps_dot_line(self):
        for opt in ("-i", "-oi"):
            self.send([opt, "alice@example.org"],
                      "Subject: d\n\nbefore\n.\n..\nafter\n")
            d = self.one()
            self.assertEqual(d.body, b"before\n.\n..\nafter\n", opt)
            for n in self.files():
                os.unlink(os.path.join(self.drop, n))

    def test_crlf_stored_as_lf(self):
        self.send(["-i", "alice@example.org"],
                  b"Subject: crlf\r\n\r\nline1\r\nbare\rcr\r\nlast")
        d = self.one()
        self.assertNotIn(b"\r\n", d.raw)
        self.assertEqual(d.body, b"line1\nbare\rcr\nlast\n")

    def test_f_and_F(self):
        self.send(["-f", "alerts@example.org", "-F", "Router Alerts",
                   "alice@example.org"], "Subject: f\n\nx\n")
        d = self.one()
        self.assertEqual(d.sender, "alerts@example.org")
        self.assertEqual(d.headers("from"),
                         ['"Router Alerts" <alerts@example.org>'])

    def test_attached_values_and_r(self):
        self.send(["-falerts@example.org", "-FCam", "alice@example.org"],
                  "Subject: f\n\nx\n")
        d = self.one()
        self.assertEqual(d.sender, "alerts@example.org")
        self.assertEqual(d.headers("from"), ['"Cam" <alerts@example.org>'])
        os.unlink(os.path.join(self.drop, self.files()[0]))
        self.send(["-r", "<other@example.org>", "alice@example.org"], "x\n")
        self.assertEqual(self.one().sender, "other@example.org")

    def test_null_sender(self):
        self.send(["-f", "<>", "alice@example.org"], "Subject: n\n\nx\n")
        d = self.one()
        self.assertEqual(d.sender, "")
        self.assertIn("MAILER-DAEMON@" + HOST, d.headers("from")[0])

    def test_F_quoting_and_utf8(self):
        self.send(["-f", "a@example.org", "-F", 'Jo "Q" Smith',
                   "alice@example.org"], "x\n")
        self.assertEqual(self.one().headers("from"),
                         ['"Jo \\"Q\\" Smith" <a@example.org>'])
        os.unlink(os.path.join(self.drop, self.files()[0]))
        self.send(["-f", "a@example.org", "-F", "Caf\u00e9 Cam",
                   "alice@example.org"], "x\n")
        frm = self.one().headers("from")[0]
        self.assertTrue(frm.startswith("=?UTF-8?B?"), frm)
        import email.header
        text = "".join(p.decode(c or "ascii") if isinstance(p, bytes) else p
                       for p, c in email.header.decode_header(
                           frm.split(" <")[0]))
        self.assertEqual(text, "Caf\u00e9 Cam")

    def test_ignored_compat_options(self):
        self.send(["-odb", "-oem", "-v", "-B", "8BITMIME", "-N", "never",
                   "-oQ/tmp", "-ti", "alice@example.org"],
                  "To: bob@example.org\n\nx\n.\n")
        d = self.one()
        self.assertEqual(d.rcpts, ["alice@example.org", "bob@example.org"])
        self.assertEqual(d.body, b"x\n.\n")

    def masqueraded(self, rcpts, text):
        """The one queued file of `sendmail RCPTS` under masquerade
        alerts@provider.example, its envelope sender checked."""
        if "relay" not in harness.features() and "smtp" not in harness.features():
            self.skipTest("no relay")
        self.conf("masquerade alerts@provider.example\n")
        rc, _, err = self.run_cmd(rcpts, text)
        if rc == 78 and "masquerade" in err:
            self.skipTest("masquerade not in this build: %s" % err)
        self.assertEqual(rc, 0, err)
        d = self.one()
        self.assertEqual(d.sender, "alerts@provider.example")
        return d

    def test_masquerade(self):
        d = self.masqueraded(["alice@example.org"], "From: Box <root@%s>\n\nx\n" % HOST)
        self.assertEqual(d.headers("from"), ["Box <alerts@provider.example>"])

    def test_masquerade_when_from_is_also_a_recipient(self):
        """cron's own mail: From: root, sent to root. Its From: stayed
        root@host when that address was a recipient too (the check of
        From: merged it into the recipient list and lost it)."""
        d = self.masqueraded(["root@%s" % HOST],
                             "From: root (Cron Daemon)\nTo: root\n\nx\n")
        self.assertEqual(d.headers("from"), ["alerts@provider.example"])
        self.assertEqual(d.rcpts, ["root@%s" % HOST])

    # ---- refusals ------------------------------------------------------

    def test_crlf_in_f_and_F_refused(self):
        for args in (["-f", "a@example.org\r\nBcc: x@evil.example"],
                     ["-f", "a@example.org\nX: y"],
                     ["-F", "Name\r\nBcc: x@evil.example"],
                     ["-F", "Name\nX: y"]):
            rc, _, err = self.run_cmd(args + ["alice@example.org"], "x\n")
            self.assertIn(rc, (64, 65), (args, err))
            self.assertNothing()

    def test_bad_addresses_refused(self):
        for args in (["alice@example.org\nbob@example.org"],
                     ["not an address"], ["a@b@c"], ["<>"],
                     ["-f", "bad address", "alice@example.org"]):
            rc, _, err = self.run_cmd(args, "x\n")
            self.assertIn(rc, (64, 65), (args, err))
            self.assertNothing()

    def test_no_recipients(self):
        rc, _, err = self.run_cmd([], "x\n")
        self.assertEqual(rc, 64, err)
        self.assertNothing()

    def test_unknown_option(self):
        rc, _, err = self.run_cmd(["-Z", "alice@example.org"], "x\n")
        self.assertEqual(rc, 64, err)
        self.assertIn("-Z", err)
        rc, _, err = self.run_cmd(["-bs"], "")
        self.assertEqual(rc, 64, err)
        self.assertNothing()

    def test_too_big(self):
        body = ("x" * 70 + "\n") * 100             # 7 KB > 4K
        rc, _, err = self.run_cmd(["alice@example.org"], "Subject: big\n\n" + body)
        self.assertEqual(rc, 65, err)
        self.assertIn("too big", err)
        self.assertNothing()

    def test_default_size_limit_is_the_one_V_shows(self):
        # Without max_message_size the build's default applies; `postie -V`
        # names it (limits: message=NK), and the refusal says it in bytes.
        kb = [f.split("=", 1)[1] for f in harness.features()
              if f.startswith("limit:message=")]
        self.assertEqual(len(kb), 1, sorted(harness.features()))
        limit = int(kb[0].rstrip("K")) * 1024
        with open(os.path.join(self.dir, "postie.conf"), "w") as f:
            f.write("hostname %s\nspool_dir ./spool\n" % HOST)
        rc, _, err = self.run_cmd(["alice@example.org"], b"Subject: big\n\n" +
                                  b"x" * limit)
        self.assertEqual(rc, 65, err)
        self.assertIn("max_message_size is %d bytes" % limit, err)
        self.assertNothing()

    def test_nul_byte_refused(self):
        """A NUL byte anywhere (header, first body line, deep in the
        body, with CRLF input) is refused with exit 65 and the line it is
        on; nothing is left in the maildrop, not even a temporary file."""
        cases = [
            (b"Subject: a\x00b\n\nbody\n", 1),
            (b"Subject: s\n\nfine\nstill fine\nnul \x00 here\nafter\n", 5),
            (b"Subject: s\r\n\r\n" + b"line\r\n" * 300 + b"\x00\r\n", 303),
            (b"no header \x00 line\n", 1),
        ]
        for data, line in cases:
            rc, _, err = self.run_cmd(["alice@example.org"], data)
            self.assertEqual(rc, 65, (data[:40], err))
            self.assertIn("NUL byte (line %d of the input)" % line, err)
            self.assertIn("nothing was queued", err)
            self.assertNothing()
        # The same text without the NUL goes through.
        self.send(["alice@example.org"], b"Subject: s\n\nnul  here\n")
        self.assertIn(b"nul  here", self.one().body)

    def test_missing_maildrop(self):
        """sendmail makes the maildrop as the daemon would (the rest of the
        spool is the daemon's); test_sendmail_users covers a user who
        cannot."""
        os.rmdir(self.drop)
        self.send(["alice@example.org"], "x\n")
        self.assertEqual(os.stat(self.drop).st_mode & 0o7777, 0o1733)
        self.assertEqual(os.stat(self.spool).st_mode & 0o7777, 0o711)
        self.assertEqual(self.one().rcpts, ["alice@example.org"])

    def test_maildrop_not_writable(self):
        if os.geteuid() == 0:
            self.skipTest("root writes anywhere")
        os.chmod(self.drop, 0o555)
        rc, _, err = self.run_cmd(["alice@example.org"], "x\n")
        os.chmod(self.drop, 0o1733)
        self.assertEqual(rc, 75, err)

    def test_bad_config(self):
        self.conf("no_such_directive 1\n")
        rc, _, err = self.run_cmd(["alice@example.org"], "x\n")
        self.assertEqual(rc, 78, err)
        self.assertNothing()

    def test_missing_explicit_config(self):
        rc, _, err = self.run_cmd(["-C", "nothere.conf", "alice@example.org"],
                                  "x\n")
        self.assertEqual(rc, 78, err)

    def test_many_messages_unique(self):
        for i in range(5):
            self.send(["alice@example.org"], "Subject: %d\n\nx\n" % i)
        names = self.files()
        self.assertEqual(len(names), 5)
        self.assertFalse([n for n in names if n.startswith(".")])

    # ---- -q and the queue listing ---------------------------------------

    def test_q_without_daemon(self):
        rc, out, err = self.run_cmd(["-q"])
        self.assertEqual(rc, 0, err)
        self.assertIn("no daemon", out)

    def test_q_stale_pid_file(self):
        with open(os.path.join(self.spool, "postie.pid"), "w") as f:
            f.write("%d\n" % os.getpid())   # python, not postie
        rc, out, err = self.run_cmd(["-q"])
        self.assertEqual(rc, 0, err)
        self.assertIn("no daemon", out)

    def test_mailq_empty(self):
        rc, out, err = self.run_cmd([], name="mailq")
        self.assertEqual(rc, 0, err)
        self.assertIn("Mail queue is empty", out)


@need_feature("sendmail")
@need_feature("relay")
class NoDnsNoSmarthost(harness.TestCase):
    """A build without DNS (the alerts board) and no smarthost has no way
    to other domains: `-t` warns, and such mail bounces at once with the
    reason instead of waiting in the queue for its lifetime."""

    def test_remote_mail_bounces_with_the_reason(self):
        if "dns" in harness.features():
            self.skipTest("this build has DNS")
        srv = harness.Server(smtp=False, users=["root", "postmaster"])
        try:
            srv.start()
            p = subprocess.run(harness.command("-t", "-c", "postie.conf"), cwd=srv.dir,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=30 * SLOW)
            self.assertIn(b"warning: no smarthost, and this build has no DNS", p.stdout)
            p = subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-f",
                                               "root@test.lan", "a@example.net"),
                               cwd=srv.dir, input=b"Subject: nodns\n\nbody\n",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30 * SLOW)
            self.assertEqual(p.returncode, 0, p.stderr)
            # A null client (no local mailboxes) has no root to take the
            # bounce: it fails too, and is kept in spool/bad.
            if "mbox" in harness.features():
                box = srv.path("mail", "root")
            else:
                box = srv.path("spool", "bad")

            def text():
                if os.path.isdir(box):
                    return b"".join(open(os.path.join(box, n), "rb").read()
                                    for n in os.listdir(box))
                try:
                    with open(box, "rb") as f:
                        return f.read()
                except FileNotFoundError:
                    return b""
            harness.wait_until(lambda: b"Status: 5.4.4" in text(), 60 * SLOW,
                               "a bounce in %s; log:\n%s" % (box, srv.log()[-1500:]))
            self.assertIn(b"no smarthost set, and this build has no DNS", text())
            if "mbox" not in harness.features():
                # the line comes just after the file is in place
                kept = (r"from <> and undeliverable, nobody to report it to: "
                        r"kept as \S+ \(its recipients failed: see the lines "
                        r"above\)")
                harness.wait_until(lambda: re.search(kept, srv.log()), 30 * SLOW,
                                   "the log line; log:\n" + srv.log()[-1500:])
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()

