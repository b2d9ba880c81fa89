"""Relaying end to end: the queue, the SMTP client and the relay policy.

A dnsmasq on 127.0.0.53 (a free port, --no-resolv --no-hosts, only the
records below) serves the test domains; scripted peers (peer.py) on
127.0.0.3... stand for MX hosts and the smarthost, all on one port that
postie's relay_port points at. 127.0.0.2 has no listener (refused).

  two.test     MX 10 mxa.two.test (127.0.0.2, refused), MX 20 mxb (127.0.0.3)
  amx.test     A 127.0.0.3 only (implicit MX)
  nx.test      NXDOMAIN
  smart.test   A 127.0.0.4 (smarthost; TLS certificates for this name)
  flaky.test   A 127.0.0.5 (scripted 4xx / 5xx)
  hang.test    A 127.0.0.6 (accepts and says nothing)
  bad.test     A 127.0.0.7 (garbage replies)
  late.test    A 127.0.0.8 (no listener until a test starts one)

Every postie here has `dns_server` pointing at that dnsmasq (or at
127.0.0.53:9, where nothing listens, when dnsmasq is missing: then only
the smarthost-by-address tests run) and `queue_retry 1s 2s`.
"""
import email
import os
import re
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import peer as peermod
from harness import SLOW, crlf, token

DNS_LISTEN = "127.0.0.53"
DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)

HOSTS = {"mx": "127.0.0.3", "smart": "127.0.0.4", "flaky": "127.0.0.5",
         "hang": "127.0.0.6", "bad": "127.0.0.7"}
DOWN = "127.0.0.2"
LATE = "127.0.0.8"

RECORDS = [
    "--mx-host=two.test,mxa.two.test,10",
    "--mx-host=two.test,mxb.two.test,20",
    "--host-record=mxa.two.test,%s" % DOWN,
    "--host-record=mxb.two.test,127.0.0.3",
    "--host-record=amx.test,127.0.0.3",
    "--address=/nx.test/",
    "--host-record=smart.test,127.0.0.4",
    "--host-record=flaky.test,127.0.0.5",
    "--host-record=hang.test,127.0.0.6",
    "--host-record=bad.test,127.0.0.7",
    "--host-record=late.test,%s" % LATE,
]

# Bound for one delivery to happen: a wait ends as soon as it does, so the
# bound only matters on failure; generous for a busy machine and ASan.
WAIT = 60 * SLOW
SMART_USER = "relay@smart.test"
SMART_PASS = "peer pass 42"

HAVE = harness.features()
RELAY = "relay" in HAVE
DNS = "dns" in HAVE


def wait_until(pred, timeout=WAIT, what="condition", step=0.05):
    return harness.wait_until(pred, timeout, what, step)


# ---- dnsmasq ------------------------------------------------------------

class Dnsmasq:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="postie-relay-dns-")
        self.proc = None
        self.port = None

    def start(self, port=0):
        """port: the one it had before (a restart), or 0 for a free one."""
        last = ""
        for _ in range(5):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((DNS_LISTEN, port))
                self.port = s.getsockname()[1]
            finally:
                s.close()
            cmd = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null",
                   "--no-resolv", "--no-hosts", "--no-poll", "--pid-file",
                   "--port=%d" % self.port, "--listen-address=" + DNS_LISTEN,
                   "--bind-interfaces", "--local=/test/",
                   "--log-facility=" + os.path.join(self.dir, "log")] + RECORDS
            if os.geteuid() == 0:
                cmd.append("--user=root")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if self._ready():
                return True
            if self.proc.poll() is None:
                self.proc.kill()
            last = self.proc.communicate(timeout=10)[1].decode("utf-8", "replace")
            self.proc = None
        self.error = last[-300:]
        return False

    def _ready(self):
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x03amx\x04test\x00\x00\x01\x00\x01")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(q, (DNS_LISTEN, self.port))
                if s.recv(512)[:2] == b"\x12\x34":
                    return True
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _install_dnsmasq():
    global DNSMASQ
    if DNSMASQ or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "dnsmasq-base"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120, env=dict(os.environ,
                                             DEBIAN_FRONTEND="noninteractive"))
    except (OSError, subprocess.TimeoutExpired):
        return
    DNSMASQ = shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)


# ---- certificates --------------------------------------------------------

CERTS = {}


def _openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60 * SLOW)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (args[0], r.stderr.decode()[-500:]))


