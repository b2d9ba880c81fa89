"""AUTH PLAIN/LOGIN (RFC 4954): with and without initial response, authzid,
cancel, bad base64, over-long lines, hashes from `postie passwd`, openssl
and mkpasswd, users without a hash; the plaintext policy
(plaintext_auth_networks, 538 otherwise); submission and smtps requiring
STARTTLS and a login, the sender login check, relaying when
authenticated (queued, with the relay feature; refused without it);
failed-login delays and the per-address ban."""
import concurrent.futures
import os
import re
import subprocess
import time
import warnings

import harness
import tlsutil
from harness import HOSTNAME, IO_TIMEOUT, SLOW, crlf, token
from tlsutil import PASSWORD, TLSDialog, TLSServer, b64, need_features, plain

DELAY = tlsutil.kconfig("AUTH_FAIL_DELAY_MS", 1000) / 1000.0
FAIL_MAX = tlsutil.kconfig("AUTH_FAIL_MAX", 10)
MAX_ERRORS = tlsutil.kconfig("SMTP_MAX_ERRORS", 10)
UTF8_PASSWORD = "p\u00e4ss w\u00f6rd \u2713"
USER_PROMPT = "334 " + b64("Username:")
PASS_PROMPT = "334 " + b64("Password:")
# With the relay feature an authenticated user may send anywhere: remote
# recipients are queued. With DNS built in, postie must never ask the
# machine's resolver: 127.0.0.53:9 has nothing listening.
RELAY = "relay" in harness.features()
NO_DNS = "dns_server 127.0.0.53:9\n" if "dns" in harness.features() else ""
QUEUED = re.compile(r"^250 2\.0\.0 .*queued as \S+")


def ehlo_keywords(lines):
    return [l[4:] for l in lines[1:]]


