"""mbox storage rules: dotlock and fcntl locking (without the relay
feature: 451 4.2.0 when busy, nothing appended; with it: the message is
queued with 250, nothing appended while locked, delivered once the lock
goes), O_NOFOLLOW, one link, owner, spool tmp cleanup."""
import fcntl
import os
import re
import subprocess
import threading
import time
import unittest

import harness
from harness import LOCK_WAIT, SLOW, crlf, token

# Upper bound for a 451 after a busy lock: the configured wait plus margin.
BUSY_BOUND = LOCK_WAIT + 10 * SLOW
# With the relay feature a busy mailbox sends the message to the queue,
# which retries quickly here; DNS (if built in) points where nothing
# answers, never at the machine's resolver.
RELAY = "relay" in harness.features()
RELAY_EXTRA = (("queue_retry 1s 2s\n" if RELAY else "") +
               ("dns_server 127.0.0.53:9\n" if "dns" in harness.features() else ""))
QUEUE_BOUND = 60 * SLOW             # lock gone -> delivered by the queue (a bound)


def wait_delivered(server, user, t, timeout=QUEUE_BOUND):
    """Messages holding t in user's mbox, polled up to timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.find(user, t)
        if found:
            return found
        time.sleep(0.05)
    return server.find(user, t)


class MboxLocking(harness.ServerTest):
    server_args = {"extra": RELAY_EXTRA}

    def assertBusy(self, code, lines, elapsed):
        """Without relay: 451 4.2.0 after the wait. With relay: queued at
        once."""
        if RELAY:
            self.assertEqual(code, 250, lines)
            self.assertRegex(lines[0], r"^250 2\.0\.0 .*queued as \S+")
            self.assertLess(elapsed, LOCK_WAIT, "queued only after the lock wait")
        else:
            self.assertEqual(code, 451, lines)
            self.assertIn("4.2.0", lines[0])
            self.assertLess(elapsed, BUSY_BOUND)

    def msg(self, t):
        return crlf("Subject: %s\n\nlock test\n" % t)

    def send_timed(self, rcpts, t):
        with self.server.dialog(timeout=BUSY_BOUND + 5) as d:
            d.ehlo()
            code, lines = d.cmd("MAIL FROM:<a@example.net>")
            self.assertEqual(code, 250)
            for r in rcpts:
                self.assertEqual(d.code("RCPT TO:<%s>" % r), 250)
            self.assertEqual(d.code("DATA"), 354)
            t0 = time.monotonic()
            d.send(self.msg(t) + b".\r\n")
            code, lines = d.reply(timeout=BUSY_BOUND)
            elapsed = time.monotonic() - t0
            # The session goes on after a 451.
            self.assertEqual(d.code("NOOP"), 250)
            return code, lines, elapsed

    def test_dotlock_busy(self):
        lock = self.server.path("mail", "demo.lock")
        before = self.server.mbox_bytes("demo")
        with open(lock, "w") as f:
            f.write("99999\n")
        result = {}

        def other():
            # Meanwhile another client delivers to another mailbox: the
            # wait for demo's lock must not block the server.
            time.sleep(0.3)
            t2 = token()
            t0 = time.monotonic()
            try:
                code, _ = self.deliver(["alice@test.lan"], self.msg(t2))
                result["other"] = (code, time.monotonic() - t0, t2)
            except Exception as e:  # reported below
                result["other"] = (repr(e), None, t2)

        th = threading.Thread(target=other, daemon=True)
        th.start()
        try:
            t = token()
            code, lines, elapsed = self.send_timed(["demo@test.lan"], t)
            self.assertBusy(code, lines, elapsed)
            if RELAY:
                time.sleep(1.5)         # a retry or two while locked
            self.assertEqual(self.server.mbox_bytes("demo"), before)
            # Somebody else's lock is left alone.
            self.assertTrue(os.path.exists(lock))
            with open(lock) as f:
                self.assertEqual(f.read(), "99999\n")
        finally:
            os.unlink(lock)
            th.join(BUSY_BOUND)
        code, secs, t2 = result.get("other", (None, None, None))
        self.assertEqual(code, 250, result)
        self.assertLess(secs, LOCK_WAIT, "a locked mailbox blocked other clients")
        self.assertEqual(len(self.server.find("alice", t2)), 1)
        if RELAY:
            # The queued message arrives once the lock is gone, once.
            self.assertEqual(len(wait_delivered(self.server, "demo", t)), 1,
                             self.server.log()[-1500:])
        # Lock gone: the next delivery works.
        t = token()
        code, _ = self.deliver(["demo@test.lan"], self.msg(t))
        self.assertEqual(code, 250)
        self.assertEqual(len(self.server.find("demo", t)), 1)
        self.assertFalse(os.path.exists(lock), "postie left its dotlock behind")
        self.assertEqual(self.server.spool_tmp(), [])

    def test_fcntl_lock_busy_all_or_nothing(self):
        # Make sure both mboxes exist, then hold a POSIX lock on demo's.
        for u in ("demo", "bob"):
            code, _ = self.deliver([u + "@test.lan"], self.msg(token()))
            self.assertEqual(code, 250)
        before = {u: self.server.mbox_bytes(u) for u in ("demo", "bob")}
        fd = os.open(self.server.path("mail", "demo"), os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            t = token()
            code, lines, elapsed = self.send_timed(["bob@test.lan", "demo@test.lan"], t)
            self.assertBusy(code, lines, elapsed)
            if RELAY:
                # The queue may deliver bob's copy now; demo's waits.
                self.assertEqual(len(wait_delivered(self.server, "bob", t)), 1)
                time.sleep(1.5)
                self.assertEqual(self.server.mbox_bytes("demo"), before["demo"])
            else:
                # Neither mailbox got it (one answer for the message).
                for u in ("demo", "bob"):
                    self.assertEqual(self.server.mbox_bytes(u), before[u], u)
            self.assertFalse(os.path.exists(self.server.path("mail", "demo.lock")),
                             "dotlock left behind after giving up")
        finally:
            os.close(fd)
        if RELAY:
            self.assertEqual(len(wait_delivered(self.server, "demo", t)), 1,
                             self.server.log()[-1500:])
            self.assertEqual(len(self.server.find("bob", t)), 1, "bob got it twice")
        t = token()
        code, _ = self.deliver(["demo@test.lan", "bob@test.lan"], self.msg(t))
        self.assertEqual(code, 250)
        self.assertEqual(len(self.server.find("demo", t)), 1)
        self.assertEqual(len(self.server.find("bob", t)), 1)

    def test_lock_released_during_wait(self):
        lock = self.server.path("mail", "carol.lock")
        with open(lock, "w") as f:
            f.write("1\n")
        timer = threading.Timer(1.0, os.unlink, [lock])
        timer.start()
        try:
            t = token()
            code, lines, elapsed = self.send_timed(["carol@test.lan"], t)
            self.assertEqual(code, 250, lines)
            # With relay it was queued at once and arrives after the lock.
            self.assertEqual(len(wait_delivered(self.server, "carol", t)), 1)
        finally:
            timer.join(10)
            if os.path.exists(lock):
                os.unlink(lock)

    def test_pipelined_commands_wait_for_delivery(self):
        # Commands sent right after the final dot are answered after the
        # (delayed) delivery reply, in order.
        lock = self.server.path("mail", "bob.lock")
        with open(lock, "w") as f:
            f.write("1\n")
        timer = threading.Timer(1.0, os.unlink, [lock])
        timer.start()
        t = token()
        try:
            with self.server.dialog(timeout=BUSY_BOUND + 5) as d:
                d.ehlo()
                d.send("MAIL FROM:<a@example.net>\r\nRCPT TO:<bob@test.lan>\r\nDATA\r\n")
                self.assertEqual([r[0] for r in d.replies(3)], [250, 250, 354])
                d.send(self.msg(t) + b".\r\nNOOP\r\nQUIT\r\n")
                codes = [r[0] for r in d.replies(3, timeout=BUSY_BOUND)]
                self.assertEqual(codes, [250, 250, 221])
        finally:
            timer.join(10)
            if os.path.exists(lock):
                os.unlink(lock)
        self.assertEqual(len(wait_delivered(self.server, "bob", t)), 1)

    def test_stale_dotlock_removed(self):
        lock = self.server.path("mail", "alice.lock")
        with open(lock, "w") as f:
            f.write("1\n")
        old = time.time() - 3600
        os.utime(lock, (old, old))
        t = token()
        code, _ = self.deliver(["alice@test.lan"], self.msg(t))
        self.assertEqual(code, 250)
        self.assertEqual(len(self.server.find("alice", t)), 1)
        self.assertFalse(os.path.exists(lock))


class MboxSafety(harness.ServerTest):
    server_args = {"users": harness.DEFAULT_USERS + ("eve", "mallory", "dir", "owned", "fifo"),
                   "extra": RELAY_EXTRA}

    def msg(self, t):
        return crlf("Subject: %s\n\nsafety\n" % t)

    def refused(self, user):
        t = token()
        code, lines = self.deliver([user + "@test.lan"], self.msg(t))
        self.assertTrue(400 <= code < 500, lines)
        self.assertEqual(self.server.anywhere(t), [])
        self.assertFalse(os.path.exists(self.server.path("mail", user + ".lock")))
        return code, lines

    def test_symlink_refused(self):
        target = self.server.write("target-file", "precious\n")
        os.symlink(os.path.join("..", "target-file"), self.server.path("mail", "eve"))
        code, lines = self.refused("eve")
        self.assertEqual(code, 451, lines)
        with open(target) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertTrue(os.path.islink(self.server.path("mail", "eve")))

    def test_dangling_symlink_refused(self):
        target = self.server.path("not-created")
        os.symlink(target, self.server.path("mail", "mallory"))
        code, lines = self.refused("mallory")
        self.assertEqual(code, 451, lines)
        self.assertFalse(os.path.exists(target))

    def test_hard_link_refused(self):
        t = token()
        code, _ = self.deliver(["bob@test.lan"], self.msg(t))
        self.assertEqual(code, 250)
        other = self.server.path("bob-hardlink")
        os.link(self.server.path("mail", "bob"), other)
        try:
            before = self.server.mbox_bytes("bob")
            code, lines = self.refused("bob")
            self.assertEqual(code, 451, lines)
            self.assertEqual(self.server.mbox_bytes("bob"), before)
        finally:
            os.unlink(other)
        code, _ = self.deliver(["bob@test.lan"], self.msg(token()))
        self.assertEqual(code, 250)

    def test_directory_refused(self):
        os.mkdir(self.server.path("mail", "dir"))
        code, lines = self.refused("dir")
        self.assertEqual(code, 451, lines)

    def test_foreign_owner_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to chown")
        p = self.server.path("mail", "owned")
        with open(p, "wb"):
            pass
        os.chown(p, 12345, 12345)
        code, lines = self.refused("owned")
        self.assertEqual(code, 451, lines)
        self.assertEqual(os.path.getsize(p), 0)

    def test_fifo_refused_without_hanging(self):
        os.mkfifo(self.server.path("mail", "fifo"))
        code, lines = self.refused("fifo")
        self.assertEqual(code, 451, lines)
        self.assertServing()

    def test_spool_unwritable_is_temporary(self):
        import shutil
        tmp = self.server.path("spool", "tmp")
        shutil.rmtree(tmp)
        try:
            with self.server.dialog() as d:
                d.ehlo()
                code, lines = d.cmd("MAIL FROM:<a@example.net>")
                self.assertTrue(400 <= code < 500, lines)
                self.assertEqual(d.code("NOOP"), 250)
        finally:
            os.mkdir(tmp, 0o700)
        code, _ = self.deliver(["demo@test.lan"], self.msg(token()))
        self.assertEqual(code, 250)

    def test_new_mbox_mode_and_spool_clean(self):
        t = token()
        code, _ = self.deliver(["carol@test.lan"], self.msg(t))
        self.assertEqual(code, 250)
        st = os.lstat(self.server.path("mail", "carol"))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(st.st_nlink, 1)
        self.assertEqual(self.server.spool_tmp(), [])
        # The spool copy is gone: the message is only in the mbox.
        self.assertEqual(self.server.anywhere(t), ["mail/carol"])

    def test_appends_keep_existing_content(self):
        p = self.server.path("mail", "demo")
        existing = b"From old@example.net Thu Jan  1 00:00:00 1970\nSubject: old\n\nold body\n\n"
        with open(p, "wb") as f:
            f.write(existing)
        os.chmod(p, 0o600)
        t = token()
        code, _ = self.deliver(["demo@test.lan"], self.msg(t))
        self.assertEqual(code, 250)
        data = self.server.mbox_bytes("demo")
        self.assertTrue(data.startswith(existing))
        msgs = self.server.mbox("demo")
        self.assertEqual(len(msgs), 2)
        self.assertEqual(msgs[0].body, b"old body\n")
        self.assertEqual(msgs[1].headers("Subject"), [t])


# A body that mboxrd must quote, and big enough (about 600 KB) to be
# appended over several loop passes on both paths.
LOCAL_BODY = ("From the start of a line\n>From quoted once\n>>From twice\n"
              "From\nFromage\nfrom lower case\n. a dot line\n" + "x" * 76 + "\n"
              ) * 3800 + "From at the very end"
FROM_LINE = re.compile(rb"From sender@test\.lan [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d "
                       rb"\d\d:\d\d:\d\d \d{4}\n")


def local_messages(data):
    """An mbox's bytes cut at its From_ lines: (From_ line, the rest up to
    the next one, separator included)."""
    starts = [m.start() for m in FROM_LINE.finditer(data)
              if m.start() == 0 or data[m.start() - 2:m.start()] == b"\n\n"]
    out = []
    for i, at in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        nl = data.index(b"\n", at) + 1
        out.append((data[at:nl], data[nl:end]))
    return out


def without_received(msg):
    """The message without its leading Received: fields (the one line
    that says how it came: SMTP or sendmail)."""
    lines = msg.split(b"\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(b"Received:") or
                              (i > 0 and lines[i][:1] in (b" ", b"\t"))):
        i += 1
    return b"\n".join(lines[i:])


@harness.need_feature("relay")
@harness.need_feature("sendmail")
class OneLocalDelivery(harness.ServerTest):
    """SMTP receive and the queue (sendmail's mail) deliver to a local
    mailbox through the one local delivery of the store: the same From_
    line, the same mboxrd quoting, the same separator, byte for byte
    apart from the Received: line each path writes."""
    server_args = {"extra": RELAY_EXTRA, "max_size": "2M"}

    def test_smtp_and_sendmail_frame_alike(self):
        t = token("frame")
        head = ("From: <sender@test.lan>\nTo: <bob@test.lan>\nSubject: %s\n"
                "Date: Sat, 05 Dec 2026 10:00:00 +0000\nMessage-ID: <%s@test>\n\n"
                % (t, t))
        smtp_text = crlf(head + LOCAL_BODY.replace("\n.", "\n..") + "\n")
        code, lines = self.deliver(["bob@test.lan"], smtp_text, sender="sender@test.lan")
        self.assertEqual(code, 250, lines)
        self.assertEqual(len(self.server.find("bob", t)), 1)
        r = subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-i",
                                           "-f", "sender@test.lan", "bob@test.lan"),
                           cwd=self.server.dir, input=(head + LOCAL_BODY).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = wait_delivered(self.server, "bob", t)
        harness.wait_until(lambda: len(self.server.find("bob", t)) == 2, QUEUE_BOUND,
                           "the sendmail copy in bob's mailbox; log:\n"
                           + self.server.log()[-1500:])
        self.assertRegex(self.server.log(), r"maildrop: \S+ from uid \d+ queued")
        msgs = [m for m in local_messages(self.server.mbox_bytes("bob"))
                if t.encode() in m[1]]
        self.assertEqual(len(msgs), 2, got)
        (from1, smtp), (from2, queued) = msgs
        self.assertTrue(smtp.startswith(b"Received: from "), smtp[:200])
        self.assertTrue(queued.startswith(b"Received: (from "), queued[:200])
        self.assertEqual(without_received(smtp), without_received(queued))
        body = without_received(smtp)
        self.assertIn(b"\n>From the start of a line\n>>From quoted once\n"
                      b">>>From twice\nFrom\nFromage\nfrom lower case\n"
                      b". a dot line\n", body)
        self.assertTrue(body.endswith(b"\n>From at the very end\n\n"), body[-60:])
        self.assertEqual(from1[:24], from2[:24])

    def test_failure_is_a_451_and_a_deferral(self):
        """A mailbox that cannot be written (a symlink) fails alike on
        both paths: SMTP answers 451 4.3.0, the queue keeps sendmail's
        message deferred with the same reason (mailq shows it)."""
        link = self.server.path("mail", "carol")
        os.symlink("elsewhere", link)
        try:
            t = token("fail")
            code, lines = self.deliver(["carol@test.lan"], crlf(self.msg_text(t)),
                                       sender="sender@test.lan")
            self.assertEqual((code, lines[0][:9]), (451, "451 4.3.0"), lines)
            r = subprocess.run(harness.command("sendmail", "-C", "postie.conf",
                                               "carol@test.lan"),
                               cwd=self.server.dir, input=self.msg_text(t).encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30 * SLOW)
            self.assertEqual(r.returncode, 0, r.stderr)

            def mailq():
                p = subprocess.run(harness.command("sendmail", "-C", "postie.conf",
                                                   "-bp"), cwd=self.server.dir,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   timeout=30 * SLOW)
                out = p.stdout.decode("utf-8", "replace")
                return "4.3.0 mailbox: " in out and out
            out = harness.wait_until(mailq, QUEUE_BOUND, "a deferral in mailq; log:\n"
                                     + self.server.log()[-1500:])
            self.assertRegex(out, r"\(deferred after 1 attempt: 4\.3\.0 mailbox: "
                             r"(Symbolic link loop|Too many levels of symbolic links)\)\n +carol@test\.lan "
                             r"\(mailbox carol\)")
            self.assertTrue(os.path.islink(link))
        finally:
            os.unlink(link)
        # Once the mailbox can be written, sendmail's copy arrives.
        subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-q"),
                       cwd=self.server.dir, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(len(wait_delivered(self.server, "carol", t)), 1,
                         self.server.log()[-1500:])

    @staticmethod
    def msg_text(t):
        return "Subject: %s\nMessage-ID: <%s@test>\n\nbody\n" % (t, t)


if __name__ == "__main__":
    unittest.main()