def make_certs(d):
    """A test CA; smart.test signed by it; smart.test self-signed; a
    CA-signed certificate for another name."""
    cnf = os.path.join(d, "req.cnf")
    with open(cnf, "w") as f:
        f.write("[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=x\n"
                "[ca]\nbasicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n"
                "[self]\nbasicConstraints=CA:FALSE\n"
                "subjectAltName=DNS:smart.test,IP:127.0.0.4\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    p = lambda n: os.path.join(d, n)
    _openssl("req", "-x509", *ec, "-config", cnf, "-extensions", "ca",
             "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30",
             "-subj", "/CN=Postie Relay Test CA")
    for name, san in (("smart", "DNS:smart.test,IP:127.0.0.4"),
                      ("other", "DNS:other.test")):
        ext = p(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
        _openssl("req", "-new", *ec, "-config", cnf, "-keyout", p(name + ".key"),
                 "-out", p(name + ".csr"), "-subj", "/CN=%s.test" % name)
        _openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"),
                 "-CAkey", p("ca.key"), "-set_serial", str(random.randrange(1, 1 << 30)),
                 "-out", p(name + ".pem"), "-days", "30", "-extfile", ext)
    _openssl("req", "-x509", *ec, "-config", cnf, "-extensions", "self",
             "-keyout", p("self.key"), "-out", p("self.pem"), "-days", "30",
             "-subj", "/CN=smart.test")
    for n in ("smart", "other", "self"):
        CERTS[n] = (p(n + ".pem"), p(n + ".key"))
    CERTS["ca"] = p("ca.pem")


def server_ctx(name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*CERTS[name])
    return ctx


# ---- module fixture: dnsmasq, peers ----------------------------------------

DNSD = None
PEERS = {}
PORT = None
TMP = None


def _bind_peers():
    """One port P free on every peer address (and unused on DOWN/LATE)."""
    for _ in range(20):
        first = peermod.Peer(HOSTS["mx"]).listen()
        port = first.port
        peers = {"mx": first}
        try:
            for name, host in HOSTS.items():
                if name != "mx":
                    peers[name] = peermod.Peer(host, port).listen()
            for host in (DOWN, LATE):
                probe = socket.socket()
                try:
                    probe.bind((host, port))
                finally:
                    probe.close()
        except OSError:
            for p in peers.values():
                p.stop()
            continue
        return port, peers
    raise unittest.SkipTest("no common free port for the peers")


def setUpModule():
    global DNSD, PORT, TMP
    if not RELAY:
        raise unittest.SkipTest("feature 'relay' not in this build")
    TMP = tempfile.mkdtemp(prefix="postie-relay-")
    if shutil.which("openssl"):
        make_certs(TMP)
    if DNS:
        _install_dnsmasq()
        if DNSMASQ:
            d = Dnsmasq()
            if d.start():
                DNSD = d
            else:
                d.stop()
    PORT, peers = _bind_peers()
    PEERS.update(peers)
    for p in PEERS.values():
        p.start()


def tearDownModule():
    for p in PEERS.values():
        p.stop()
    PEERS.clear()
    if DNSD:
        DNSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def _check_dns(self):
    if not DNS:
        self.skipTest("feature 'dns' not in this build")
    if DNSD is None:
        self.skipTest("dnsmasq not available")


def need_dns(obj):
    """Skip unless postie has DNS and dnsmasq runs (checked at run time,
    before the time limit is armed for a class)."""
    if isinstance(obj, type):
        obj.prechecks = obj.prechecks + (_check_dns,)
        return obj
    check = _check_dns

    def wrapper(self, *a, **kw):
        check(self)
        return obj(self, *a, **kw)
    wrapper.__name__ = obj.__name__
    return wrapper


def need_certs(self):
    if not CERTS:
        self.skipTest("openssl not installed")
    if "tls" not in HAVE:
        self.skipTest("feature 'tls' not in this build")


# ---- helpers ---------------------------------------------------------------

def relay_conf(extra="", retry="1s 2s"):
    lines = ["relay_networks 127.0.0.1/32",
             "relay_port %d" % PORT,
             "queue_retry " + retry]
    if DNS:
        lines.append("dns_server %s" % (
            "%s:%d" % (DNS_LISTEN, DNSD.port) if DNSD else DNS_LISTEN + ":9"))
    return "\n".join(lines) + "\n" + extra


def queue_names(srv):
    try:
        names = os.listdir(srv.path("spool", "queue"))
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and
                  not n.endswith(".st") and not n.endswith(".new"))


TOOL = os.environ.get("POSTIE_QSTATE_TOOL") or os.path.join(
    os.path.dirname(harness.BIN), "tests", "qstate_tool")


