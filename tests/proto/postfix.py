"""A private Postfix from Debian, the smarthost of the relay tests.

    pf = postfix.Postfix().start()
    pf.port["submission"]               # STARTTLS required, then SASL
    pf.find("bob", marker)              # messages delivered to bob@dest.test
    pf.stop(); pf.cleanup()

One instance of Postfix 3.x as packaged by Debian (tests/install-deps.sh
installs it without a system instance), run by the tests and nothing
else: `postfix -c DIR start` with its own main.cf and master.cf in a
temporary directory that also holds its queue_directory, data_directory,
log (maillog_file, no syslog needed) and the delivered mail. It listens
only on ADDR (127.0.0.9 by default, inet_interfaces) on free ports:

  submission  STARTTLS required (smtpd_tls_security_level=encrypt), AUTH
              required before RCPT; certificate smart.test (+ IP ADDR)
              signed by the test CA
  smtps       the same in wrapper mode (implicit TLS, 465-style)
  untrusted   like submission with a self-signed smart.test certificate
  wrongname   like submission with a CA-signed certificate for other.test
  expired     like submission with a CA-signed smart.test certificate
              whose validity ended (made with `openssl ca -enddate`)
  plain       no TLS, no AUTH (for scripted checks and the bench)

inet_interfaces is loopback-only (Postfix wants an interface address
there); every service names its own ADDR:PORT in master.cf.

The test CA, the keys and the certificates are made here with openssl
(EC P-256), self.ca is the CA file postie trusts. SASL: Cyrus SASL from a
sasldb made with saslpasswd2 (sasl2-bin), user USER in realm REALM,
password PASSWORD, mechanisms PLAIN and LOGIN; Postfix's smtpd logs in
the user as USER (smtpd_sasl_local_domain = REALM).

Mail is accepted for dest.test only (nobody relays through it: nothing
leaves the instance) and delivered by virtual(8) into one mbox per user
under DIR/mail (USERS; an unknown user is a 550 5.1.1). check_recipient_access
answers with the text of TEMPFAIL for tempfail@dest.test (a 450), of
REJECT for reject@dest.test and of QUOTED (a quote and backslashes in
it) for quoted@dest.test (550s before the user lookup). No DNS at all:
no client name lookups, smtp_dns_support_level = disabled, no relayhost,
and the only transports that could leave (smtp, relay) are `error`.

Postfix's master runs as root, its daemons as the postfix user; the
delivered mbox files belong to nobody. Not root, or no Postfix to be had:
Unavailable(reason), which the tests turn into a skip with that reason.
"""
import os
import pwd
import grp
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
ADDR = "127.0.0.9"
NAME = "smart.test"
DOMAIN = "dest.test"
USER = "alerts"
REALM = "smart.test"
PASSWORD = "smarthost secret 7"
USERS = ("bob", "carol", "dave")
TEMPFAIL = "450 4.2.1 tempfail@dest.test: mailbox busy, try again later"
REJECT = "550 5.7.1 reject@dest.test: refused by policy"
# A refusal whose words hold a quote and backslashes (shown once by mailq).
QUOTED = '550 5.7.1 "quoted" is refused, see C:\\policy\\mail.txt'
SERVICES = ("submission", "smtps", "untrusted", "wrongname", "expired", "plain")
START_TIMEOUT = 30 * harness.SLOW


class Unavailable(Exception):
    """Postfix cannot run here; str() says why (a skip reason)."""


def _which(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/usr/bin/" + name) if os.path.exists(p)),
        None)


