"""Crash safety under load (README.md: Delivery and durability).

Several SMTP clients send messages to local users and, through a scripted
smarthost on 127.0.0.61, to remote recipients, while a POP3 (or IMAP)
session deletes messages from a mailbox that already holds a few hundred;
postie is killed with SIGKILL at random moments and restarted, again and
again. Afterwards:

- every message that got a 250 is in each local recipient's mbox (or was
  deleted by the mailbox session) and at the smarthost, at least once;
  duplicates are counted and allowed only where the README documents them
  (a queued target may be tried twice after a crash);
- every message in an mbox or at the peer is whole: its body is exactly
  what was sent (mboxrd quoting undone, dot-stuffing undone);
- the pre-filled messages that were never deleted are all still there,
  each exactly once (a rewrite at QUIT/EXPUNGE loses and repeats nothing);
- each mbox parses (From_ lines, mboxrd), the queue and spool/tmp are
  empty once it drains, and no dotlock or rewrite file is left behind.

The kill times come from a seeded RNG; the seed is printed and can be set
with POSTIE_CRASH_SEED to replay a run. POSTIE_CRASH_KILLS sets the number
of kills (default 12; 6 with --quick; POSTIE_FULL=1 makes it 60).
"""
import imaplib
import os
import poplib
import random
import re
import signal
import socket
import threading
import time
import unittest

import harness
import peer as peermod
import tlsutil
from harness import SLOW, crlf, token
from tlsutil import PASSWORD

PEER_HOST = "127.0.0.61"
FULL = os.environ.get("POSTIE_FULL") == "1"
KILLS = int(os.environ.get("POSTIE_CRASH_KILLS") or
            (60 if FULL else 6 if harness.QUICK else 12))
PREFILL = 300               # messages already in the reader's mailbox
SUBJECT = re.compile(rb"^Subject: (\S+)", re.M)


def body_for(t, rnd):
    """The message text (LF line ends, unstuffed, unquoted) for token t:
    From_-like lines, a dot line and a random amount of padding."""
    pad = "".join("%04d %s\n" % (i, "p" * 70) for i in range(rnd.randrange(0, 150)))
    return ("From: <alice@test.lan>\nTo: <x@test.lan>\nSubject: %s\n"
            "Message-ID: <%s@crash.test>\n\nbody of %s\nFrom the start\n"
            ">From quoted\n.dot line\n%send of %s\n" % (t, t, t, pad, t))


def stuffed(text):
    return crlf(text).replace(b"\r\n.", b"\r\n..")


def mbox_entry(text):
    quoted = re.sub(r"(?m)^(>*From )", r">\1", text)
    return "From prefill@example.net Sat Jan  3 01:05:34 2026\n" + quoted + "\n"


class CrashServer(tlsutil.TLSServer):
    """A TLSServer (without TLS) with pop3 or imap listeners as needed."""

    def __init__(self, reader, **kw):
        super().__init__(tls=None, **kw)
        self.reader = reader
        self.reader_port = None

    def config(self, port):
        text = super().config(port)
        if self.reader:
            self.reader_port = harness.free_port()
            text += "listen %s 127.0.0.1:%d\n" % (self.reader, self.reader_port)
        return text