def qstate(srv, name):
    """The state of queue/name as the daemon wrote it: a dict with
    arrival, next, attempts, local_fails, warned and targets (dicts)."""
    r = subprocess.run(harness.QEMU + [TOOL, srv.path("spool", "queue"), name,
                                       "show"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30 * SLOW)
    if r.returncode == 1:
        return None
    if r.returncode != 0:
        raise AssertionError("qstate_tool: %s" % r.stderr.decode())
    st = {"targets": []}
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        k, _, v = line.partition(" ")
        if k != "target":
            st[k] = int(v)
            continue
        head, host, text = v.split("\t")
        f = head.split(" ")
        st["targets"].append({"state": f[0], "rcpt": int(f[1]),
                              "tries": int(f[2]), "code": int(f[3]),
                              "status": f[4], "local": int(f[5]),
                              "when": int(f[6]), "addr": f[7], "host": host,
                              "text": text})
    return st


def states(srv):
    """{queue name: {"A": arrival, "N": attempts}} of the messages with a
    state file, read through store/qstate (the qstate_tool program)."""
    out = {}
    for n in queue_names(srv):
        st = qstate(srv, n)
        if st is not None:
            out[n] = {"A": st["arrival"], "N": st["attempts"]}
    return out


def send(srv, sender, rcpts, body, source=None, helo="client.test"):
    """Raw dialogue; returns the end-of-DATA reply (code, lines)."""
    d = harness.Dialog(srv.port) if source is None else _bound_dialog(srv, source)
    with d:
        d.ehlo(helo)
        r = d.send_mail(sender, rcpts, body)
        d.cmd("QUIT")
        return r


def _bound_dialog(srv, source):
    import tlsutil
    return tlsutil.TLSDialog(srv.port, source=source)


def msg(t, subject=None, extra=""):
    return crlf("From: <alice@test.lan>\nTo: <x@example.net>\nSubject: %s\n"
                "Message-ID: <%s@test>\n%s\nbody of %s\n..leading dot line\n"
                % (subject or t, t, extra, t))


class RelayTest(harness.TestCase):
    """Starts postie instances through self.postie(); stops them (exit 0,
    no sanitizer report) at the end. Peers get fresh scripts."""

    prechecks = ()

    def setUp(self):
        # Skips come before the alarm is armed (no tearDown after a skip).
        for check in self.prechecks:
            check(self)
        super().setUp()
        self.servers = []
        for p in PEERS.values():
            p.set({})

    def tearDown(self):
        problems = []
        for srv in self.servers:
            if srv.proc is None:        # never started, or failed to
                continue
            rc = srv.stop()
            report = srv.sanitizer_report()
            if rc != 0:
                problems.append("postie exited %r at SIGTERM: %s"
                                % (rc, srv.log()[-1500:]))
            if report:
                problems.append("sanitizer: " + report)
        try:
            self.after_stop()
        finally:
            for srv in self.servers:
                srv.cleanup()
            super().tearDown()
        if problems:
            raise AssertionError("\n".join(problems))

    def after_stop(self):
        """Runs once every postie has stopped, before their directories
        go."""

    def needs(self, extra, kw):
        """Skips a test whose configuration needs a feature the build
        lacks (the option matrix builds each feature out in turn)."""
        need = []
        if "smarthost_auth" in extra:
            need.append("auth")
        if re.search(r"\b(starttls|tls)\b", extra) or "ca_file" in extra or \
                "smarthost_verify" in extra or "listen submission" in extra:
            need.append("tls")
        if kw.get("aliases"):
            need.append("aliases")
        missing = [n for n in need if n not in HAVE]
        if missing:
            self.skipTest("needs %s" % ", ".join(missing))

    def postie(self, extra="", start=True, retry="1s 2s", **kw):
        self.needs(extra, kw)
        srv = harness.Server(extra=relay_conf(extra, retry), **kw)
        self.servers.append(srv)
        return srv.start() if start else srv

    def restart(self, srv):
        self.assertEqual(srv.stop(), 0, srv.log()[-1500:])
        srv.start()

    def wait_peer(self, name, t, n=1, timeout=WAIT):
        p = PEERS[name]
        return wait_until(lambda: len(p.find(t)) >= n and p.find(t), timeout,
                          "%s at peer %s; log:\n%s" % (
                              t, name, self.servers[-1].log()[-1500:]))

    def wait_empty(self, srv, timeout=WAIT):
        wait_until(lambda: not queue_names(srv), timeout,
                   "an empty queue; log:\n" + srv.log()[-1500:])

    def wait_deferred(self, srv, n_msgs=1, attempts=1, timeout=WAIT):
        def ok():
            st = states(srv)
            done = [s for s in st.values() if s.get("N", 0) >= attempts]
            return len(done) >= n_msgs and st
        return wait_until(ok, timeout, "%d deferred message(s); log:\n%s"
                          % (n_msgs, srv.log()[-1500:]))

    def wait_mbox(self, srv, user, marker, n=1, timeout=WAIT):
        return wait_until(lambda: len(srv.find(user, marker)) >= n and
                          srv.find(user, marker), timeout,
                          "%s in %s's mbox; log:\n%s" % (marker, user,
                                                         srv.log()[-1500:]))

    def assertQueued(self, reply):
        code, lines = reply
        self.assertEqual(code, 250, lines)
        self.assertRegex(lines[0], r"^250 2\.0\.0 .*queued as \S+")

    def assertBounce(self, srv, t, failed, status_re=r"^5\.\d+\.\d+$",
                     owner="alice", keep=()):
        """One RFC 3464 report in owner's mbox about message t; failed:
        the recipients it must list (and only those)."""
        ms = self.wait_mbox(srv, owner, t)
        self.assertEqual(len(ms), 1, ms)
        m = ms[0]
        self.assertEqual(m.sender, "MAILER-DAEMON", m.from_line)
        em = email.message_from_bytes(m.raw)
        self.assertEqual(em.get_content_type(), "multipart/report")
        self.assertEqual(em.get_param("report-type"), "delivery-status")
        self.assertIn("auto-replied", em.get("Auto-Submitted", ""))
        parts = em.get_payload()
        types = [p.get_content_type() for p in parts]
        self.assertEqual(types[:2], ["text/plain", "message/delivery-status"], types)
        self.assertIn(types[2], ("text/rfc822-headers", "message/rfc822"), types)
        blocks = parts[1].get_payload()
        self.assertIn("Reporting-MTA", blocks[0])
        per = blocks[1:]
        finals = [b["Final-Recipient"] for b in per]
        self.assertEqual(sorted(f.split(";", 1)[1].strip().lower() for f in finals),
                         sorted(a.lower() for a in failed), finals)
        for b in per:
            self.assertTrue(b["Final-Recipient"].lower().startswith("rfc822;"))
            self.assertEqual(b["Action"].strip(), "failed")
            self.assertRegex(b["Status"].strip(), status_re)
        orig = parts[2].get_payload(decode=False)
        if isinstance(orig, list):
            orig = orig[0].as_string()
        self.assertIn("Subject: " + t, orig)
        self.assertIn("Message-ID: <%s@test>" % t, orig)
        for k in keep:
            self.assertIn(k, orig)
        return em, per


# ---- MX delivery -------------------------------------------------------------

@need_dns
class MXDelivery(RelayTest):

    def test_second_mx_when_first_refuses(self):
        srv = self.postie()
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["Bob@two.test"], msg(t)))
        tx = self.wait_peer("mx", t)[0]
        self.assertEqual(tx.sender, "alice@test.lan")
        self.assertEqual(tx.rcpts, ["Bob@two.test"])
        # CRLF on the wire, dot-stuffing undone, one Received added.
        self.assertIn(b"\r\n.leading dot line\r\n", tx.data)
        self.assertEqual(tx.data.count(b"\n"), tx.data.count(b"\r\n"))
        self.assertTrue(tx.data.startswith(b"Received: "), tx.data[:200])
        self.wait_empty(srv)
        self.assertEqual(len(PEERS["mx"].find(t)), 1)
        self.assertEqual(srv.spool_tmp(), [])

    def test_implicit_mx(self):
        srv = self.postie()
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["carl@amx.test"], msg(t)))
        tx = self.wait_peer("mx", t)[0]
        self.assertEqual(tx.rcpts, ["carl@amx.test"])
        self.wait_empty(srv)

    def test_one_session_per_domain(self):
        srv = self.postie()
        t = token()
        self.assertQueued(send(srv, "alice@test.lan",
                               ["a@amx.test", "b@amx.test", "demo@test.lan"], msg(t)))
        tx = self.wait_peer("mx", t)[0]
        self.assertEqual(sorted(tx.rcpts), ["a@amx.test", "b@amx.test"])
        self.wait_mbox(srv, "demo", t)
        self.wait_empty(srv)
        self.assertEqual(len(PEERS["mx"].find(t)), 1)

    def test_nxdomain_bounces_with_dsn(self):
        srv = self.postie()
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["nobody@nx.test"], msg(t)))
        em, per = self.assertBounce(srv, t, ["nobody@nx.test"])
        self.wait_empty(srv)
        self.assertEqual(PEERS["mx"].find(t), [])

    def test_delay_warning_once(self):
        # delay_warning: while a message is still retried after that long,
        # the sender gets one RFC 3464 report with Action: delayed.
        import email
        srv = self.postie(extra="delay_warning 1s\n")
        PEERS["flaky"].set({"MAIL": "451 4.3.0 try again later"})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["late@flaky.test"], msg(t)))
        got = self.wait_mbox(srv, "alice", t, timeout=WAIT)
        reports = [m.raw for m in got if b"delivery-status" in m.raw]
        self.assertEqual(len(reports), 1, got)
        text = reports[0].decode("utf-8", "replace")
        self.assertIn("Action: delayed", text)
        self.assertIn("late@flaky.test", text)
        self.assertRegex(text, r"Status: 4\.\d+\.\d+")
        # Further retries send no second warning.
        wait_until(lambda: PEERS["flaky"].nconns() >= 3, WAIT, "more retries")
        self.assertEqual(len([m for m in srv.find("alice", t)
                              if b"delivery-status" in m.raw]), 1)

    def test_tempfail_then_accept(self):
        srv = self.postie()
        PEERS["flaky"].set({"MAIL": "451 4.3.0 try again later"}, {})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["f@flaky.test"], msg(t)))
        tx = self.wait_peer("flaky", t)[0]
        self.assertGreaterEqual(PEERS["flaky"].nconns(), 2)
        self.assertEqual(tx.conn, 1)
        self.wait_empty(srv)
        self.assertEqual(srv.find("alice", t), [], "a temporary failure bounced")

    def test_dot_4xx_then_accept_and_state_file(self):
        srv = self.postie()
        PEERS["flaky"].set({"DOT": "452 4.3.1 disk full here"},
                           {"DOT": "452 4.3.1 disk full here"}, {})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["f@flaky.test"], msg(t)))
        st = self.wait_deferred(srv)
        (name, s), = st.items()
        self.assertGreaterEqual(s["N"], 1)
        self.assertLessEqual(abs(s["A"] - time.time()), 60)
        self.wait_peer("flaky", t)
        self.wait_empty(srv)
        # Two refusals, then one accepted copy.
        self.assertEqual(len(PEERS["flaky"].find(t)), 1)
        self.assertEqual(srv.find("alice", t), [])

    def test_sendmail_q_runs_the_queue_now(self):
        if "sendmail" not in HAVE:
            self.skipTest("feature 'sendmail' not in this build")
        srv = self.postie(retry="10m 1h")
        PEERS["flaky"].set({"RCPT": "450 4.2.1 greylisted"}, {})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["g@flaky.test"], msg(t)))
        self.wait_deferred(srv)
        time.sleep(0.5)
        self.assertEqual(PEERS["flaky"].find(t), [])
        r = subprocess.run(harness.command("sendmail", "-C", "postie.conf", "-q"),
                           cwd=srv.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_peer("flaky", t)
        self.wait_empty(srv)
        # And SIGUSR1 does the same.
        PEERS["flaky"].set({"RCPT": "450 4.2.1 greylisted"}, {})
        t2 = token()
        self.assertQueued(send(srv, "alice@test.lan", ["g@flaky.test"], msg(t2)))
        self.wait_deferred(srv)
        srv.signal(signal.SIGUSR1)
        self.wait_peer("flaky", t2)
        self.wait_empty(srv)

    def test_rcpt_5xx_for_one_of_two(self):
        srv = self.postie()
        PEERS["flaky"].set({"RCPT": {"bad@flaky.test": "550 5.1.1 <bad@flaky.test>: no such user"}})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan",
                               ["good@flaky.test", "bad@flaky.test"], msg(t)))
        tx = self.wait_peer("flaky", t)[0]
        self.assertEqual(tx.rcpts, ["good@flaky.test"])
        em, per = self.assertBounce(srv, t, ["bad@flaky.test"], r"^5\.1\.1$")
        self.assertIn("550", per[0].get("Diagnostic-Code", ""))
        self.assertIn("no such user", per[0].get("Diagnostic-Code", ""))
        # the log names the recipient, the host and its reason
        self.assertRegex(srv.log(), r"queue: \S+: <bad@flaky\.test> failed: host "
                         r"\S+ said: 550 5\.1\.1 <bad@flaky\.test>: no such user")
        self.wait_empty(srv)
        time.sleep(0.3)
        self.assertEqual(len(PEERS["flaky"].find(t)), 1)

    def test_dot_5xx_bounces(self):
        srv = self.postie()
        PEERS["flaky"].set({"DOT": "554-5.7.1 content rejected\n554 5.7.1 really"})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["x@flaky.test"], msg(t)))
        em, per = self.assertBounce(srv, t, ["x@flaky.test"], r"^5\.7\.1$")
        self.wait_empty(srv)
        self.assertEqual(PEERS["flaky"].accepted(), [])

    def test_null_sender_is_never_bounced(self):
        srv = self.postie()
        PEERS["flaky"].set({"RCPT": "550 5.1.1 no"})
        t = token()
        self.assertQueued(send(srv, "", ["x@flaky.test"], msg(t)))
        self.wait_empty(srv)
        # A bounce whose own delivery fails: sender at a domain that does
        # not exist; its bounce (sender <>) must not bounce again, and is
        # kept rather than dropped.
        t2 = token()
        self.assertQueued(send(srv, "ghost@nx.test", ["y@flaky.test"], msg(t2)))
        wait_until(lambda: srv.log().count("from <> and undeliverable") >= 2,
                   WAIT, "two 'undeliverable' log lines; log:\n" +
                   srv.log()[-1500:])
        self.wait_empty(srv)
        bad = os.path.join("spool", "bad")
        self.assertEqual(len(srv.anywhere(t)), 1)
        self.assertEqual(os.path.dirname(srv.anywhere(t)[0]), bad)
        self.assertEqual(len(srv.anywhere(t2)), 1)      # its bounce
        self.assertEqual(os.path.dirname(srv.anywhere(t2)[0]), bad)
        for u in harness.DEFAULT_USERS:
            self.assertEqual(srv.mbox(u), [], u)


