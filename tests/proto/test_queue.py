"""The queue's start-up, retries, per-recipient state, bounces and mailq,
end to end with the real binary: the dnsmasq and the scripted peers of
test_relay.py (same records and addresses), `postie sendmail` with the
daemon stopped, and the state read back through store/qstate (the
qstate_tool test program, built next to the binary) and through mailq.
Every queue and state file here is made by the daemon.

What counts as a delivery attempt is asserted from the recorded state
(attempts, runs that failed on this side, next try), never from how long
something took; the waits are only generous upper bounds."""
import email
import os
import re
import signal
import socket
import subprocess
import time

import harness
import test_relay as rl
from harness import SLOW, slow, token
from test_relay import PEERS, TOOL, RelayTest, need_dns, send, msg, wait_until, qstate

def setUpModule():
    rl.setUpModule()


def tearDownModule():
    rl.tearDownModule()


def reports(srv, user, t):
    """(failure reports, delay warnings) about message t in user's mbox,
    as email.message objects."""
    failed, delayed = [], []
    for m in srv.find(user, t):
        if m.sender != "MAILER-DAEMON":
            continue
        em = email.message_from_bytes(m.raw)
        status = em.get_payload()[1].get_payload()
        actions = [b["Action"].strip() for b in status[1:]]
        (delayed if actions and set(actions) == {"delayed"} else failed).append(em)
    return failed, delayed


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def per_recipient(em):
    return em.get_payload()[1].get_payload()[1:]