def _install():
    """Postfix and SASL through tests/install-deps.sh (as root)."""
    script = os.path.join(harness.REPO, "tests", "install-deps.sh")
    try:
        r = subprocess.run([script, "check"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "tests/install-deps.sh check: %s" % e
    if r.returncode != 0:
        return "tests/install-deps.sh check failed: %s" % \
            r.stdout.decode("utf-8", "replace")[-300:]
    return None


def available():
    """None when Postfix can run here (installing it if root and missing),
    else the reason it cannot."""
    if os.geteuid() != 0:
        return "Postfix's master must run as root (run the tests as root)"
    if not (_which("postfix") and _which("saslpasswd2") and _which("openssl")):
        why = _install()
        if not (_which("postfix") and _which("saslpasswd2") and _which("openssl")):
            return "Postfix, saslpasswd2 or openssl missing after install: %s" % why
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "no postfix user or postdrop group (package postfix half installed)"
    return None


def _free_port(addr, taken):
    for _ in range(50):
        s = socket.socket()
        try:
            s.bind((addr, 0))
            p = s.getsockname()[1]
        finally:
            s.close()
        if p not in taken:
            return p
    raise Unavailable("no free port on %s" % addr)


def _run(argv, timeout=60, inp=None):
    r = subprocess.run(argv, input=inp, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout * harness.SLOW)
    if r.returncode != 0:
        raise Unavailable("%s failed (%d): %s" % (
            " ".join(argv[:3]), r.returncode,
            r.stdout.decode("utf-8", "replace")[-600:]))
    return r.stdout.decode("utf-8", "replace")


def make_certs(d, addr=ADDR):
    """Test CA, and certificates in d: smart (smart.test, IP addr, CA-signed),
    self (self-signed smart.test), other (CA-signed other.test), expired
    (CA-signed smart.test, validity over). Returns {name: (cert, key)} and
    "ca": the CA file."""
    p = lambda n: os.path.join(d, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(p("req.cnf"), "w") as f:
        f.write("[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=x\n"
                "[v3ca]\nbasicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n"
                "[self]\nbasicConstraints=CA:FALSE\n"
                "subjectAltName=DNS:%s,IP:%s\n" % (NAME, addr))
    _run(["openssl", "req", "-x509"] + ec + [
        "-config", p("req.cnf"), "-extensions", "v3ca", "-keyout", p("ca.key"),
        "-out", p("ca.pem"), "-days", "30", "-subj", "/CN=Postie Smarthost Test CA"])
    out = {"ca": p("ca.pem")}
    for name, cn, san in (("smart", NAME, "DNS:%s,IP:%s" % (NAME, addr)),
                          ("other", "other.test", "DNS:other.test")):
        with open(p(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
        _run(["openssl", "req", "-new"] + ec + [
            "-config", p("req.cnf"), "-keyout", p(name + ".key"),
            "-out", p(name + ".csr"), "-subj", "/CN=" + cn])
        _run(["openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"),
              "-CAkey", p("ca.key"), "-set_serial", str(random.randrange(1, 1 << 30)),
              "-out", p(name + ".pem"), "-days", "30", "-extfile", p(name + ".ext")])
        out[name] = (p(name + ".pem"), p(name + ".key"))
    _run(["openssl", "req", "-x509"] + ec + [
        "-config", p("req.cnf"), "-extensions", "self", "-keyout", p("self.key"),
        "-out", p("self.pem"), "-days", "30", "-subj", "/CN=" + NAME])
    out["self"] = (p("self.pem"), p("self.key"))
    # Expired: `openssl ca` is the one that takes explicit dates.
    os.mkdir(p("ca.db"))
    open(p("ca.db/index.txt"), "w").close()
    with open(p("ca.db/serial"), "w") as f:
        f.write("%04X\n" % random.randrange(1, 1 << 15))
    with open(p("ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=t\n[t]\ndir=%s\ndatabase=$dir/index.txt\n"
                "serial=$dir/serial\nnew_certs_dir=$dir\ndefault_md=sha256\n"
                "policy=any\nunique_subject=no\ncopy_extensions=none\n"
                "[any]\ncommonName=supplied\n[ext]\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:%s,IP:%s\n" % (p("ca.db"), NAME, addr))
    _run(["openssl", "req", "-new"] + ec + [
        "-config", p("req.cnf"), "-keyout", p("expired.key"),
        "-out", p("expired.csr"), "-subj", "/CN=" + NAME])
    _run(["openssl", "ca", "-batch", "-config", p("ca.cnf"), "-cert", p("ca.pem"),
          "-keyfile", p("ca.key"), "-in", p("expired.csr"), "-out", p("expired.pem"),
          "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
          "-extensions", "ext", "-notext"])
    out["expired"] = (p("expired.pem"), p("expired.key"))
    return out


class Postfix:
    def __init__(self, addr=ADDR, relayhost=None):
        """relayhost ("[127.0.0.3]:PORT", an address: no lookup) makes it
        a relay for the benchmarks: the plain service takes mail from
        127.0.0.0/8 for anywhere and smtp(8) sends it there."""
        why = available()
        if why:
            raise Unavailable(why)
        self.addr = addr
        self.relayhost = relayhost
        self.dir = tempfile.mkdtemp(prefix="postie-postfix-")
        # Postfix's daemons (user postfix, virtual as nobody) walk down here.
        os.chmod(self.dir, 0o755)
        self.etc = self.path("etc")
        self.mail = self.path("mail")
        self.log_path = self.path("maillog")
        self.port = {}
        self.running = False
        for d in ("etc", "etc/sasl", "queue", "data", "mail", "certs", "sasl"):
            os.mkdir(self.path(d))
        os.chmod(self.path("certs"), 0o755)
        self.certs = make_certs(self.path("certs"), addr)
        self.ca = self.certs["ca"]

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # ---- configuration ------------------------------------------------------

    def _write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def _configure(self):
        nobody = pwd.getpwnam("nobody")
        postfix = pwd.getpwnam("postfix")
        for name in SERVICES:
            self.port[name] = _free_port(self.addr, set(self.port.values()))
        _run(["saslpasswd2", "-p", "-c", "-f", self.path("sasl/sasldb2"),
              "-u", REALM, USER], inp=PASSWORD.encode())
        os.chown(self.path("sasl/sasldb2"), postfix.pw_uid, postfix.pw_gid)
        os.chmod(self.path("sasl/sasldb2"), 0o600)
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf
        # (cyrus_sasl_config_path, set too, is not what it looks at).
        self._write("etc/sasl/smtpd.conf",
                    "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "sasldb_path: %s\nmech_list: PLAIN LOGIN\n"
                    % self.path("sasl/sasldb2"))
        self._write("etc/vmailbox", "".join(
            "%s@%s %s\n" % (u, DOMAIN, u) for u in USERS))
        self._write("etc/rcpt_access", "tempfail@%s %s\nreject@%s %s\n"
                    "quoted@%s %s\n" % (DOMAIN, TEMPFAIL, DOMAIN, REJECT,
                                        DOMAIN, QUOTED))
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        os.chown(self.path("data"), postfix.pw_uid, postfix.pw_gid)
        smart, key = self.certs["smart"]
        self._write("etc/main.cf", """\
# Generated by tests/proto/postfix.py: a private test instance.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = {name}
mydomain = {name}
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = {mynetworks}
# Never a DNS lookup; no delivery off this instance (with a relayhost,
# only to that address).
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
relayhost = {relayhost}
relay_domains =
default_transport = {transport}
relay_transport = {transport}
append_dot_mydomain = no
alias_maps =
alias_database =
biff = no
notify_classes =
smtputf8_enable = no
# Mail for {domain}: one mbox per user (virtual, as nobody); bob+x is
# bob's (many distinct addresses that all exist).
recipient_delimiter = +
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = 0
virtual_mailbox_lock = fcntl, dotlock
message_size_limit = 20971520
smtpd_relay_restrictions = {relay_restrictions}
smtpd_recipient_restrictions = check_recipient_access texthash:{d}/etc/rcpt_access
# TLS (the services of master.cf choose their level) and SASL.
smtpd_tls_cert_file = {smart}
smtpd_tls_key_file = {key}
smtpd_tls_loglevel = 1
smtpd_tls_auth_only = yes
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {d}/sasl
smtpd_sasl_local_domain = {realm}
smtpd_sasl_authenticated_header = yes
broken_sasl_auth_clients = no
# Quick to notice a test's session; no daemon exits during a test.
max_idle = 300s
max_use = 10000
""".format(d=self.dir, name=NAME, addr=self.addr, domain=DOMAIN,
           uid=nobody.pw_uid, gid=nobody.pw_gid, smart=smart, key=key,
           realm=REALM, relayhost=self.relayhost or "",
           mynetworks="127.0.0.0/8" if self.relayhost else "",
           transport="smtp" if self.relayhost else
           "error:no delivery off the test smarthost",
           relay_restrictions="permit_mynetworks, reject_unauth_destination"
           if self.relayhost else "reject_unauth_destination"))
        need_tls = "-o smtpd_tls_security_level=encrypt"
        auth = ("-o smtpd_sasl_auth_enable=yes -o smtpd_recipient_restrictions="
                "check_recipient_access,texthash:%s/etc/rcpt_access,"
                "permit_sasl_authenticated,reject" % self.dir)
        lines = [
            "# Generated by tests/proto/postfix.py: chroot off, loopback only.",
        ]

        def inet(name, opts):
            lines.append("%s:%d inet n - n - - smtpd %s" % (
                self.addr, self.port[name], opts))

        def cert(name):
            c, k = self.certs[name]
            return "-o smtpd_tls_cert_file=%s -o smtpd_tls_key_file=%s" % (c, k)

        inet("submission", "%s %s" % (need_tls, auth))
        inet("smtps", "-o smtpd_tls_wrappermode=yes %s %s" % (need_tls, auth))
        inet("untrusted", "%s %s %s" % (need_tls, auth, cert("self")))
        inet("wrongname", "%s %s %s" % (need_tls, auth, cert("other")))
        inet("expired", "%s %s %s" % (need_tls, auth, cert("expired")))
        inet("plain", "-o smtpd_tls_security_level=none")
        with open(os.path.join(HERE, "postfix-services.cf")) as f:
            lines.append(f.read())
        out = "smtp" if self.relayhost else "error"
        lines.append("tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
                     "smtp      unix  -       -       n       -       -       %s\n"
                     "relay     unix  -       -       n       -       -       %s\n"
                     % (out, out))
        self._write("etc/master.cf", "\n".join(lines))

    # ---- process --------------------------------------------------------------

    def _postfix(self, verb, timeout=60):
        return subprocess.run([_which("postfix"), "-c", self.etc, verb],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              timeout=timeout * harness.SLOW)

    def master_pid(self):
        try:
            with open(self.path("queue", "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if os.path.isdir("/proc/%d" % pid) else None

    def _listening(self):
        for port in self.port.values():
            try:
                socket.create_connection((self.addr, port), timeout=1).close()
            except OSError:
                return False
        return True

    def start(self):
        self._configure()
        r = self._postfix("start")
        if r.returncode != 0:
            raise Unavailable("postfix -c %s start: %s %s" % (
                self.etc, r.stdout.decode("utf-8", "replace")[-800:],
                self.log()[-800:]))
        self.running = True
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._listening():
                return self
            time.sleep(0.1)
        self.stop()
        raise Unavailable("Postfix did not listen within %d s: %s" % (
            START_TIMEOUT, self.log()[-800:]))

    def stop(self):
        if not self.running:
            return
        self.running = False
        pid = self.master_pid()
        try:
            self._postfix("stop")
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 20 * harness.SLOW
        while pid and os.path.isdir("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid and os.path.isdir("/proc/%d" % pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def cleanup(self):
        self.stop()
        if harness.KEEP:
            print("kept", self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- what it did ----------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mbox(self, user):
        return harness.read_mbox(os.path.join(self.mail, user))

    def find(self, user, marker):
        return harness.with_marker(self.mbox(user), marker)

    def queue_empty(self):
        """Nothing in Postfix's own queue (delivered or bounced)."""
        for sub in ("incoming", "active", "deferred", "maildrop"):
            for _, _, files in os.walk(self.path("queue", sub)):
                if files:
                    return False
        return True