# ---- hostile and broken peers ---------------------------------------------------

@need_dns
class BrokenPeers(RelayTest):

    def test_hanging_peer_does_not_block_others(self):
        srv = self.postie()
        PEERS["hang"].set({"hang": True})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["h@hang.test"], msg(t)))
        wait_until(lambda: PEERS["hang"].nconns() >= 1, WAIT, "a connection to the hung peer")
        t2 = token()
        t0 = time.monotonic()
        self.assertQueued(send(srv, "alice@test.lan", ["o@amx.test"], msg(t2)))
        self.wait_peer("mx", t2)
        # below the hung session's greeting timeout (30 s): it did not
        # wait behind the hung one (the bound is generous, not a speed)
        self.assertLess(time.monotonic() - t0, 25 * SLOW)
        # The hung message is still waiting, not bounced.
        self.assertEqual(len(queue_names(srv)), 1)
        self.assertEqual(srv.find("alice", t), [])
        with srv.dialog() as d:
            self.assertEqual(d.banner[0], 220)
            d.ehlo()

    def test_large_message_streamed(self):
        # Larger than the connection's output buffer (1 KB by default):
        # the body goes out in several fills.
        srv = self.postie()
        t = token()
        lines = "".join("%05d %s\n" % (i, "z" * (i % 120)) for i in range(3000))
        body = msg(t) + crlf(lines + ".dot\n" + "w" * 990 + "\n").replace(
            b"\r\n.dot", b"\r\n..dot")
        self.assertQueued(send(srv, "alice@test.lan", ["big@amx.test"], body))
        tx = self.wait_peer("mx", t, timeout=6 * SLOW)[0]
        self.assertIn(crlf(lines + ".dot\n" + "w" * 990 + "\n"), tx.data)
        self.wait_empty(srv)

    def test_8bit_to_server_without_8bitmime(self):
        # Like Postfix: a single-part 8-bit message becomes quoted-printable
        # toward a server that does not offer 8BITMIME; with 8BITMIME it
        # goes as it is, declared BODY=8BITMIME.
        import email
        import quopri
        srv = self.postie()
        text = "Gr\u00fc\u00dfe = caf\u00e9 \u2603\n" * 40
        for offer in (False, True):
            PEERS["mx"].set({"ehlo": ["PIPELINING"] + (["8BITMIME"] if offer else [])})
            t = token()
            body = ("Subject: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n" % t).encode() + \
                text.replace("\n", "\r\n").encode("utf-8")
            self.assertQueued(send(srv, "alice@test.lan", ["u8@amx.test"], body))
            tx = self.wait_peer("mx", t)[0]
            raw = tx.data
            mail_from = [c for c in PEERS["mx"].commands() if c.upper().startswith("MAIL")][-1]
            if offer:
                self.assertIn("BODY=8BITMIME", mail_from.upper())
                self.assertIn(text.replace("\n", "\r\n").encode("utf-8"), raw)
                continue
            self.assertNotIn("BODY=8BITMIME", mail_from.upper())
            self.assertTrue(all(b < 0x80 for b in raw), "8-bit bytes sent")
            m = email.message_from_bytes(raw)
            self.assertEqual(m["Content-Transfer-Encoding"], "quoted-printable")
            self.assertEqual(len(m.get_all("Content-Transfer-Encoding")), 1)
            got = quopri.decodestring(m.get_payload().encode()).decode("utf-8")
            self.assertEqual(got.replace("\r\n", "\n"), text)
            self.assertTrue(all(len(l) <= 78 for l in raw.split(b"\r\n")))
            self.wait_empty(srv)

    def test_bytewise_and_multiline_replies(self):
        srv = self.postie()
        PEERS["mx"].set({"bytewise": True,
                         "greeting": "220-peer.test\n220-slow\n220 talker",
                         "DOT": "250-2.0.0 ok\n250-2.0.0 still ok\n250 2.0.0 queued"})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["b@amx.test", "c@amx.test"], msg(t)))
        tx = self.wait_peer("mx", t)[0]
        self.assertEqual(sorted(tx.rcpts), ["b@amx.test", "c@amx.test"])
        self.wait_empty(srv)

    def test_no_pipelining_no_esmtp(self):
        srv = self.postie()
        PEERS["mx"].set({"EHLO": "502 5.5.2 what", "HELO": "250 old.peer"})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["b@amx.test"], msg(t)))
        self.wait_peer("mx", t)
        cmds = PEERS["mx"].commands()
        self.assertTrue(any(c.startswith("HELO ") for c in cmds), cmds)
        self.wait_empty(srv)

    def test_garbage_replies_defer(self):
        srv = self.postie()
        variants = [
            {"greeting": b"\x16\x03\x01\x00\xff garbage\r\n"},
            {"EHLO": b"hello there\r\n"},
            {"EHLO": b"250-peer\r\n" + b"250-" + b"x" * 5000 + b"\r\n250 ok\r\n"},
            {"EHLO": "\n".join(["250-line"] * 150 + ["250 end"])},
            {"MAIL": b"250 o\x00k\r\n"},
            {"RCPT": b"250-ok\r\n354 mixed codes\r\n"},
            {"DOT": b"25O not a code\r\n"},
        ]
        PEERS["bad"].set(*variants)
        tokens = [token() for _ in variants]
        for t in tokens:
            self.assertQueued(send(srv, "alice@test.lan", ["g@bad.test"], msg(t)))
        wait_until(lambda: PEERS["bad"].nconns() >= len(variants), WAIT,
                   "a connection for each variant")
        self.wait_deferred(srv, n_msgs=len(variants))
        self.assertEqual(PEERS["bad"].accepted(), [])
        self.assertEqual(len(queue_names(srv)), len(variants))
        for t in tokens:
            self.assertEqual(srv.find("alice", t), [], "garbage bounced")
        self.assertIn("malformed reply", srv.log())
        self.assertIn("over-long reply", srv.log())
        self.assertTrue(srv.running())

    def test_peer_closing_mid_transaction_defers(self):
        srv = self.postie()
        PEERS["flaky"].set({"close_after": "DATA"}, {"close_after": "DOT"}, {})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["c@flaky.test"], msg(t)))
        self.wait_peer("flaky", t)
        self.assertGreaterEqual(PEERS["flaky"].nconns(), 3)
        self.wait_empty(srv)
        self.assertEqual(srv.find("alice", t), [])