@need_dns
class QueueTest(RelayTest):
    prechecks = RelayTest.prechecks + (rl._check_sendmail,)
    timeout = int(240 * SLOW)

    def setUp(self):
        super().setUp()
        if not os.path.exists(TOOL):
            self.skipTest("no qstate_tool at %s" % TOOL)

    def sendmail(self, srv, args, text):
        r = subprocess.run(harness.command("sendmail", "-C", "postie.conf", *args),
                           cwd=srv.dir, input=text.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)

    def mailq(self, srv, **kw):
        r = subprocess.run(harness.command("mailq", "-C", "postie.conf"),
                           cwd=srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW, **kw)
        return r.returncode, r.stdout.decode("utf-8", "replace"), \
            r.stderr.decode("utf-8", "replace")

    def mailq_ok(self, srv):
        rc, out, err = self.mailq(srv)
        self.assertEqual(rc, 0, err)
        return out

    # ---- start-up ------------------------------------------------------

    def test_queue_filled_while_down_goes_at_start(self):
        srv = self.postie()
        self.assertEqual(srv.stop(), 0)
        toks = [token() for _ in range(3)]
        for t in toks:
            self.sendmail(srv, ["-i", "to@amx.test"], "Subject: %s\n\n%s\n" % (t, t))
        out = self.mailq_ok(srv)
        self.assertIn("3 messages in maildrop, not yet picked up", out)
        srv.start()
        for t in toks:
            self.wait_peer("mx", t)
        self.wait_empty(srv)
        log = wait_until(lambda: srv.log().count("done after") >= 3 and srv.log(),
                         rl.WAIT, "three 'done' lines")
        # The resolver was ready for the first run: no run failed, each
        # message went in one attempt.
        self.assertNotIn("deferred", log)
        self.assertNotIn("could not start", log)
        self.assertEqual(log.count("done after 1 attempt(s)"), 3, log[-2000:])
        self.assertIn("Mail queue is empty", self.mailq_ok(srv))

    def test_more_due_at_start_than_slots_all_go(self):
        # Mail for a local user ends its attempt inside the run that
        # starts it. The first run after a start used to count each start
        # against the free delivery slots (CONFIG_RELAY_MAX_DELIVERIES, at
        # most 64) and stop with the timer cleared: the rest of the queue
        # waited for new mail or SIGUSR1 (after a kill -9, messages whose
        # every target was done but whose files were still there did it).
        n = 64 + 1
        srv = self.postie()
        self.assertEqual(srv.stop(), 0)
        t = token()
        for i in range(n):
            self.sendmail(srv, ["-i", "alice@test.lan"],
                          "Subject: %s %d\n\n%s %d\n" % (t, i, t, i))
        srv.start()
        self.wait_mbox(srv, "alice", t, n=n)
        self.wait_empty(srv)
        # each 'done' line comes just after its message's files go
        log = wait_until(lambda: srv.log().count("done after ") >= n and srv.log(),
                         rl.WAIT, "%d 'done' lines" % n)
        self.assertIn("queue: %d message(s) waiting" % n, log)
        self.assertEqual(log.count("done after "), n, log[-2000:])

    @slow
    def test_dns_down_at_start_then_up(self):
        # A DNS server that is not there yet (a router before its WAN is
        # up): the run fails on this side, which is not an attempt: no
        # backoff (queue_retry is 10m here), tried again within a minute.
        # The port stays ours (a server that never answers) until dnsmasq
        # takes it over: another test's dnsmasq must not get it meanwhile.
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((rl.DNS_LISTEN, 0))
        port = s.getsockname()[1]
        dns = rl.Dnsmasq()
        try:
            srv = self.postie(retry="10m 1h", start=False)
            srv.extra = re.sub(r"dns_server \S+", "dns_server %s:%d" % (
                rl.DNS_LISTEN, port), srv.extra)
            srv.start()
            self.assertEqual(srv.stop(), 0)
            t = token()
            self.sendmail(srv, ["-i", "to@amx.test"], "Subject: %s\n\n%s\n" % (t, t))
            srv.start()
            name = wait_until(lambda: rl.queue_names(srv), rl.WAIT, "picked up")[0]
            st = wait_until(lambda: (qstate(srv, name) or {}).get("local_fails"),
                            90 * SLOW, "a run that failed on this side; log:\n" +
                            srv.log()[-1500:]) and qstate(srv, name)
            tg, = st["targets"]
            self.assertEqual(st["attempts"], 0, st)
            self.assertEqual(tg["tries"], 0, st)
            self.assertEqual(tg["local"], 1, st)
            self.assertEqual(tg["state"], "p", st)
            self.assertIn("DNS", tg["text"])
            self.assertLessEqual(st["next"] - time.time(), 61, st)
            out = self.mailq_ok(srv)
            self.assertIn("a problem on this side, not counted as an attempt", out)
            self.assertIn("0 delivery attempts", out)
            self.assertIn("to@amx.test", out)
            # DNS comes up: delivered by the next run, no signal needed.
            s.close()
            self.assertTrue(dns.start(port), getattr(dns, "error", ""))
            self.wait_peer("mx", t, timeout=150 * SLOW)
            self.wait_empty(srv)
            # the line comes just after the files go
            log = wait_until(lambda: "done after" in srv.log() and srv.log(),
                             rl.WAIT, "the 'done' line")
            self.assertIn("done after 1 attempt(s)", log)
        finally:
            s.close()
            dns.stop()

    def test_local_copy_is_not_an_attempt_for_the_remote_one(self):
        # A message with a local copy and a remote one (an alias like
        # "root: alice, me@example.com"): the mailbox delivery is not an
        # attempt, so the remote part that failed on this side is tried
        # again within a minute like a remote-only message, not after
        # queue_retry MIN.
        srv = self.postie(retry="10m 1h")
        t = token()
        self.assertQueued(send(srv, "bob@test.lan",
                               ["alice@test.lan", "x@example.invalid"], msg(t)))
        self.wait_mbox(srv, "alice", t)
        name = rl.queue_names(srv)[0]
        st = wait_until(lambda: (qstate(srv, name) or {}).get("local_fails"),
                        rl.WAIT, "a run failed on this side; log:\n" +
                        srv.log()[-1500:]) and qstate(srv, name)
        self.assertEqual(st["attempts"], 0, st)
        remote, = [tg for tg in st["targets"] if tg["state"] == "p"]
        self.assertEqual(remote["local"], 1, st)
        self.assertLessEqual(st["next"] - time.time(), 61, st)
        out = self.mailq_ok(srv)
        self.assertIn("0 delivery attempts", out)
        self.assertIn("not counted as an attempt, next try in 60 s", srv.log())

    @slow
    def test_locked_mailbox_is_not_an_attempt(self):
        # A mailbox still locked after MBOX_LOCK_WAIT (a mail client busy
        # with it, or another program's dotlock) is a problem on this
        # side: retried within a minute, not after queue_retry MIN (10m
        # here), and the reason does not blame "another program" alone
        # (outside attack r6, 12: postie's own IMAP sessions held it).
        srv = self.postie(retry="10m 1h")
        lock = srv.path("mail", "alice.lock")
        with open(lock, "w") as f:
            f.write("%d\n" % os.getpid())
        t = token()
        try:
            self.sendmail(srv, ["-i", "alice"], "Subject: %s\n\n%s\n" % (t, t))
            name = wait_until(lambda: rl.queue_names(srv), rl.WAIT, "queued")[0]
            st = wait_until(lambda: (qstate(srv, name) or {}).get("local_fails"),
                            rl.WAIT, "a run failed on this side; log:\n" +
                            srv.log()[-1500:]) and qstate(srv, name)
            self.assertEqual(st["attempts"], 0, st)
            tg, = st["targets"]
            self.assertEqual(tg["state"], "p", st)
            self.assertEqual(tg["local"], 1, st)
            self.assertEqual(tg["tries"], 0, st)
            self.assertIn("mailbox busy", tg["text"], st)
            self.assertLessEqual(st["next"] - time.time(), 61, st)
        finally:
            os.unlink(lock)
        # the lock goes: delivered by the next run, within a minute
        self.wait_mbox(srv, "alice", t, timeout=90 * SLOW)
        self.wait_empty(srv)

    def test_double_bounce_is_kept(self):
        # `sendmail nosuch` as root with no root alias: the recipient
        # fails, the bounce to root@HOSTNAME fails too; that message from
        # <> has nobody to go to and is kept in bad/, never dropped.
        srv = self.postie()
        t = token()
        self.sendmail(srv, ["-i", "nosuch"], "Subject: %s\n\n%s\n" % (t, t))
        bad = srv.path("spool", "bad")
        kept = wait_until(lambda: [n for n in (os.listdir(bad) if
                                   os.path.isdir(bad) else [])
                                   if n.endswith(".undeliverable")],
                          rl.WAIT, "a kept double bounce; log:\n" +
                          srv.log()[-1500:])
        self.assertEqual(len(kept), 1, kept)
        with open(os.path.join(bad, kept[0]), "rb") as f:
            self.assertIn(t.encode(), f.read())    # the bounce quotes it
        log = wait_until(lambda: "undeliverable" in srv.log() and srv.log(),
                         rl.WAIT, "the log line")
        self.assertRegex(log, r"from <> and undeliverable, nobody to report "
                         r"it to: kept as \S+/bad/%s" % re.escape(kept[0]))
        self.wait_empty(srv)
        out = self.mailq_ok(srv)
        self.assertIn("-- 1 undeliverable message from <> (bounces nobody "
                      "could take) kept in ", out)
        self.assertNotIn("maildrop file", out)

    def test_resolver_that_resolves_nothing_is_local(self):
        # A router's dnsmasq before the WAN is up answers, but refuses
        # everything (the test dnsmasq refuses names outside .test): while
        # no name at all resolves, that is this side's problem.
        srv = self.postie(retry="10m 1h")
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["x@example.invalid"], msg(t)))
        name = rl.queue_names(srv)[0]
        st = wait_until(lambda: (qstate(srv, name) or {}).get("local_fails"),
                        rl.WAIT, "a run failed on this side; log:\n" +
                        srv.log()[-1500:]) and qstate(srv, name)
        self.assertEqual(st["attempts"], 0, st)
        self.assertEqual(st["targets"][0]["local"], 1, st)
        self.assertIn("no name resolved lately", st["targets"][0]["text"])
        # Once names resolve, the same refusal is the destination's.
        t2 = token()
        self.assertQueued(send(srv, "alice@test.lan", ["ok@amx.test"], msg(t2)))
        self.wait_peer("mx", t2)
        t3 = token()
        self.assertQueued(send(srv, "alice@test.lan", ["y@example.invalid"], msg(t3)))
        name3 = wait_until(lambda: [n for n in rl.queue_names(srv) if n != name],
                           rl.WAIT, "the third message")[0]
        st = wait_until(lambda: (qstate(srv, name3) or {}).get("attempts"),
                        rl.WAIT, "a counted attempt; log:\n" + srv.log()[-1500:]) \
            and qstate(srv, name3)
        self.assertEqual(st["attempts"], 1, st)
        self.assertEqual(st["local_fails"], 0, st)
        self.assertEqual(st["targets"][0]["local"], 0, st)

    def test_backoff_doubles_per_attempt(self):
        # queue_retry 10m 1h: 10, 20, 40, 60, 60 minutes after each
        # attempt, read from the recorded state (SIGUSR1 makes each next
        # attempt happen now).
        srv = self.postie(retry="10m 1h")
        PEERS["flaky"].set({"RCPT": "450 4.2.1 greylisted"})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["g@flaky.test"], msg(t)))
        name = rl.queue_names(srv)[0]
        for n, minutes in enumerate((10, 20, 40, 60, 60), 1):
            if n > 1:
                srv.signal(signal.SIGUSR1)
            st = wait_until(lambda: (qstate(srv, name) or {}).get("attempts", 0) >= n
                            and qstate(srv, name), rl.WAIT, "attempt %d" % n)
            tg, = st["targets"]
            self.assertEqual((st["attempts"], tg["tries"], st["local_fails"]),
                             (n, n, 0), st)
            self.assertAlmostEqual(st["next"] - tg["when"], minutes * 60, delta=2)
            self.assertEqual(tg["code"], 450)

    # ---- per-recipient state, bounces, mailq --------------------------------

    def test_mixed_replies_one_bounce_per_failed_recipient(self):
        srv = self.postie(extra="delay_warning 1s\n")
        bad, later, ok = "bad@flaky.test", "later@flaky.test", "ok@flaky.test"
        grey = "450 4.2.1 <later@flaky.test>: greylisted"
        PEERS["flaky"].set(
            {"RCPT": {bad: "550 5.1.1 <bad@flaky.test>: no such user", later: grey}},
            {"RCPT": {later: grey}}, {"RCPT": {later: grey}},
            {"RCPT": {later: "550 5.1.1 <later@flaky.test>: gone now"}})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", [ok, bad, later], msg(t)))
        name = rl.queue_names(srv)[0]

        # While later@ waits: mailq names each recipient with its state
        # and the server's words.
        def snapshot():
            # The bounce to alice may sit in the queue for a loop pass.
            out = self.mailq_ok(srv)
            return "said: " + grey in out and "returned to sender" in out and \
                "in 1 Request." in out and out
        out = wait_until(snapshot, rl.WAIT, "mailq with the 450 and the bounce")
        self.assertIn(name, out)
        self.assertIn("alice@test.lan", out)
        self.assertRegex(out, r"\(delivered: host flaky\.test said: 250[^)]*\)\n\s+%s\n"
                         % re.escape(ok))
        self.assertRegex(out, r"\(failed, returned to sender: host flaky\.test said: "
                         r"550 5\.1\.1 <bad@flaky\.test>: no such user\)\n\s+%s\n"
                         % re.escape(bad))
        self.assertRegex(out, r"\(deferred after \d+ attempts?: host flaky\.test "
                         r"said: %s\)\n\s+%s\n" % (re.escape(grey), re.escape(later)))
        self.assertRegex(out, r"\(age \d+s; \d+ delivery attempts?; next try ")
        # The totals line adds up what it lists (the bounce for bad@ may
        # still be queued for alice at this moment, or already delivered).
        sizes = [int(x) for x in re.findall(r"(?m)^\S+ +(\d+) \w{3} ", out)]
        self.assertIn(len(sizes), (1, 2), out)
        self.assertIn("-- %d Kbytes in %d Request%s." % (
            (sum(sizes) + 1023) // 1024, len(sizes), "s" if len(sizes) > 1 else ""), out)

        def two_bounces():
            f, d = reports(srv, "alice", t)
            return len(f) >= 2 and (f, d)
        failed, delayed = wait_until(two_bounces, 30 * SLOW, "two bounces; log:\n"
                                     + srv.log()[-2000:])
        self.wait_empty(srv)
        time.sleep(0.5)
        failed, delayed = reports(srv, "alice", t)
        self.assertEqual(len(failed), 2, [f.as_string()[:300] for f in failed])
        first = per_recipient(failed[0])
        second = per_recipient(failed[1])
        self.assertEqual([b["Final-Recipient"] for b in first], ["rfc822; " + bad])
        self.assertEqual([b["Final-Recipient"] for b in second], ["rfc822; " + later])
        for b in first + second:
            self.assertEqual(b["Action"], "failed")
            self.assertEqual(b["Remote-MTA"], "dns; flaky.test")
            self.assertTrue(b["Diagnostic-Code"].startswith("smtp; 550 5.1.1 <"), b)
        self.assertIn("no such user", first[0]["Diagnostic-Code"])
        self.assertIn("gone now", second[0]["Diagnostic-Code"])
        # One delay warning for the message, naming the one still waiting.
        self.assertEqual(len(delayed), 1)
        self.assertEqual([b["Final-Recipient"] for b in per_recipient(delayed[0])],
                         ["rfc822; " + later])
        # ok@ got the message once; nothing was bounced twice.
        self.assertEqual([tx.rcpts for tx in PEERS["flaky"].find(t)], [[ok]])
        self.assertEqual(srv.log().count("bounced 1 recipient(s)"), 2)

    def test_expiry_bounces_once_with_4_4_7(self):
        srv = self.postie()
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["l@late.test", "demo@test.lan"],
                               msg(t)))
        name = rl.queue_names(srv)[0]
        wait_until(lambda: (qstate(srv, name) or {}).get("attempts"), rl.WAIT,
                   "one attempt")
        self.wait_mbox(srv, "demo", t)
        self.assertEqual(srv.stop(), 0)
        st = qstate(srv, name)
        self.assertEqual({x["addr"]: x["state"] for x in st["targets"]},
                         {"l@late.test": "p", "local:demo": "d"})
        # Six days later (queue_lifetime is 5d).
        r = subprocess.run(harness.QEMU + [TOOL, srv.path("spool", "queue"), name,
                                           "age", str(6 * 86400)], timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0)
        srv.start()
        em, per = self.assertBounce(srv, t, ["l@late.test"], r"^4\.4\.7$")
        self.assertTrue(per[0]["Diagnostic-Code"].startswith("smtp; "), per[0])
        self.assertNotIn("Remote-MTA", per[0])
        self.wait_empty(srv)
        self.assertEqual(len(srv.find("demo", t)), 1, "delivered twice")

    def test_sendmail_q_by_another_user(self):
        # The daemon runs as root here: a user cannot signal it and asks
        # through the maildrop instead.
        if os.geteuid() != 0:
            self.skipTest("needs root to run sendmail -q as another user")
        srv = self.postie(retry="10m 1h")
        os.chmod(srv.dir, 0o755)
        PEERS["flaky"].set({"RCPT": "450 4.2.1 greylisted"}, {})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["g@flaky.test"], msg(t)))
        name = rl.queue_names(srv)[0]
        wait_until(lambda: (qstate(srv, name) or {}).get("attempts"), rl.WAIT,
                   "one attempt")
        r = subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-q"),
                           cwd=srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW,
                           preexec_fn=as_nobody)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"through the maildrop", r.stdout)
        self.wait_peer("flaky", t)
        self.wait_empty(srv)
        self.assertEqual([n for n in os.listdir(srv.path("spool", "maildrop"))
                          if n.startswith(".runq")], [])

    def test_mailq_for_another_user_says_why(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run mailq as another user")
        srv = self.postie()
        os.chmod(srv.dir, 0o755)
        rc, out, err = self.mailq(srv, preexec_fn=as_nobody)
        self.assertEqual(rc, 77, out + err)
        self.assertIn("readable only by root and the daemon's user", err)
        self.assertNotIn("@", out)