def python_crypt():
    """The crypt module (deprecated, gone in 3.13), or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import crypt
            return crypt
        except ImportError:
            return None


class _Users:
    """The users of the plain-network server, one per hash maker."""
    cache = None

    @classmethod
    def get(cls):
        if cls.cache is None:
            u = {"alice": tlsutil.postie_passwd(),
                 "bob": tlsutil.openssl_passwd("6"),
                 "carol": tlsutil.openssl_passwd("5"),
                 "dave": tlsutil.mkpasswd_hash(),
                 "erin": tlsutil.mkpasswd_hash(rounds=7000),
                 "frank": "",                   # no hash: never logs in
                 "utf": tlsutil.postie_passwd(UTF8_PASSWORD)}
            cr = python_crypt()
            if cr is not None:
                u["gina"] = cr.crypt(PASSWORD, cr.mksalt(cr.METHOD_SHA512,
                                                          rounds=12000))
            cls.cache = {k: v for k, v in u.items() if v is not None}
        return cls.cache


class AuthBase(tlsutil.TLSServerTest):

    @classmethod
    def setUpClass(cls):
        args = dict(cls.server_args)
        args["extra"] = args.get("extra", "") + NO_DNS
        cls.server_args = args
        super().setUpClass()

    def login_ok(self, d, user="alice", pw=PASSWORD):
        code, lines = d.auth_plain(user, pw)
        self.assertEqual(code, 235, lines)
        self.assertIn("2.7.0", lines[0])

    def assertFailed(self, d, line, t_min=None):
        """`line` (a command or a response) gets 535 5.7.8, after the
        failed-login delay."""
        t0 = time.monotonic()
        code, lines = d.cmd(line, timeout=IO_TIMEOUT + 6 * DELAY)
        took = time.monotonic() - t0
        self.assertEqual(code, 535, lines)
        self.assertIn("5.7.8", lines[0])
        if t_min is not None:
            self.assertGreaterEqual(took, t_min, "answered too early")
        return took


@need_features("auth")
class PlainNetworkAuth(AuthBase):
    """smtp (+ submission) with plaintext AUTH allowed for 127.0.0.1 and
    127.0.1.0/24 (the failing cases use 127.0.1.x, one address each, so
    the failure counter of 127.0.0.1 stays at zero)."""

    @classmethod
    def setUpClass(cls):
        tls = tlsutil.have("tls")
        cls.server_args = {
            "tls": "rsa" if tls else None, "submission": tls,
            "users": _Users.get(),
            "extra": "plaintext_auth_networks 127.0.0.1/32 127.0.1.0/24\n"}
        if "aliases" in harness.features():
            cls.server_args["aliases"] = "postmaster: alice\n"
        super().setUpClass()

    def dialog(self, **kw):
        d = self.server.tdialog(**kw)
        d.ehlo()
        return d

    # --- the plaintext policy ------------------------------------------

    def test_auth_offered_to_plain_network(self):
        with self.server.tdialog() as d:
            self.assertIn("AUTH PLAIN LOGIN", ehlo_keywords(d.ehlo()))

    @need_features("debug-protocol")
    def test_protocol_log_holds_no_credential(self):
        """DEBUG_PROTOCOL logs every command line, but of AUTH only the
        mechanism: the initial response and the exchange's lines are
        credentials."""
        with self.dialog() as d:
            self.login_ok(d)
        with self.dialog() as d:
            self.assertEqual(d.code("AUTH LOGIN"), 334)
            self.assertEqual(d.code(b64("alice")), 334)
            self.assertEqual(d.code(b64(PASSWORD)), 235)
        log = self.server.log()
        self.assertIn("<- AUTH PLAIN", log)
        self.assertIn("<- AUTH LOGIN", log)
        for secret in (plain("alice"), b64(PASSWORD), PASSWORD):
            self.assertNotIn(secret, log)

    def test_auth_refused_elsewhere_without_tls(self):
        with self.server.tdialog(source="127.0.0.2") as d:
            lines = d.ehlo()
            self.assertNotIn("AUTH PLAIN LOGIN", ehlo_keywords(lines))
            for mech in ("PLAIN " + plain("alice"), "PLAIN", "LOGIN"):
                code, lines = d.cmd("AUTH " + mech)
                self.assertEqual(code, 538, lines)
                self.assertIn("5.7.11", lines[0])
            # Nothing half-started: plain SMTP still works.
            self.assertEqual(d.code("MAIL FROM:<x@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 250)

    # --- mechanisms -----------------------------------------------------

    def test_plain_initial_response_and_received(self):
        t = token()
        with self.dialog() as d:
            self.login_ok(d)
            self.assertNotIn("AUTH PLAIN LOGIN", ehlo_keywords(d.ehlo()))
            r = d.send_mail("alice@test.lan", ["bob@test.lan"],
                            crlf("Subject: %s\n\nx\n" % t))
            self.assertEqual(r[0], 250)
        rcv = self.server.find("bob", t)[0].headers("Received")[0]
        self.assertIn("with ESMTPA id", rcv)

    def test_plain_without_initial_response(self):
        with self.dialog() as d:
            code, lines = d.cmd("AUTH PLAIN")
            self.assertEqual(code, 334, lines)
            self.assertEqual(lines, ["334 "])
            code, lines = d.cmd(plain("alice"))
            self.assertEqual(code, 235, lines)

    def test_login_without_initial_response(self):
        with self.dialog() as d:
            code, lines = d.cmd("AUTH LOGIN")
            self.assertEqual(lines, [USER_PROMPT])
            code, lines = d.cmd(b64("alice"))
            self.assertEqual(lines, [PASS_PROMPT])
            code, lines = d.cmd(b64(PASSWORD))
            self.assertEqual(code, 235, lines)

    def test_login_with_initial_response(self):
        with self.dialog() as d:
            code, lines = d.cmd("AUTH LOGIN " + b64("alice"))
            self.assertEqual(lines, [PASS_PROMPT])
            self.assertEqual(d.code(b64(PASSWORD)), 235)

    def test_mechanism_case_insensitive(self):
        with self.dialog() as d:
            self.assertEqual(d.code("auth plain " + plain("alice")), 235)

    def test_plain_authzid_same_as_user(self):
        with self.dialog() as d:
            code, lines = d.auth_plain("alice", authzid="alice")
            self.assertEqual(code, 235, lines)

    def test_auth_sequence_errors(self):
        with self.server.tdialog() as d:
            self.assertEqual(d.code("AUTH PLAIN " + plain("alice")), 503)
            d.ehlo()
            self.assertEqual(d.code("AUTH CRAM-MD5"), 504)
            self.assertEqual(d.code("AUTH"), 504)
            self.assertEqual(d.code("MAIL FROM:<x@example.net>"), 250)
            self.assertEqual(d.code("AUTH PLAIN " + plain("alice")), 503)
            self.assertEqual(d.code("RSET"), 250)
            self.login_ok(d)
            code, lines = d.cmd("AUTH PLAIN " + plain("alice"))
            self.assertEqual(code, 503, lines)
            self.assertIn("Already authenticated", lines[0])

    # --- hashes ---------------------------------------------------------

    def hash_login(self, user, pw=PASSWORD):
        if user not in self.server.hashes:
            self.skipTest("no tool to make the hash for %s" % user)
        with self.dialog() as d:
            code, lines = d.auth_plain(user, pw)
            self.assertEqual(code, 235, "%s %s: %r" % (
                user, self.server.hashes[user][:12], lines))

    def test_hash_postie_passwd(self):
        self.assertTrue(self.server.hashes["alice"].startswith("$6$"))
        self.hash_login("alice")

    def test_hash_openssl_sha512(self):
        self.hash_login("bob")

    def test_hash_openssl_sha256(self):
        self.hash_login("carol")

    def test_hash_mkpasswd(self):
        self.hash_login("dave")

    def test_hash_mkpasswd_rounds(self):
        self.hash_login("erin")

    def test_hash_python_crypt_rounds(self):
        self.hash_login("gina")

    def test_utf8_password(self):
        self.hash_login("utf", UTF8_PASSWORD)

    def test_postie_passwd_output(self):
        h1 = tlsutil.postie_passwd()
        h2 = tlsutil.postie_passwd()
        for h in (h1, h2):
            self.assertRegex(h, r"^\$6\$[./0-9A-Za-z]{8,16}\$[./0-9A-Za-z]{86}$")
        self.assertNotEqual(h1, h2, "a fresh salt each time")
        cr = python_crypt()
        if cr is not None:
            self.assertEqual(cr.crypt(PASSWORD, h1), h1)
            self.assertNotEqual(cr.crypt(PASSWORD + "x", h1), h1)
            hu = tlsutil.postie_passwd(UTF8_PASSWORD)
            self.assertEqual(cr.crypt(UTF8_PASSWORD, hu), hu)
        # No password: an error, no hash.
        r = subprocess.run(harness.command("passwd"), input=b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")

    # --- cancel, bad base64, long lines ----------------------------------

    def test_cancel(self):
        with self.dialog() as d:
            self.assertEqual(d.code("AUTH PLAIN"), 334)
            code, lines = d.cmd("*")
            self.assertEqual(code, 501, lines)
            self.assertEqual(d.code("AUTH LOGIN"), 334)
            self.assertEqual(d.code(b64("alice")), 334)
            self.assertEqual(d.code("*"), 501)
            self.assertEqual(d.code("AUTH LOGIN " + b64("alice")), 334)
            self.assertEqual(d.code("*"), 501)
            # Back in command mode, and a login still works.
            self.assertEqual(d.code("NOOP"), 250)
            self.login_ok(d)

    def test_bad_base64(self):
        bad = ["!!!!", "abc", "YWxpY2U", "a===", "YQ=a", "YR==",
               "YWxp\x01ZQ==", "=AAA"]
        with self.dialog() as d:
            for i, b in enumerate(bad):
                if i % 2:
                    code, lines = d.cmd("AUTH PLAIN " + b)
                else:
                    self.assertEqual(d.code("AUTH LOGIN"), 334)
                    code, lines = d.cmd(b)
                self.assertEqual(code, 501, "%r: %r" % (b, lines))
                self.assertIn("5.5.2", lines[0])
                if (i + 1) % (MAX_ERRORS - 2) == 0:
                    self.assertEqual(d.code("RSET"), 250)
                    d.close()
                    d = self.dialog()
            self.assertEqual(d.code("NOOP"), 250)
            self.login_ok(d)
        # Bad base64 is not a failed login: no delay, no count.
        self.assertNotIn("failed login", self.server.log())

    def test_overlong_auth_command(self):
        with self.dialog() as d:
            d.send("AUTH PLAIN " + "QUFB" * 200 + "\r\nNOOP\r\n")
            code, lines = d.reply()
            self.assertEqual(code, 500, lines)
            self.assertEqual(d.reply()[0], 250, "one reply for the long line")
            self.login_ok(d)

    def test_overlong_auth_response(self):
        for size in (800, 3000, 100000):
            with self.dialog() as d:
                self.assertEqual(d.code("AUTH PLAIN"), 334)
                d.send("QUFB" * (size // 4) + "\r\nNOOP\r\n")
                code, lines = d.reply()
                self.assertEqual(code, 500, "%d: %r" % (size, lines))
                # Back in command mode: NOOP is a command, not a response.
                code, lines = d.reply()
                self.assertEqual(code, 250, "%d: %r" % (size, lines))
                self.login_ok(d)
        self.assertNotIn("failed login", self.server.log())

    # --- refused credentials ---------------------------------------------

    def test_refused_credentials(self):
        """Each case from its own 127.0.1.x address, in parallel: 535
        after the delay, and the session may try again."""
        cases = [
            ("wrong password", "AUTH PLAIN " + plain("alice", "wrong")),
            ("other authzid", "AUTH PLAIN " + plain("alice", authzid="bob")),
            ("authzid of a prefix", "AUTH PLAIN " + plain("alice", authzid="alic")),
            ("no hash, empty pw", "AUTH PLAIN " + plain("frank", "")),
            ("no hash, some pw", "AUTH PLAIN " + plain("frank", PASSWORD)),
            ("unknown user", "AUTH PLAIN " + plain("nobody")),
            ("one NUL only", "AUTH PLAIN " + b64("alice\0" + PASSWORD)),
            ("login wrong pw", ["AUTH LOGIN " + b64("alice"), b64("nope")]),
            ("login no hash", ["AUTH LOGIN " + b64("frank"), "="]),
            ("login empty name", ["AUTH LOGIN", "="]),
        ]

        def run(i, name, steps):
            steps = steps if isinstance(steps, list) else [steps]
            with self.server.tdialog(source="127.0.1.%d" % (i + 10)) as d:
                d.ehlo()
                for s in steps[:-1]:
                    code, lines = d.cmd(s)
                    if code != 334:
                        return "%s: %s -> %r" % (name, s, lines)
                t0 = time.monotonic()
                code, lines = d.cmd(steps[-1], timeout=IO_TIMEOUT + 6 * DELAY)
                took = time.monotonic() - t0
                if code != 535 or "5.7.8" not in lines[0]:
                    return "%s: %r" % (name, lines)
                if took < 0.9 * DELAY:
                    return "%s: answered after %.2f s" % (name, took)
                code, lines = d.auth_plain("alice")
                if code != 235:
                    return "%s: retry %r" % (name, lines)
            return None

        with concurrent.futures.ThreadPoolExecutor(len(cases)) as ex:
            futs = [ex.submit(run, i, n, s) for i, (n, s) in enumerate(cases)]
            problems = [f.result(timeout=IO_TIMEOUT * 3) for f in futs]
        self.assertEqual([p for p in problems if p], [])

    def test_pipelined_after_failure_and_leaving_during_delay(self):
        """Commands pipelined after a failed login wait for its answer and
        are then served in order; a client that leaves while its answer
        is delayed does not disturb the server."""
        with self.server.tdialog(source="127.0.1.100") as d:
            d.ehlo()
            d.send("AUTH PLAIN %s\r\nNOOP\r\nAUTH PLAIN %s\r\nQUIT\r\n"
                   % (plain("alice", "bad"), plain("alice")))
            codes = [d.reply(IO_TIMEOUT + 6 * DELAY)[0] for _ in range(4)]
            self.assertEqual(codes, [535, 250, 235, 221])
            self.assertEqual(d.read_until_closed(), b"")
        for i in range(3):
            with self.server.tdialog(source="127.0.1.%d" % (101 + i)) as d:
                d.ehlo()
                d.send("AUTH PLAIN %s\r\n" % plain("alice", "bad"))
        with self.dialog() as d:
            self.login_ok(d)
        time.sleep(DELAY + 0.2)
        self.assertTrue(self.server.running())
        with self.dialog() as d:
            self.login_ok(d)

    # --- STARTTLS and submission from a plaintext network -----------------

    @need_features("tls")
    def test_starttls_forgets_login(self):
        with self.dialog() as d:
            self.login_ok(d)
            d.starttls()
            self.assertIn("AUTH PLAIN LOGIN", ehlo_keywords(d.ehlo()))
            self.login_ok(d)        # not "503 already authenticated"

    @need_features("tls")
    def test_submission_from_plain_network(self):
        with TLSDialog(self.server.submission_port) as d:
            kw = ehlo_keywords(d.ehlo())
            self.assertIn("AUTH PLAIN LOGIN", kw)
            self.assertIn("STARTTLS", kw)
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            self.assertEqual(code, 530, lines)
            self.assertIn("Authentication required", lines[0])
            self.login_ok(d)
            self.assertEqual(d.code("MAIL FROM:<alice@test.lan>"), 250)
            self.assertEqual(d.code("RSET"), 250)
            d.starttls()
            d.ehlo()
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            self.assertEqual(code, 530, lines)
            self.assertIn("Authentication required", lines[0])


@need_features("auth", "tls")
class Submission(AuthBase):
    """submission and smtps: STARTTLS, then a login, then the user's own
    sender addresses only."""

    @classmethod
    def setUpClass(cls):
        h = tlsutil.postie_passwd()
        cls.server_args = {"tls": "rsa", "submission": True, "smtps": True,
                           "users": {"alice": h, "bob": h, "carol": h}}
        if "aliases" in harness.features():
            cls.server_args["aliases"] = ("postmaster: alice\nsales: alice, bob\n"
                                          "team: bob, carol\n"
                                          "outside: someone@example.net\n")
        super().setUpClass()

    def sub(self, login="alice"):
        d = self.server.tdialog(self.server.submission_port)
        d.ehlo()
        d.starttls()
        d.ehlo()
        if login:
            self.login_ok(d, login)
        return d

    def test_submission_needs_starttls_first(self):
        with self.server.tdialog(self.server.submission_port) as d:
            kw = ehlo_keywords(d.ehlo())
            self.assertIn("STARTTLS", kw)
            self.assertNotIn("AUTH PLAIN LOGIN", kw)
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            self.assertEqual(code, 530, lines)
            self.assertIn("5.7.0 Must issue a STARTTLS command first", lines[0])
            code, lines = d.cmd("AUTH PLAIN " + plain("alice"))
            self.assertEqual(code, 538, lines)
            self.assertIn("5.7.11", lines[0])
            self.assertEqual(d.code("RCPT TO:<bob@test.lan>"), 503)
            self.assertEqual(d.code("DATA"), 503)

    def test_submission_needs_login_after_starttls(self):
        with self.sub(login=None) as d:
            self.assertIn("AUTH PLAIN LOGIN", ehlo_keywords(d.ehlo()))
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            self.assertEqual(code, 530, lines)
            self.assertIn("5.7.0 Authentication required", lines[0])
            code, lines = d.cmd("MAIL FROM:<>")
            self.assertEqual(code, 530, lines)

    def test_smtps_needs_login(self):
        with self.server.tdialog(self.server.smtps_port, implicit=True) as d:
            self.assertIn("AUTH PLAIN LOGIN", ehlo_keywords(d.ehlo()))
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            self.assertEqual(code, 530, lines)
            self.assertIn("Authentication required", lines[0])
            self.login_ok(d, "bob")
            self.assertEqual(d.code("MAIL FROM:<alice@test.lan>"), 553)
            t = token()
            r = d.send_mail("bob@test.lan", ["alice@test.lan"],
                            crlf("Subject: %s\n\nsmtps\n" % t))
            self.assertEqual(r[0], 250)
        rcv = self.server.find("alice", t)[0].headers("Received")[0]
        self.assertRegex(rcv, r"with ESMTPSA \(TLSv1\.2 ECDHE-RSA-\S+\)")

    def test_authenticated_delivery_and_relay(self):
        t = token()
        with self.sub() as d:
            self.assertEqual(d.code("MAIL FROM:<alice@test.lan>"), 250)
            # Relay tricks never relay, logged in or not.
            refused = ["bob%test.lan@example.net", "someone@[127.0.0.1]"]
            if not RELAY:
                refused.insert(0, "someone@example.net")
            for remote in refused:
                code, lines = d.cmd("RCPT TO:<%s>" % remote)
                self.assertEqual(code, 550, "%s: %r" % (remote, lines))
                self.assertIn("5.7.1", lines[0])
            self.assertEqual(d.code("RSET"), 250)
            if RELAY:
                tr = token()
                code, lines = d.send_mail("alice@test.lan", ["someone@example.net"],
                                          crlf("Subject: %s\n\nrelayed\n" % tr))
                self.assertEqual(code, 250, lines)
                self.assertRegex(lines[0], QUEUED)
                self.assertEqual(self.server.anywhere(tr)[0].split(os.sep)[:2],
                                 ["spool", "queue"])
            r = d.send_mail("alice@test.lan", ["bob@test.lan", "carol@test.lan"],
                            crlf("Subject: %s\n\nsubmitted\n" % t))
            self.assertEqual(r[0], 250, r)
        for u in ("bob", "carol"):
            m = self.server.find(u, t)
            self.assertEqual(len(m), 1)
            self.assertEqual(m[0].sender, "alice@test.lan")
            self.assertIn("with ESMTPSA (TLSv1.2 ", m[0].headers("Received")[0])

    def sender_codes(self, login, senders):
        got = {}
        d = self.sub(login)
        try:
            for i, s in enumerate(senders):
                if i and i % (MAX_ERRORS - 2) == 0:
                    d.close()
                    d = self.sub(login)
                code, lines = d.cmd("MAIL FROM:<%s>" % s)
                got[s] = code
                if code == 553:
                    self.assertIn("5.7.1", lines[0])
                d.cmd("RSET")
        finally:
            d.close()
        return got

    def test_sender_login_check(self):
        want = {"alice@test.lan": 250, "alice@example.org": 250,
                "alice@TEST.LAN": 250, "": 250,
                "bob@test.lan": 553, "carol@example.org": 553,
                "alice@remote.example": 553, "alice@mail.test.lan": 250,  # the hostname is always local
                "alice@[127.0.0.1]": 553, "nobody@test.lan": 553,
                "\"alice@test.lan\"@test.lan": 553}
        if "aliases" in harness.features():
            want.update({"postmaster@test.lan": 250, "sales@test.lan": 250,
                         "team@test.lan": 553, "outside@test.lan": 553})
        got = self.sender_codes("alice", list(want))
        self.assertEqual(got, want)

    def test_mx_port_sender_check_after_login(self):
        """The smtp port takes any sender from a client that has not
        logged in; once logged in (AUTH after STARTTLS on port 25) the
        session may relay, so the sender must be the user's own, as on
        submission (it was not checked there before: any sender relayed)."""
        with self.server.tdialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<bob@test.lan>"), 250)
            self.assertEqual(d.code("RSET"), 250)
            d.starttls()
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<bob@test.lan>"), 250)
            self.assertEqual(d.code("RSET"), 250)
            self.login_ok(d)
            for s in ("bob@test.lan", "ceo@remote.example"):
                code, lines = d.cmd("MAIL FROM:<%s>" % s)
                self.assertEqual(code, 553, lines)
                self.assertIn("5.7.1", lines[0])
                # and nothing is relayed for it
                self.assertEqual(d.code("RCPT TO:<x@example.net>"), 503)
            self.assertEqual(d.code("MAIL FROM:<alice@test.lan>"), 250)
            self.assertEqual(d.code("RCPT TO:<carol@test.lan>"), 250)
            # Logged in: may relay when the build relays.
            self.assertEqual(d.code("RCPT TO:<x@example.net>"), 250 if RELAY else 550)

    def test_sender_login_check_off(self):
        h = tlsutil.postie_passwd()
        with TLSServer(tls="rsa", submission=True,
                       users={"alice": h, "bob": h},
                       extra="sender_login_check no\n" + NO_DNS) as srv:
            with srv.tdialog(srv.submission_port) as d:
                d.ehlo()
                d.starttls()
                d.ehlo()
                self.assertEqual(d.code("MAIL FROM:<bob@test.lan>"), 530)
                self.login_ok(d)
                for s in ("bob@test.lan", "anyone@remote.example"):
                    self.assertEqual(d.code("MAIL FROM:<%s>" % s), 250, s)
                    self.assertEqual(d.code("RSET"), 250)
                self.assertEqual(d.code("MAIL FROM:<bob@test.lan>"), 250)
                # Relaying is the build's business, not the sender check's.
                self.assertEqual(d.code("RCPT TO:<x@example.net>"), 250 if RELAY else 550)
                self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 250)


@need_features("auth")
class BruteForce(AuthBase):
    """A fresh server: failures from 127.0.0.1 until it is refused;
    127.0.0.2 is not affected."""

    @classmethod
    def setUpClass(cls):
        tls = tlsutil.have("tls")
        cls.server_args = {"tls": "rsa" if tls else None, "submission": tls,
                           "extra": "plaintext_auth_networks 127.0.0.0/8\n"}
        super().setUpClass()

    def test_delays_grow_then_421_per_address(self):
        bad = "AUTH PLAIN " + plain("alice", "guess")
        seq = min(3, FAIL_MAX - 1)
        # Sequential failures on one connection: each answer waits longer.
        with self.server.tdialog() as d:
            d.ehlo()
            prev = 0
            for n in range(1, seq + 1):
                took = self.assertFailed(d, bad, t_min=0.9 * DELAY * n)
                self.assertGreater(took, prev)
                prev = took
        # The rest in parallel (the delay is capped at 5x): one of them is
        # the last allowed failure and gets 421 at once.
        rest = FAIL_MAX - seq

        def one(_):
            with self.server.tdialog() as d:
                d.ehlo()
                code, lines = d.cmd(bad, timeout=IO_TIMEOUT + 6 * DELAY)
                if code == 421:
                    return code, d.read_until_closed()
                return code, lines
        with concurrent.futures.ThreadPoolExecutor(rest) as ex:
            res = list(ex.map(one, range(rest)))
        codes = sorted(c for c, _ in res)
        self.assertEqual(codes, [421] + [535] * (rest - 1), res)
        # Banned: even the right password gets 421, and the line closes.
        with self.server.tdialog() as d:
            d.ehlo()
            code, lines = d.auth_plain("alice")
            self.assertEqual(code, 421, lines)
            self.assertIn("4.7.0", lines[0])
            self.assertEqual(d.read_until_closed(), b"")
        if tlsutil.have("tls"):
            # A submission port refuses the address at once.
            with self.server.tdialog(self.server.submission_port,
                                     banner=False) as d:
                code, lines = d.reply()
                self.assertEqual(code, 421, lines)
        # Another address is not affected: its first failure waits one
        # step only, and it logs in.
        with self.server.tdialog(source="127.0.0.2") as d:
            d.ehlo()
            took = self.assertFailed(d, bad, t_min=0.9 * DELAY)
            self.assertLess(took, 4 * DELAY + 2)
            self.login_ok(d)
            t = token()
            r = d.send_mail("alice@test.lan", ["bob@test.lan"],
                            crlf("Subject: %s\n\nfrom .2\n" % t))
            self.assertEqual(r[0], 250)
        self.assertEqual(len(self.server.find("bob", t)), 1)
        self.assertTrue(self.server.running())