# ---- smarthost --------------------------------------------------------------------

class Smarthost(RelayTest):

    def smart(self, spec, extra="", **kw):
        self.needs(spec + "\n" + extra, kw)
        srv = self.postie(start=False, **kw)
        srv.write("smarthost.secret", SMART_PASS + "\n", 0o600)
        srv.extra += "smarthost %s\n%s" % (spec, extra)
        if "tls" in HAVE:
            # ca_file is a TLS directive: only where TLS is built.
            shutil.copyfile(CERTS["ca"], srv.path("ca.pem")) if CERTS else None
            srv.extra += "ca_file ./ca.pem\n"
        return srv.start()

    def test_plain_by_address(self):
        srv = self.smart("127.0.0.4:%d plain" % PORT)
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test", "x@nx.test"],
                               msg(t)))
        tx = self.wait_peer("smart", t)[0]
        self.assertEqual(sorted(tx.rcpts), ["far@elsewhere.test", "x@nx.test"])
        self.assertFalse(tx.tls)
        self.wait_empty(srv)

    def test_plain_with_auth_login(self):
        srv = self.smart("127.0.0.4:%d plain" % PORT,
                         "smarthost_auth %s ./smarthost.secret cleartext\n" % SMART_USER)
        PEERS["smart"].set({"auth": (SMART_USER, SMART_PASS, "LOGIN")})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        tx = self.wait_peer("smart", t)[0]
        self.assertEqual(tx.auth, SMART_USER)
        self.wait_empty(srv)

    @need_dns
    def test_starttls_verified_with_auth_plain(self):
        need_certs(self)
        srv = self.smart("smart.test:%d starttls" % PORT,
                         "smarthost_auth %s ./smarthost.secret\n" % SMART_USER)
        PEERS["smart"].set({"starttls": server_ctx("smart"), "require_tls": True,
                            "auth": (SMART_USER, SMART_PASS, "PLAIN")})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        tx = self.wait_peer("smart", t)[0]
        self.assertTrue(tx.tls)
        self.assertEqual(tx.auth, SMART_USER)
        conn = PEERS["smart"].conns[tx.conn]
        self.assertEqual(conn.pre_tls_leftover, b"")
        # The password never went in the clear: AUTH only after STARTTLS.
        cmds = conn.commands
        self.assertLess(cmds.index("STARTTLS"),
                        [i for i, c in enumerate(cmds) if c.startswith("AUTH")][0])
        self.wait_empty(srv)

    @need_dns
    def test_implicit_tls_verified_with_auth_login(self):
        need_certs(self)
        srv = self.smart("smart.test:%d tls" % PORT,
                         "smarthost_auth %s ./smarthost.secret\n" % SMART_USER)
        PEERS["smart"].set({"implicit": server_ctx("smart"),
                            "auth": (SMART_USER, SMART_PASS, "LOGIN")})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        tx = self.wait_peer("smart", t)[0]
        self.assertTrue(tx.tls)
        self.assertEqual(tx.auth, SMART_USER)
        self.wait_empty(srv)

    def check_refused_cert(self, srv, ctx_name, implicit=False):
        key = "implicit" if implicit else "starttls"
        PEERS["smart"].set({key: server_ctx(ctx_name)})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        st = self.wait_deferred(srv)
        self.assertGreaterEqual(list(st.values())[0]["N"], 1)
        time.sleep(0.3)
        cmds = PEERS["smart"].commands()
        self.assertFalse([c for c in cmds if c.startswith(("MAIL", "AUTH", "RCPT"))],
                         cmds)
        self.assertEqual(PEERS["smart"].transactions, [])
        self.assertEqual(srv.find("alice", t), [], "a certificate problem bounced")
        self.assertEqual(len(queue_names(srv)), 1)

    @need_dns
    def test_self_signed_certificate_defers(self):
        need_certs(self)
        srv = self.smart("smart.test:%d starttls" % PORT,
                         "smarthost_auth %s ./smarthost.secret\n" % SMART_USER)
        self.check_refused_cert(srv, "self")

    @need_dns
    def test_wrong_name_certificate_defers(self):
        need_certs(self)
        srv = self.smart("smart.test:%d tls" % PORT)
        self.check_refused_cert(srv, "other", implicit=True)

    def test_verify_none_delivers_to_self_signed(self):
        need_certs(self)
        srv = self.smart("127.0.0.4:%d starttls" % PORT,
                         "smarthost_verify none\n")
        PEERS["smart"].set({"starttls": server_ctx("self")})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        tx = self.wait_peer("smart", t)[0]
        self.assertTrue(tx.tls)
        self.wait_empty(srv)

    def test_large_message_over_tls(self):
        need_certs(self)
        srv = self.smart("127.0.0.4:%d tls" % PORT, "smarthost_verify none\n")
        PEERS["smart"].set({"implicit": server_ctx("self")})
        t = token()
        lines = "".join("%05d %s\n" % (i, "q" * (i % 200)) for i in range(2000))
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"],
                               msg(t) + crlf(lines)))
        tx = self.wait_peer("smart", t, timeout=6 * SLOW)[0]
        self.assertTrue(tx.tls)
        self.assertIn(crlf(lines), tx.data)
        self.wait_empty(srv)

    def test_starttls_required_but_not_offered(self):
        need_certs(self)
        srv = self.smart("127.0.0.4:%d starttls" % PORT, "smarthost_verify none\n")
        PEERS["smart"].set({})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        self.wait_deferred(srv)
        self.assertFalse([c for c in PEERS["smart"].commands()
                          if c.startswith(("MAIL", "AUTH"))])
        self.assertEqual(srv.find("alice", t), [])

    def test_wrong_password_defers(self):
        srv = self.smart("127.0.0.4:%d plain" % PORT,
                         "smarthost_auth %s ./smarthost.secret cleartext\n" % SMART_USER)
        PEERS["smart"].set({"auth": (SMART_USER, "other password", "PLAIN LOGIN")})
        t = token()
        self.assertQueued(send(srv, "alice@test.lan", ["far@elsewhere.test"], msg(t)))
        self.wait_deferred(srv)
        self.assertEqual(PEERS["smart"].transactions, [])
        self.assertEqual(srv.find("alice", t), [])
        self.assertIn("refused the login", srv.log())