class Ledger:
    """What the clients were told, shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bodies = {}        # token -> text
        self.acked = {}         # token -> recipients, for 250 answers
        self.dele = set()       # tokens a mailbox session asked to delete

    def add(self, d, t, value):
        with self.lock:
            d[t] = value


class CrashTest(harness.TestCase):
    timeout = int((150 + 3 * KILLS) * SLOW)

    def setUp(self):
        super().setUp()
        if "relay" not in harness.features():
            self.skipTest("feature 'relay' not in this build")
        self.peer = peermod.Peer(PEER_HOST).listen().start()
        self.srv = None

    def tearDown(self):
        try:
            self.peer.stop()
            if self.srv:
                self.srv.cleanup()
        finally:
            super().tearDown()

    # ---- load ---------------------------------------------------------------

    def smtp_client(self, n, stop, ledger, rnd):
        choices = [["demo@test.lan"], ["demo@test.lan", "far@remote.test"],
                   ["far@remote.test"], ["carol@test.lan", "demo@test.lan"],
                   ["carol@test.lan", "other@remote.test"]]
        for i in range(500):
            if stop.is_set():
                return
            t = token("c%d" % n)
            rcpts = choices[(i + n) % len(choices)]
            text = body_for(t, rnd)
            ledger.add(ledger.bodies, t, text)
            try:
                with harness.Dialog(self.srv.port, timeout=5) as d:
                    d.ehlo()
                    code, _ = d.send_mail("alice@test.lan", rcpts, stuffed(text))
            except (OSError, harness.Closed, AssertionError):
                time.sleep(0.02)
                continue
            if code == 250:
                ledger.add(ledger.acked, t, rcpts)

    def pop3_session(self, ledger, rnd):
        p = poplib.POP3("127.0.0.1", self.srv.reader_port, timeout=5)
        try:
            p.user("carol")
            p.pass_(PASSWORD)
            n = p.stat()[0]
            for i in rnd.sample(range(1, n + 1), min(n, 4)):
                m = SUBJECT.search(b"\n".join(p.top(i, 0)[1]))
                with ledger.lock:
                    ledger.dele.add(m.group(1).decode())
                p.dele(i)
            p.quit()
        finally:
            p.close()

    def imap_session(self, ledger, rnd):
        m = imaplib.IMAP4("127.0.0.1", self.srv.reader_port, timeout=5)
        try:
            m.login("carol", PASSWORD)
            typ, data = m.select("INBOX")
            n = int(data[0])
            for i in rnd.sample(range(1, n + 1), min(n, 4)):
                typ, data = m.fetch(str(i), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                got = SUBJECT.search(data[0][1])
                with ledger.lock:
                    ledger.dele.add(got.group(1).decode())
                m.store(str(i), "+FLAGS", "(\\Deleted)")
            m.expunge()
            m.logout()
        finally:
            try:
                m.shutdown()
            except OSError:
                pass

    def reader_loop(self, stop, ledger, rnd):
        session = self.pop3_session if self.srv.reader == "pop3" else self.imap_session
        for _ in range(500):
            if stop.is_set():
                return
            try:
                session(ledger, rnd)
            except (OSError, EOFError, poplib.error_proto, imaplib.IMAP4.error,
                    AttributeError, ValueError, IndexError):
                time.sleep(0.05)

    # ---- the run --------------------------------------------------------------

    def run_kills(self, reader):
        seed = int(os.environ.get("POSTIE_CRASH_SEED") or random.randrange(1 << 30))
        print("\ntest_crash: %s seed %d (POSTIE_CRASH_SEED=%d replays it), %d kills"
              % (reader or "smtp", seed, seed, KILLS), flush=True)
        rnd = random.Random(seed)
        users = tlsutil.default_users()
        users.update({"carol": users["alice"], "demo": ""})
        extra = ("relay_networks 127.0.0.1/32\nqueue_retry 1s 2s\n"
                 "smarthost %s:%d plain\n" % (PEER_HOST, self.peer.port))
        if reader:
            extra += "plaintext_auth_networks 127.0.0.1/32\n"
        srv = self.srv = CrashServer(reader, users=users, extra=extra)
        ledger = Ledger()
        prefill = {}
        for i in range(PREFILL):
            t = token("pre%d" % i)
            prefill[t] = body_for(t, rnd)
        srv.write("mail/carol", "".join(mbox_entry(b) for b in prefill.values()), 0o600)
        srv.start()
        pids = set()
        for k in range(KILLS):
            stop = threading.Event()
            threads = [threading.Thread(target=self.smtp_client,
                                        args=(n, stop, ledger, random.Random(rnd.random())),
                                        daemon=True) for n in range(4)]
            if reader:
                threads.append(threading.Thread(
                    target=self.reader_loop, daemon=True,
                    args=(stop, ledger, random.Random(rnd.random()))))
            for th in threads:
                th.start()
            time.sleep(rnd.uniform(0.1, 0.5) * SLOW)
            pids.add(srv.proc.pid)
            srv.proc.kill()
            srv.proc.wait(10)
            stop.set()
            for th in threads:
                th.join(15)
                self.assertFalse(th.is_alive(), "a client thread hangs")
            srv.stop()
            srv.start()
        self.assertGreater(len(ledger.acked), KILLS, "too few messages got a 250")
        self.check(srv, ledger, prefill)
        if reader:
            # A rewrite killed half-way leaves its .new files in
            # mail_dir/.postie until that mailbox's next rewrite (which
            # removes them under the lock): do one.
            deleter = self.pop3_session if reader == "pop3" else self.imap_session
            deleter(ledger, rnd)
        rc = srv.stop()
        self.assertEqual(rc, 0, srv.log()[-1500:])
        self.assertIsNone(srv.sanitizer_report(), srv.sanitizer_report())
        self.check_leftovers(srv)

    def wait(self, pred, what, timeout=60):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.1)
        self.fail("timed out waiting for %s; log:\n%s" % (what, self.srv.log()[-2000:]))

    def queue_files(self, srv):
        try:
            return sorted(os.listdir(srv.path("spool", "queue")))
        except FileNotFoundError:
            return []

    def check(self, srv, ledger, prefill):
        remote = {t for t, r in ledger.acked.items()
                  if any(a.endswith("@remote.test") for a in r)}
        self.wait(lambda: not self.queue_files(srv), "an empty queue")
        at_peer = {}

        def peer_has_all():
            at_peer.clear()
            for tx in self.peer.accepted():
                got = SUBJECT.search(tx.data)
                at_peer.setdefault(got.group(1).decode() if got else None, []).append(tx)
            return remote <= set(at_peer)
        self.wait(peer_has_all, "every acknowledged remote message at the peer")
        boxes = {u: harness.split_mbox(srv.mbox_bytes(u)) for u in ("demo", "carol")}
        seen = {u: {} for u in boxes}
        for u, msgs in boxes.items():
            for m in msgs:
                got = SUBJECT.search(m.raw)
                self.assertIsNotNone(got, "message without Subject in %s: %r"
                                     % (u, m.raw[:300]))
                t = got.group(1).decode()
                want = ledger.bodies.get(t) or prefill.get(t)
                self.assertIsNotNone(want, "unknown message %s in %s" % (t, u))
                self.assertTrue(m.raw.endswith(want.encode()),
                                "torn or altered message %s in %s: %r"
                                % (t, u, m.raw[-300:]))
                self.assertTrue(m.from_line.startswith(b"From "), m.from_line)
                seen[u][t] = seen[u].get(t, 0) + 1
        dups = 0
        for t, rcpts in ledger.acked.items():
            for a in rcpts:
                user, _, dom = a.partition("@")
                if dom == "remote.test":
                    continue
                if user == "carol" and t in ledger.dele:
                    continue
                self.assertIn(t, seen[user], "acknowledged message %s lost for %s"
                              % (t, user))
                dups += seen[user][t] - 1
        for t in prefill:
            if t not in ledger.dele:
                self.assertEqual(seen["carol"].get(t), 1,
                                 "pre-filled message %s lost or repeated" % t)
        for t, txs in at_peer.items():
            self.assertIn(t, ledger.bodies, "unknown message at the peer")
            for tx in txs:
                self.assertTrue(tx.data.endswith(crlf(ledger.bodies[t])),
                                "torn message %s at the peer" % t)
        peer_dups = sum(len(at_peer[t]) - 1 for t in remote)
        print("test_crash: %d acknowledged (%d remote), %d mailbox deletions, "
              "duplicates: %d local, %d remote" % (len(ledger.acked), len(remote),
                                                   len(ledger.dele), dups, peer_dups),
              flush=True)

    def check_leftovers(self, srv):
        self.assertEqual(self.queue_files(srv), [], "stale queue files")
        self.assertEqual(srv.spool_tmp(), [], "stale spool/tmp files")
        left = []
        for root, _, files in os.walk(srv.path("mail")):
            for f in files:
                if ".lock" in f or f.endswith(".new") or f.endswith(".tmp"):
                    left.append(os.path.relpath(os.path.join(root, f), srv.dir))
        self.assertEqual(left, [], "dotlocks or rewrite files left behind")

    def test_kill9_smtp_local_relay_and_pop3(self):
        self.run_kills("pop3" if "pop3" in harness.features() else None)

    @harness.need_feature("imap")
    def test_kill9_smtp_local_relay_and_imap(self):
        self.run_kills("imap")


class QueueLeftovers(harness.TestCase):
    """What a kill leaves in the queue directory between two steps (a
    state file being replaced; a state file whose message was already
    removed) is swept at start; a real entry and its state stay."""

    def test_stale_state_files_removed_at_start(self):
        if "relay" not in harness.features():
            self.skipTest("feature 'relay' not in this build")
        srv = harness.Server(extra="relay_networks 127.0.0.1/32\n"
                                   "smarthost 127.0.0.62:9 plain\n"
                                   "queue_retry 1h 2h\n")
        try:
            # The daemon makes a queued message and its state (the smarthost
            # refuses: one attempt, next in an hour); the leftovers are
            # copies of what it wrote.
            srv.start()
            t = token()
            with srv.dialog() as d:
                d.ehlo()
                code, lines = d.send_mail("alice@test.lan", ["x@remote.test"],
                                          harness.crlf("Subject: %s\n\nbody\n" % t))
                self.assertEqual(code, 250, lines)
            q = srv.path("spool", "queue")
            deadline = time.monotonic() + 10 * harness.SLOW
            while time.monotonic() < deadline and not any(
                    n.endswith(".st") for n in os.listdir(q)):
                time.sleep(0.05)
            self.assertEqual(srv.stop(), 0, srv.log()[-1500:])
            name, = [n for n in os.listdir(q) if not n.endswith(".st")]
            with open(os.path.join(q, name + ".st"), "rb") as f:
                state = f.read()
            self.assertTrue(state.startswith(b"V 1\n"), state)
            for leftover in (name + ".st.new", "1000.2.gone.st",
                             "1000.3.gone.st.new"):
                srv.write(os.path.join("spool", "queue", leftover), state, 0o600)
            srv.start()
            # The start's own run rewrites the state: list once it is over.
            deadline = time.monotonic() + 10 * harness.SLOW
            while time.monotonic() < deadline and srv.log().count("deferred (") < 2:
                time.sleep(0.05)
            self.assertEqual(srv.stop(), 0, srv.log()[-1500:])
            self.assertEqual(sorted(os.listdir(q)), [name, name + ".st"],
                             srv.log()[-1500:])
        finally:
            srv.cleanup()


class UnfinishedAppend(harness.TestCase):
    """A daemon killed in the middle of an append leaves its dotlock (with
    the pid, size and inode it recorded) and a torn tail: the next start
    cuts the tail off. A lock recording another inode (a rewrite was
    committed) or only a pid changes nothing."""

    WHOLE = mbox_entry("Subject: whole\n\nkept\n")
    TORN = "From x@example.net Sat Jan  3 01:05:34 2026\nSubject: torn\n\nhal"

    def after_dead_daemon(self, srv):
        """spool/postie.pid names a daemon that is gone; returns its pid."""
        import subprocess
        p = subprocess.Popen(["true"])
        p.wait()
        os.makedirs(srv.path("spool"))
        srv.write("spool/postie.pid", "%d\n" % p.pid)
        return p.pid

    def test_torn_tail_removed_at_start(self):
        srv = harness.Server()
        try:
            whole, torn = self.WHOLE, self.TORN
            pid = self.after_dead_daemon(srv)
            for user in ("demo", "alice", "bob"):
                ino = os.stat(srv.write("mail/" + user, whole + torn, 0o600)).st_ino
                note = {"demo": "%d %d %d\n" % (pid, len(whole), ino),
                        "alice": "%d %d %d\n" % (pid, len(whole), ino + 1),
                        "bob": "%d\n" % pid}[user]
                srv.write("mail/%s.lock" % user, note)
            srv.start()
            self.assertEqual(srv.mbox_bytes("demo"), whole.encode(), srv.log()[-1500:])
            self.assertIn("append cut short by a crash", srv.log())
            for user in ("alice", "bob"):
                self.assertEqual(srv.mbox_bytes(user), (whole + torn).encode())
            for user in ("demo", "alice", "bob"):
                self.assertFalse(os.path.exists(srv.path("mail", user + ".lock")))
            # And the next delivery follows a whole message.
            with srv.dialog() as d:
                d.ehlo()
                code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                      crlf("Subject: next\n\nnext\n"))
            self.assertEqual(code, 250)
            self.assertEqual([m.headers("subject") for m in srv.mbox("demo")],
                             [["whole"], ["next"]])
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()

    def test_folder_locks_and_rewrite_leftovers_removed_at_start(self):
        # IMAP folders live under mail_dir/.postie/folders/USER: a torn copy
        # there is cut off too, and a rewrite's NAME.new / NAME.idx.tmp that
        # never reached its rename (a whole mailbox on flash) are removed.
        srv = harness.Server()
        try:
            whole, torn = self.WHOLE, self.TORN
            pid = self.after_dead_daemon(srv)
            fdir = srv.path("mail", ".postie", "folders", "demo", "Archive")
            os.makedirs(os.path.join(fdir, ".postie"))
            ino = os.stat(srv.write("mail/.postie/folders/demo/Archive/2026",
                                    whole + torn, 0o600)).st_ino
            srv.write("mail/.postie/folders/demo/Archive/2026.lock",
                      "%d %d %d\n" % (pid, len(whole), ino))
            left = ["mail/.postie/demo.new", "mail/.postie/demo.idx.tmp",
                    "mail/.postie/folders/demo/Archive/.postie/2026.new",
                    "mail/.postie/folders/demo/Archive/.postie/2026.idx.tmp"]
            for f in left:
                srv.write(f, "x" * 1000, 0o600)
            srv.write("mail/.postie/keep.idx", "index", 0o600)
            srv.start()
            with open(os.path.join(fdir, "2026"), "rb") as f:
                self.assertEqual(f.read(), whole.encode(), srv.log()[-1500:])
            self.assertFalse(os.path.exists(os.path.join(fdir, "2026.lock")))
            for f in left:
                self.assertFalse(os.path.exists(srv.path(f)), f)
            self.assertTrue(os.path.exists(srv.path("mail/.postie/keep.idx")))
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
