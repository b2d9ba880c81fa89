"""Relaying through a real smarthost: a private Postfix from Debian
(postfix.py) on 127.0.0.9 with STARTTLS (587-style) and implicit TLS
(465-style) services, SASL logins and certificates from a test CA.

postie relays everything non-local to it (`smarthost 127.0.0.9:PORT MODE`,
`smarthost_name smart.test`, `ca_file` the test CA, `smarthost_auth`), and
the tests read what Postfix delivered into its own mailboxes and what it
logged. A build without the SMTP server (board alerts) runs the same
tests with no listener at all: the mail goes in through sendmail's
maildrop. Failures (wrong password, untrusted certificate, wrong name,
expired certificate) must leave the mail in postie's queue with the reason
in words in postie's log and in `mailq`, and send postmaster one local
notice. Skipped only when Postfix cannot run here (not root, or not
installable: postfix.available() says why).
"""
import os
import re
import subprocess
import time
import unittest

import harness
import postfix
from harness import SLOW, crlf, token

HAVE = harness.features()
SMTP = "smtp" in HAVE       # else mail goes in by sendmail, nothing listens
MBOX = "mbox" in HAVE       # else a null client: no local mailboxes
# What a null client logs instead of a notice to postmaster's mailbox.
NOTICE_LOG = r"notice: no local mailbox for postmaster \(this build has none\): '.*' only in this log"
WAIT = 20 * SLOW
PF = None


def setUpModule():
    global PF
    if "relay" not in HAVE:
        raise unittest.SkipTest("feature 'relay' not in this build")
    missing = [f for f in ("tls", "smarthost-auth") if f not in HAVE]
    if missing:
        raise unittest.SkipTest("needs %s in the build" % ", ".join(missing))
    why = postfix.available()
    if why:
        raise unittest.SkipTest("no Postfix smarthost: " + why)
    # Postfix is there: failing to start it is a failure, not a skip.
    PF = postfix.Postfix().start()


def tearDownModule():
    if PF:
        PF.cleanup()


def wait_until(pred, timeout=WAIT, what="condition", step=0.05):
    return harness.wait_until(pred, timeout, what, step)


def msg(t, extra_body=""):
    return crlf("From: <alice@test.lan>\nTo: <bob@dest.test>\nSubject: %s\n"
                "Message-ID: <%s@test>\n\nbody of %s\n..leading dot line\n%s"
                % (t, t, t, extra_body))