# ---- sendmail end to end ------------------------------------------------------------

def _check_sendmail(self):
    if "sendmail" not in HAVE:
        self.skipTest("feature 'sendmail' not in this build")


def _check_root(self):
    if os.geteuid() != 0:
        self.skipTest("needs root to mount a tmpfs")


class SendmailRelay(RelayTest):
    prechecks = (_check_sendmail,)

    def sendmail(self, srv, args, text):
        r = subprocess.run(harness.command("sendmail", "-C", "postie.conf", *args),
                           cwd=srv.dir, input=text.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)

    def smart_postie(self):
        srv = self.postie(aliases="root: admin@remote.test\n", start=False)
        srv.extra += ("smarthost 127.0.0.4:%d plain\nmasquerade alerts@box.example\n"
                      % PORT)
        return srv.start()

    def test_t_and_alias_to_remote_with_masquerade(self):
        srv = self.smart_postie()
        t = token()
        self.sendmail(srv, ["-t", "-i"],
                      "To: someone@remote.test\nSubject: %s\n\nalert %s\n" % (t, t))
        tx = self.wait_peer("smart", t)[0]
        self.assertEqual(tx.rcpts, ["someone@remote.test"])
        self.assertEqual(tx.sender, "alerts@box.example")
        m = email.message_from_bytes(tx.data)
        self.assertIn("alerts@box.example", m["From"])
        # A local alias that points to a remote address.
        t2 = token()
        self.sendmail(srv, ["-i", "root@test.lan"], "Subject: %s\n\ncron says %s\n"
                      % (t2, t2))
        tx = self.wait_peer("smart", t2)[0]
        self.assertEqual(tx.rcpts, ["admin@remote.test"])
        self.assertEqual(tx.sender, "alerts@box.example")
        # A From: naming a local user is masqueraded; a remote one is kept.
        t3 = token()
        self.sendmail(srv, ["-t", "-i"], "From: Cron Daemon <root@test.lan>\n"
                      "To: someone@remote.test\nSubject: %s\n\n%s\n" % (t3, t3))
        tx = self.wait_peer("smart", t3)[0]
        m = email.message_from_bytes(tx.data)
        self.assertIn("<alerts@box.example>", m["From"])
        self.assertIn("Cron Daemon", m["From"])
        self.wait_empty(srv)
        self.assertEqual(os.listdir(srv.path("spool", "maildrop")), [])

    def test_bare_name_is_local(self):
        # `sendmail root` (what cron and scripts do): the bare name is a
        # local one, so the alias applies. sendmail qualifies it with
        # `hostname`, which the daemon must then treat as local too.
        srv = self.smart_postie()
        t = token()
        self.sendmail(srv, ["-i", "root"], "Subject: %s\n\ncron says %s\n" % (t, t))
        tx = self.wait_peer("smart", t)[0]
        self.assertEqual(tx.rcpts, ["admin@remote.test"])
        self.assertEqual(tx.sender, "alerts@box.example")
        self.wait_empty(srv)


# ---- relay policy ---------------------------------------------------------------------

class RelayPolicy(RelayTest):

    def rcpt(self, srv, addr, source=None):
        d = harness.Dialog(srv.port) if source is None else _bound_dialog(srv, source)
        with d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<alice@test.lan>"), 250)
            return d.cmd("RCPT TO:<%s>" % addr)

    def test_relay_networks_only(self):
        srv = self.postie("smarthost 127.0.0.4:%d plain\n" % PORT)
        code, lines = self.rcpt(srv, "x@remote.test")
        self.assertEqual(code, 250, lines)
        code, lines = self.rcpt(srv, "x@remote.test", source="127.0.0.10")
        self.assertEqual(code, 550, lines)
        self.assertIn("5.7.1", lines[0])
        # Local mail from outside is still fine.
        code, lines = self.rcpt(srv, "demo@test.lan", source="127.0.0.10")
        self.assertEqual(code, 250, lines)

    def test_relay_tricks_refused_from_relay_network(self):
        srv = self.postie("smarthost 127.0.0.4:%d plain\n" % PORT)
        tricks = ["user%remote.test@test.lan", "remote.test!user@test.lan",
                  '"user@remote.test"@test.lan', "@test.lan:user@remote.test",
                  "@a.test,@b.test:user@remote.test", "u@[127.0.0.4]",
                  "u@[IPv6:::1]", "user%remote.test@[127.0.0.1]"]
        for a in tricks:
            code, lines = self.rcpt(srv, a)
            self.assertTrue(500 <= code < 600, "%s: %d %r" % (a, code, lines))
        self.assertEqual(PEERS["smart"].nconns(), 0)

    def test_alias_to_remote_address_over_smtp(self):
        # Forwarding is not relaying: mail for a local alias that points
        # elsewhere is taken from anyone and queued to its targets.
        srv = self.postie("smarthost 127.0.0.4:%d plain\n" % PORT,
                          aliases="root: admin@remote.test\n"
                                  "team: demo, friend@remote.test\n")
        t = token()
        code, lines = send(srv, "x@outside.test", ["team@test.lan"], msg(t),
                           source="127.0.0.10")
        self.assertEqual(code, 250, lines)
        self.wait_mbox(srv, "demo", t)
        self.assertEqual(self.wait_peer("smart", t)[0].rcpts, ["friend@remote.test"])
        t2 = token()
        code, lines = self.rcpt(srv, "root@test.lan", source="127.0.0.10")
        self.assertEqual(code, 250, lines)
        code, lines = send(srv, "x@outside.test", ["root@test.lan"], msg(t2),
                           source="127.0.0.10")
        self.assertQueued((code, lines))
        self.assertEqual(self.wait_peer("smart", t2)[0].rcpts, ["admin@remote.test"])
        self.wait_empty(srv)

    def test_authenticated_user_relays(self):
        if not {"auth", "tls"} <= HAVE:
            self.skipTest("needs auth and tls")
        import tlsutil
        srv = tlsutil.TLSServer(submission=True, extra=relay_conf(
            "smarthost 127.0.0.4:%d plain\n" % PORT).replace(
                "relay_networks 127.0.0.1/32", "relay_networks 10.9.9.0/24"))
        self.servers.append(srv)
        srv.start()
        t = token()
        with srv.tdialog(srv.submission_port) as d:
            d.ehlo()
            d.starttls()
            d.ehlo()
            self.assertEqual(d.auth_plain("alice")[0], 235)
            self.assertQueued(d.send_mail("alice@test.lan", ["friend@remote.test"], msg(t)))
        tx = self.wait_peer("smart", t)[0]
        self.assertEqual(tx.rcpts, ["friend@remote.test"])
        # Without login, the same client is refused.
        code, lines = self.rcpt(srv, "friend@remote.test")
        self.assertEqual(code, 550, lines)