class SmarthostTest(harness.TestCase):
    """Each test starts its own postie (self.postie()); all of them stop
    with 0 and no sanitizer report."""

    def setUp(self):
        super().setUp()
        self.servers = []
        # Postfix logs a session's end after postie has gone: wait (a
        # bounded time) until every session so far has ended, so that
        # this test's part of the log holds only its own sessions.
        log = PF.log()
        for _ in range(100):
            if log.count("]: connect from ") <= log.count("]: disconnect from "):
                break
            time.sleep(0.1)
            log = PF.log()
        self.pf_log0 = len(log)

    def tearDown(self):
        problems = []
        for srv in self.servers:
            if srv.proc is None:
                continue
            rc = srv.stop()
            report = srv.sanitizer_report()
            if rc != 0:
                problems.append("postie exited %r: %s" % (rc, srv.log()[-1500:]))
            if report:
                problems.append("sanitizer: " + report)
        for srv in self.servers:
            srv.cleanup()
        super().tearDown()
        if problems:
            raise AssertionError("\n".join(problems))

    def postie(self, service="submission", mode="starttls", password=None,
               retry="1h 1h", start=True, extra="", ca_text=None, aliases=""):
        """ca_text: the ca_file's content (./ca.pem) instead of the test CA;
        aliases: lines added to the aliases file."""
        conf = "\n".join([
            "relay_networks 127.0.0.1/32",
            "smarthost %s:%d %s" % (PF.addr, PF.port[service], mode),
            "smarthost_name %s" % postfix.NAME,
            "smarthost_auth %s ./smarthost.secret" % postfix.USER,
            "ca_file %s" % (PF.ca if ca_text is None else "./ca.pem"),
            "queue_retry %s" % retry,
        ]) + "\n" + extra
        # A null client has no carol: its notices are the log line.
        aliases = ("postmaster: carol\n" if MBOX else "") + aliases
        srv = harness.Server(extra=conf, aliases=aliases or None,
                             users=harness.DEFAULT_USERS, smtp=SMTP)
        srv.write("smarthost.secret", (password or postfix.PASSWORD) + "\n", 0o600)
        if ca_text is not None:
            srv.write("ca.pem", ca_text)
        self.servers.append(srv)
        return srv.start() if start else srv

    def send(self, srv, t, rcpts=("bob@dest.test",), body=None):
        if not SMTP:
            # sendmail -i takes the text as it is: no dot-stuffing.
            text = (msg(t) if body is None else body).replace(b"\r\n..", b"\r\n.")
            self.sendmail(srv, t, rcpt=list(rcpts), body=text, sender="alice@test.lan")
            return
        with srv.dialog() as d:
            d.ehlo()
            code, lines = d.send_mail("alice@test.lan", list(rcpts),
                                      body or msg(t))
            d.cmd("QUIT")
        self.assertEqual(code, 250, lines)

    def pf_log(self):
        return PF.log()[self.pf_log0:]

    def wait_pf(self, user, t, n=1):
        return wait_until(lambda: len(PF.find(user, t)) >= n and PF.find(user, t),
                          what="%s in Postfix's mailbox of %s; postie log:\n%s\n"
                          "Postfix log:\n%s" % (t, user, self.servers[-1].log()[-1500:],
                                                self.pf_log()[-1500:]))

    def queue_names(self, srv):
        try:
            names = os.listdir(srv.path("spool", "queue"))
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith(".") and
                      not n.endswith((".st", ".new")))

    def wait_empty(self, srv):
        wait_until(lambda: not self.queue_names(srv), what="an empty queue; log:\n"
                   + srv.log()[-1500:])

    def mailq(self, srv):
        p = subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-bp"),
                           cwd=srv.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode("utf-8", "replace")

    def sendmail(self, srv, t, rcpt="bob@dest.test", body=None, args=(), sender=None):
        text = body or ("Subject: %s\nMessage-ID: <%s@test>\n\nbody of %s\n" % (t, t, t))
        rcpts = [rcpt] if isinstance(rcpt, str) else rcpt
        opts = list(args) + (["-i", "-f", sender] if sender else [])
        p = subprocess.run(harness.command("sendmail", "-C", "postie.conf", *opts,
                                           *rcpts),
                           cwd=srv.dir, input=text.encode() if isinstance(text, str)
                           else text, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)

    # ---- delivered --------------------------------------------------------

    def assertDelivered(self, srv, t):
        m = self.wait_pf("bob", t)[0]
        self.assertEqual(len(PF.find("bob", t)), 1)
        raw = m.raw.decode("utf-8", "replace")
        # Logged in (Postfix says so in its Received:) over TLS (ESMTPSA).
        self.assertIn("(Authenticated sender: %s@%s)" % (postfix.USER, postfix.REALM), raw)
        self.assertRegex(raw, r"with ESMTPSA id")
        self.assertEqual(m.sender, "alice@test.lan")
        self.assertIn("\n.leading dot line\n", raw)      # dot-stuffing undone
        self.wait_empty(srv)
        self.assertRegex(srv.log(), r"smtp_out: %s(:\d+)? accepted 1 recipient"
                         % re.escape(PF.addr))
        return m

    def test_starttls_587_verified_with_login(self):
        srv = self.postie("submission", "starttls")
        t = token("sh587")
        self.send(srv, t)
        self.assertDelivered(srv, t)
        self.assertRegex(self.pf_log(), r"Anonymous TLS connection established|"
                         r"TLS connection established from")

    def test_implicit_tls_465_verified_with_login(self):
        srv = self.postie("smtps", "tls")
        t = token("sh465")
        self.send(srv, t)
        self.assertDelivered(srv, t)

    def test_failed_ca_reload_keeps_the_old_anchors(self):
        # A reload whose ca_file is unusable is refused as a whole; the CA
        # certificates loaded at start must still check the smarthost (they
        # used to be freed first, and every try then failed).
        with open(PF.ca) as f:
            srv = self.postie("submission", "starttls", ca_text=f.read())
        srv.write("ca.pem", "-----BEGIN CERTIFICATE-----\nbroken!\n"
                  "-----END CERTIFICATE-----\n", 0o644)
        self.assertFalse(srv.reload())
        self.assertIn("no usable CA certificates", srv.log())
        t = token("shcarl")
        self.send(srv, t)
        self.assertDelivered(srv, t)

    def test_damaged_certificate_in_ca_bundle_skipped(self):
        # One damaged object in the middle of a bundle costs that object,
        # not the whole bundle: the others still check the smarthost.
        with open(PF.ca) as f:
            good = f.read()
        srv = self.postie("submission", "starttls", ca_text=(
            "-----BEGIN CERTIFICATE-----\nno!base64\n-----END CERTIFICATE-----\n"
            + good + "-----BEGIN CERTIFICATE-----\nTUlJ\n"))
        t = token("shcabad")
        self.send(srv, t)
        self.assertDelivered(srv, t)
        self.assertIn("2 damaged or unreadable certificates skipped, 1 in use", srv.log())

    def test_root_as_an_address_goes_to_the_smarthost(self):
        """`sendmail root` with root an alias of an address: out through
        the smarthost (on a null client, the only way root's mail goes)."""
        srv = self.postie("submission", "starttls", aliases="root: bob@dest.test\n")
        t = token("shroot")
        self.sendmail(srv, t, rcpt="root")
        self.wait_pf("bob", t)
        self.wait_empty(srv)
        self.assertEqual(len(PF.find("bob", t)), 1)

    def test_targets_beyond_the_table_keep_the_message(self):
        """Two aliases of 60 addresses each in one message: 120 targets,
        20 more than a queued message records. The first 100 go out; the
        message is then kept in spool/bad as ID.overflow, never called
        done (the rest were silently dropped before)."""
        n = int(harness.limit("rcpt", 100))
        half = n // 2 + 10
        aliases = "".join("g%d: %s\n" % (g, ", ".join(
            "bob+o%d.%d@dest.test" % (g, i) for i in range(half))) for g in (1, 2))
        srv = self.postie("submission", "starttls", aliases=aliases)
        t = token("shover")
        self.sendmail(srv, t, rcpt=["g1", "g2"])
        line = wait_until(lambda: re.search(r"queue: (\S+): more targets after alias "
                                            r"expansion than a message holds "
                                            r"\(CONFIG_SMTP_MAX_RCPT\), the rest never "
                                            r"sent: kept as (\S+) ", srv.log()),
                          what="the message kept in bad/; log:\n" + srv.log()[-1500:])
        kept = os.path.join(srv.dir, line.group(2))   # as is when absolute
        self.assertTrue(kept.endswith("/bad/%s.overflow" % line.group(1)), kept)
        with open(kept, "rb") as f:
            self.assertIn(t.encode(), f.read())
        self.assertRegex(srv.log(), r"more than %d targets after alias expansion; "
                         r"the rest are not sent" % n)
        self.assertNotIn("%s: done after" % line.group(1), srv.log())
        self.assertEqual(self.queue_names(srv), [])

    @unittest.skipIf(MBOX, "this build has local mailboxes")
    def test_null_client_local_name_bounces_at_once(self):
        """A null client has no mailboxes: mail to a local name that is
        no alias bounces (5.1.1, saying why) on its first run, here to
        the masquerade address at the smarthost."""
        srv = self.postie("submission", "starttls", extra="masquerade bob@dest.test\n")
        t = token("shnobody")
        self.sendmail(srv, t, rcpt="nobody")
        b = wait_until(lambda: self.dsns(PF.find("bob", t), t),
                       what="the bounce at the smarthost; log:\n" + srv.log()[-1500:])
        raw = b[0].raw.decode("utf-8", "replace")
        self.assertIn("Status: 5.1.1", raw)
        self.assertIn("no such alias here, and this build has no local mailboxes", raw)
        self.wait_empty(srv)

    def test_bare_cr_never_leaves(self):
        """RFC 5321 §2.3.8: only CRLF goes to the next server. A stray CR
        in the content (taken by sendmail as it is) arrives as a space."""
        srv = self.postie("submission", "starttls")
        t = token("shcr")
        self.sendmail(srv, t, body=b"Subject: %s\nMessage-ID: <%s@test>\n\n"
                      b"one\rtwo\nthree\r\n" % (t.encode(), t.encode()))
        m = self.wait_pf("bob", t)[0]
        self.assertIn(b"one two\n", m.raw)
        self.assertIn(b"three\n", m.raw)
        self.assertNotIn(b"\r", m.raw)
        self.wait_empty(srv)

    def test_several_messages_over_few_connections(self):
        """Messages for the smarthost share connections (RSET between
        them): 6 messages waiting at start go over at most
        CONFIG_RELAY_MAX_PER_DEST (2 by default) connections."""
        srv = self.postie("submission", "starttls", start=False)
        self.write_conf(srv)
        ts = [token("shreuse%d" % i) for i in range(6)]
        for t in ts:
            self.sendmail(srv, t)
        srv.start()
        for t in ts:
            self.wait_pf("bob", t)
        self.wait_empty(srv)
        # Postfix logs one "disconnect" per session with its counters.
        disc = wait_until(lambda: len(re.findall(r"disconnect from \S+ .*mail=",
                                                 self.pf_log())) >= 1 and
                          sum(int(x) for x in re.findall(
                              r"disconnect from \S+ .* mail=(\d+)", self.pf_log())) >= 6
                          and re.findall(r"disconnect from \S+ .*", self.pf_log()),
                          what="Postfix's disconnect lines:\n" + self.pf_log()[-2000:])
        connects = re.findall(r"\]: connect from ", self.pf_log())
        limit = int(re.search(r"RELAY_MAX_PER_DEST=(\d+)", self.kconfig()).group(1)) \
            if re.search(r"RELAY_MAX_PER_DEST=(\d+)", self.kconfig()) else 2
        self.assertLessEqual(len(connects), limit, disc)
        self.assertTrue(any("rset=" in d for d in disc), disc)
        self.assertLessEqual(len(disc), limit, disc)

    def write_conf(self, srv):
        """postie.conf before the first start (start() writes it again
        with the port it gets)."""
        srv.write("postie.conf", srv.config(harness.free_port()))

    def kconfig(self):
        cfg = os.path.join(os.path.dirname(harness.BIN), ".config")
        try:
            with open(cfg) as f:
                return f.read()
        except OSError:
            return ""

    # ---- refused: the mail waits, the reason is in words ---------------------

    def assertWaiting(self, srv, t, reason_re, note_re=None):
        """The message is still queued (no bounce to alice), the log and
        mailq carry the reason, postmaster (carol) got one notice."""
        wait_until(lambda: re.search(reason_re, srv.log()),
                   what="%r in the log:\n%s" % (reason_re, srv.log()[-2000:]))
        q = wait_until(lambda: (lambda out: re.search(reason_re, out) and out)(
            self.mailq(srv)), what="%r in mailq" % reason_re)
        self.assertIn("bob@dest.test", q)
        self.assertEqual(len(self.queue_names(srv)), 1, self.queue_names(srv))
        self.assertEqual(srv.find("alice", t), [])
        self.assertEqual(PF.find("bob", t), [])
        if not MBOX:
            line = wait_until(lambda: re.search(NOTICE_LOG, srv.log()),
                              what="a notice in the log:\n" + srv.log()[-1500:])
            self.assertEqual(self.notices(srv), 1)
            return line.group(0)
        notes = wait_until(lambda: srv.mbox("carol"), what="a notice to "
                           "postmaster (carol); log:\n" + srv.log()[-1500:])
        self.assertEqual(len(notes), 1, notes)
        note = notes[0].raw.decode("utf-8", "replace")
        self.assertEqual(notes[0].sender, "MAILER-DAEMON")
        self.assertIn("Auto-Submitted: auto-generated", note)
        self.assertRegex(note, note_re or reason_re)
        return note

    def assertOneNoticeAfterRetries(self, srv, t):
        """Two more attempts (queue_retry 1s 2s) fail the same way: still
        one notice, still no bounce."""
        n0 = srv.log().count("smtp_out smarthost")
        wait_until(lambda: srv.log().count("smtp_out smarthost") >= n0 + 2,
                   what="two more attempts; log:\n" + srv.log()[-1500:])
        self.assertEqual(self.notices(srv), 1)
        self.assertEqual(srv.find("alice", t), [])
        self.assertEqual(len(self.queue_names(srv)), 1)

    def test_wrong_password(self):
        srv = self.postie("submission", "starttls", password="not the password",
                          retry="1s 2s")
        t = token("shpw")
        self.send(srv, t)
        # The server's own words come along: Postfix says 535 5.7.8.
        self.assertWaiting(srv, t, r"login as %s refused: 535 5\.7\.8" % postfix.USER,
                           r"refused the login as %s: 535 5\.7\.8" % postfix.USER)
        self.assertRegex(srv.log(), r"smarthost %s:\d+ refused the login as %s: "
                         r"535 5\.7\.8" % (re.escape(PF.addr), postfix.USER))
        self.assertRegex(self.pf_log(), r"SASL (PLAIN|LOGIN) authentication failed")
        self.assertOneNoticeAfterRetries(srv, t)

    def notices(self, srv):
        """Postmaster notices so far: in carol's mbox, or on a null
        client the log lines that stand for them."""
        if MBOX:
            return len(srv.mbox("carol"))
        return len(re.findall(NOTICE_LOG, srv.log()))

    def dsns(self, msgs, t):
        return [m for m in msgs if b"report-type=delivery-status" in m.raw and
                t.encode() in m.raw]

    @harness.need_feature("mbox")
    def test_delay_warning_for_local_sender_stays_local(self):
        """A local sender's mail (sendmail -f alice@test.lan, a local
        domain) waits behind a broken smarthost: its delay warning goes
        where a bounce would go, to alice, which is a local mailbox here:
        delivered at once, not queued behind the broken smarthost."""
        srv = self.postie("submission", "starttls", password="not the password",
                          retry="1s 2s", start=False, extra="delay_warning 2s\n")
        self.write_conf(srv)
        t = token("shdelay")
        self.sendmail(srv, t, args=("-f", "alice@test.lan"))
        srv.start()
        ws = wait_until(lambda: self.dsns(srv.mbox("alice"), t),
                        what="a delay warning in alice's mailbox; log:\n"
                        + srv.log()[-1500:])
        self.assertEqual(len(ws), 1)
        raw = ws[0].raw.decode("utf-8", "replace")
        self.assertIn("Action: delayed", raw)
        self.assertRegex(raw, r"To: <alice@test\.lan>")
        self.assertEqual(ws[0].sender, "MAILER-DAEMON")
        # Nothing else waits: the warning was not queued for the smarthost.
        wait_until(lambda: len(self.queue_names(srv)) == 1,
                   what="only the message in the queue: %s" % self.queue_names(srv))
        self.assertRegex(srv.log(), r"delay warning for 1 recipient\(s\) to "
                         r"<alice@test\.lan>")
        # postmaster (carol) has the smarthost notice, not the warning.
        self.assertEqual(self.dsns(srv.mbox("carol"), t), [])

    def test_delay_warning_for_masqueraded_mail_goes_to_the_sender(self):
        """sendmail's mail under `masquerade` (here bob@dest.test, a
        mailbox at the smarthost): a refused recipient bounces to that
        address, and the delay warning for a deferred one goes the same
        way, to the same mailbox; postmaster gets neither."""
        srv = self.postie("submission", "starttls", retry="1s 2s", start=False,
                          extra="masquerade bob@dest.test\ndelay_warning 2s\n")
        self.write_conf(srv)
        t = token("shmasq")
        self.sendmail(srv, t, rcpt="reject@dest.test, tempfail@dest.test")
        srv.start()
        got = wait_until(lambda: (lambda ms: len(ms) >= 2 and ms)(
            self.dsns(PF.find("bob", t), t)),
            what="a bounce and a delay warning for bob at the smarthost; "
            "log:\n" + srv.log()[-2000:])
        raws = sorted(m.raw.decode("utf-8", "replace") for m in got)
        self.assertEqual(len(raws), 2, raws)
        failed = [r for r in raws if "Action: failed" in r]
        delayed = [r for r in raws if "Action: delayed" in r]
        self.assertEqual(len(failed), 1, raws)
        self.assertEqual(len(delayed), 1, raws)
        self.assertIn("Final-Recipient: rfc822; reject@dest.test", failed[0])
        self.assertIn("Final-Recipient: rfc822; tempfail@dest.test", delayed[0])
        self.assertRegex(srv.log(), r"delay warning for 1 recipient\(s\) to "
                         r"<bob@dest\.test>")
        self.assertEqual(srv.mbox("carol"), [])

    @harness.need_feature("mbox")        # the bounce goes to alice's mbox
    def test_reasons_with_quotes_and_backslashes_shown_once(self):
        """A refusal whose words hold a quote and backslashes: the log,
        mailq and the bounce show them as the server sent them, escaped
        neither once nor twice."""
        srv = self.postie("submission", "starttls")
        t = token("shquote")
        self.send(srv, t, rcpts=("quoted@dest.test", "tempfail@dest.test"))
        words = postfix.QUOTED.split(" ", 2)[2]
        q = wait_until(lambda: (lambda out: words in out and "mailbox busy" in out
                                and out)(self.mailq(srv)),
                       what="%r in mailq; log:\n%s" % (words, srv.log()[-1500:]))
        self.assertRegex(q, r"\(failed, returned to sender: host \S+ said: "
                         r"550 5\.7\.1 <quoted@dest\.test>: .*%s\)" % re.escape(words))
        self.assertNotIn("\\x5c", q)
        self.assertNotIn("\\\\", q)
        self.assertIn(words, srv.log())
        self.assertNotIn("\\x5c", srv.log())
        b = wait_until(lambda: self.dsns(srv.mbox("alice"), t),
                       what="the bounce to alice")
        raw = b[0].raw.decode("utf-8", "replace")
        self.assertRegex(raw, r"Diagnostic-Code: smtp; 550 5\.7\.1 <quoted@dest\.test>:"
                         r"[^\n]*%s" % re.escape(words[:20]))
        self.assertNotIn("\\x5c", raw)

    def test_untrusted_certificate(self):
        srv = self.postie("untrusted", "starttls", retry="1s 2s")
        t = token("shself")
        self.send(srv, t)
        self.assertWaiting(srv, t, r"certificate not trusted: unknown issuer "
                           r"\(certificate for smart\.test\)")
        self.assertOneNoticeAfterRetries(srv, t)

    def test_wrong_name(self):
        srv = self.postie("wrongname", "starttls")
        t = token("shname")
        self.send(srv, t)
        self.assertWaiting(srv, t, r"name mismatch: certificate is for other\.test, "
                           r"not smart\.test")

    def test_expired_certificate(self):
        srv = self.postie("expired", "starttls")
        t = token("shexp")
        self.send(srv, t)
        self.assertWaiting(srv, t, r"certificate expired")

    def test_untrusted_over_implicit_tls(self):
        """465-style: the same check before the greeting. The services
        with a bad certificate are STARTTLS ones; here the client trusts
        another CA (its own ca_file), so the good certificate is unknown."""
        with open(PF.certs["self"][0]) as f:
            srv = self.postie("smtps", "tls", ca_text=f.read())
        t = token("sh465bad")
        self.send(srv, t)
        self.assertWaiting(srv, t, r"certificate not trusted: unknown issuer")

    def test_verify_none_still_logs_in(self):
        """smarthost_verify none: the self-signed smarthost is used (the
        operator said so), over TLS and with the login."""
        srv = self.postie("untrusted", "starttls", extra="smarthost_verify none\n")
        t = token("shnone")
        self.send(srv, t)
        self.assertDelivered(srv, t)
        self.assertEqual(srv.mbox("carol"), [])


if __name__ == "__main__":
    unittest.main()