# ---- durability ---------------------------------------------------------------------------

@need_dns
class Durability(RelayTest):

    def tearDown(self):
        late = PEERS.pop("late", None)
        if late:
            late.stop()
        super().tearDown()

    def start_late(self):
        p = peermod.Peer(LATE, PORT).listen().start()
        PEERS["late"] = p
        return p

    def test_restart_with_mail_in_queue(self):
        srv = self.postie()
        tokens = [token() for _ in range(3)]
        for t in tokens:
            self.assertQueued(send(srv, "alice@test.lan", ["l@late.test"], msg(t)))
        self.wait_deferred(srv, n_msgs=3)
        self.restart(srv)
        late = self.start_late()
        for t in tokens:
            self.wait_peer("late", t)
        self.wait_empty(srv)
        for t in tokens:
            self.assertEqual(len(late.find(t)), 1)
        self.assertEqual(srv.find("alice", tokens[0]), [])

    def test_kill_9_while_accepting(self):
        srv = self.postie()
        acked = {}                  # token -> "local" | "remote"
        lock = threading.Lock()
        rnd = random.Random(7)

        def client(stop, n):
            for i in range(200):
                if stop.is_set():
                    return
                t = token("k%d" % n)
                where = "local" if (i + n) % 2 else "remote"
                rcpt = "demo@test.lan" if where == "local" else "k@amx.test"
                try:
                    with harness.Dialog(srv.port, timeout=5) as d:
                        d.ehlo()
                        code, _ = d.send_mail("alice@test.lan", [rcpt],
                                              msg(t, extra="X-Pad: %s\n" % ("p" * 60)))
                except (OSError, harness.Closed, AssertionError):
                    return
                if code == 250:
                    with lock:
                        acked[t] = where

        pids = set()
        for rnd_i in range(5):
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(stop, n), daemon=True)
                       for n in range(4)]
            for th in threads:
                th.start()
            time.sleep(rnd.uniform(0.15, 0.6))
            pids.add(srv.proc.pid)
            srv.proc.kill()
            srv.proc.wait(10)
            stop.set()
            for th in threads:
                th.join(10)
            srv.stop()
            srv.start()
        # postie listens before it installs its signal handlers (see the
        # report): a SIGUSR1 before "started" is logged would kill it.
        wait_until(lambda: srv.log().count(" started: ") >= 6, WAIT,
                   "the sixth start in the log")
        self.assertGreater(len(acked), 5, "too few messages got through")
        # A kill during an append leaves postie's dotlock behind, which
        # holds the mailbox for CONFIG_MBOX_DOTLOCK_STALE (300 s): play
        # that time forward by removing a lock held by a killed postie.
        lock = srv.path("mail", "demo.lock")
        try:
            with open(lock) as f:
                holder = int(f.read().strip() or 0)
            if holder in pids:
                os.unlink(lock)
                srv.signal(signal.SIGUSR1)
        except FileNotFoundError:
            pass
        for t, where in acked.items():
            if where == "remote":
                self.wait_peer("mx", t)
            else:
                self.wait_mbox(srv, "demo", t)
        self.wait_empty(srv)
        self.assertEqual(srv.spool_tmp(), [])
        # The mbox parses and every message in it is whole.
        for m in srv.mbox("demo"):
            self.assertTrue(m.raw.endswith(b".leading dot line\n"), m.raw[-200:])
            self.assertEqual(len(m.headers("Subject")), 1)


class SmallDiskTest(RelayTest):
    """mount_small(dir): a 256 KiB tmpfs there (root only; the test is
    skipped visibly when the mount fails), unmounted after postie stops."""
    prechecks = (_check_root,)
    mnt = None

    def mount_small(self, path, mode="0700"):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=" + mode,
                            "postie-test", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode()[-200:])
        self.mnt = path

    def after_stop(self):
        if self.mnt:
            subprocess.run(["umount", "-l", self.mnt], timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.mnt = None


@need_dns
class DiskFull(SmallDiskTest):

    def test_spool_full_is_temporary(self):
        srv = self.postie(start=False)
        spool = srv.path("spool")
        os.mkdir(spool, 0o700)
        self.mount_small(spool)
        srv.start()
        t0 = token()
        self.assertQueued(send(srv, "alice@test.lan", ["a@amx.test"], msg(t0)))
        self.wait_peer("mx", t0)
        self.wait_empty(srv)
        # Fill the file system.
        filler = os.path.join(spool, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(1024):
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        t = token()
        big = msg(t, extra="X-Big: %s\n" % ("b" * 900)) + crlf("line\n" * 200)
        with srv.dialog() as d:
            d.ehlo()
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            if code == 250:
                self.assertEqual(d.code("RCPT TO:<a@amx.test>"), 250)
                self.assertEqual(d.code("DATA"), 354)
                d.send(big + b".\r\n")
                code, lines = d.reply()
            self.assertEqual(code, 452, lines)
            self.assertIn("4.3.1", lines[0])
            self.assertEqual(d.code("NOOP"), 250)
            # Local mail goes through the spool too: also 452.
            code, lines = d.cmd("MAIL FROM:<alice@test.lan>")
            if code == 250:
                self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 250)
                self.assertEqual(d.code("DATA"), 354)
                d.send(big + b".\r\n")
                code, lines = d.reply()
            self.assertEqual(code, 452, lines)
        self.assertEqual(srv.spool_tmp(), [])
        self.assertEqual(PEERS["mx"].find(t), [])
        os.unlink(filler)
        t2 = token()
        self.assertQueued(send(srv, "alice@test.lan", ["a@amx.test"], msg(t2)))
        self.wait_peer("mx", t2)
        self.wait_empty(srv)
        self.assertTrue(srv.running())


if __name__ == "__main__":
    unittest.main()
