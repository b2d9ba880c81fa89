"""Helpers for the TLS and AUTH protocol tests (test_tls.py, test_auth.py).

- certificates made once per test process with openssl (RSA, a second
  RSA for reloads, EC P-256), in a temp dir removed at exit;
- password hashes from `postie passwd`, `openssl passwd -6/-5`, mkpasswd;
- TLSServer: harness.Server plus submission/smtps listeners on their own
  free ports, tls_cert/tls_key copied into the server's dir (so a test can
  replace them and SIGHUP), a users file with hashes;
- TLSDialog: harness.Dialog that can start TLS (STARTTLS or implicit),
  bind a source address (127.0.0.2, ...), and resume sessions.
"""
import atexit
import base64
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

import harness
from harness import HOSTNAME, IO_TIMEOUT, SLOW

PASSWORD = "s3cret pass!"     # a blank on purpose (ASCII: smtplib)

_certdir = None
_certs = {}


def have(*names):
    """True if every feature is in `postie -V`."""
    f = harness.features()
    return all(n in f for n in names)


def need_features(*names):
    """Decorator: skip unless all features are compiled in."""
    def deco(obj):
        missing = [n for n in names if n not in harness.features()]
        if not missing:
            return obj
        return unittest.skip("feature %s not in this build"
                             % "/".join(missing))(obj)
    return deco


def _run(argv, stdin=None, timeout=60):
    return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW)


def cert(kind="rsa"):
    """(cert path, key path) of a self-signed certificate for HOSTNAME
    (SAN DNS:HOSTNAME and IP:127.0.0.1); kind is rsa, rsa2 or ec."""
    global _certdir
    if kind in _certs:
        return _certs[kind]
    if not shutil.which("openssl"):
        raise unittest.SkipTest("openssl not installed")
    if _certdir is None:
        _certdir = tempfile.mkdtemp(prefix="postie-certs-")
        atexit.register(shutil.rmtree, _certdir, True)
    c = os.path.join(_certdir, kind + "-cert.pem")
    k = os.path.join(_certdir, kind + "-key.pem")
    if kind == "ec":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    else:
        newkey = ["-newkey", "rsa:2048"]
    r = _run(["openssl", "req", "-x509"] + newkey +
             ["-nodes", "-keyout", k, "-out", c, "-days", "30",
              "-subj", "/CN=" + HOSTNAME,
              "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % HOSTNAME])
    if r.returncode != 0:
        raise AssertionError("openssl req failed: %s" % r.stderr.decode()[-500:])
    _certs[kind] = (c, k)
    return c, k


def cert_der(kind="rsa"):
    with open(cert(kind)[0]) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def client_ctx(kind="rsa", verify=True):
    """A client context trusting the test certificate `kind`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cert(kind)[0])
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def postie_passwd(pw=PASSWORD):
    r = subprocess.run(harness.command("passwd"), input=(pw + "\n").encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30 * SLOW)
    if r.returncode != 0:
        raise AssertionError("postie passwd exited %d: %r"
                             % (r.returncode, r.stderr))
    return r.stdout.decode().strip()


def openssl_passwd(scheme, pw=PASSWORD):
    """`openssl passwd -6` or `-5` hash, or None if openssl lacks it."""
    if not shutil.which("openssl"):
        return None
    r = _run(["openssl", "passwd", "-" + scheme, "-stdin"],
             stdin=(pw + "\n").encode())
    out = r.stdout.decode().strip()
    return out if r.returncode == 0 and out.startswith("$%s$" % scheme) else None


def mkpasswd_hash(pw=PASSWORD, rounds=None):
    """`mkpasswd -m sha-512` hash (package whois), or None."""
    if not shutil.which("mkpasswd"):
        return None
    argv = ["mkpasswd", "-m", "sha-512", "-s"]
    if rounds:
        argv[3:3] = ["-R", str(rounds)]
    r = _run(argv, stdin=pw.encode())
    out = r.stdout.decode().strip()
    return out if r.returncode == 0 and out.startswith("$6$") else None


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def plain(user, pw=PASSWORD, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, pw))


class TLSServer(harness.Server):
    """harness.Server with TLS listeners. tls: None (no TLS at all), or a
    cert kind ("rsa", "ec"). submission/smtps: add those listeners.
    users: {name: hash or ""}."""

    def __init__(self, tls="rsa", submission=False, smtps=False, users=None,
                 **kw):
        users = users if users is not None else default_users()
        super().__init__(users=list(users), **kw)
        self.hashes = dict(users)
        self.write("users", "".join("%s:%s\n" % (u, h)
                                    for u, h in self.hashes.items()))
        self.tls = tls
        self.want_submission = submission
        self.want_smtps = smtps
        self.submission_port = self.smtps_port = None
        if tls:
            self.set_cert(tls)

    def set_cert(self, kind, key_kind=None):
        """Copies certificate `kind` (and the key of `key_kind`) in."""
        c, _ = cert(kind)
        _, k = cert(key_kind or kind)
        shutil.copyfile(c, self.path("cert.pem"))
        shutil.copyfile(k, self.path("key.pem"))
        os.chmod(self.path("key.pem"), 0o600)

    def config(self, port):
        text = super().config(port)
        extra = []
        if self.want_submission:
            self.submission_port = harness.free_port()
            extra.append("listen submission 127.0.0.1:%d" % self.submission_port)
        if self.want_smtps:
            self.smtps_port = harness.free_port()
            extra.append("listen smtps 127.0.0.1:%d" % self.smtps_port)
        if self.tls:
            extra += ["tls_cert ./cert.pem", "tls_key ./key.pem"]
        return text + "\n".join(extra) + "\n"

    def add_user(self, name, hash_):
        self.hashes[name] = hash_
        self.write("users", "".join("%s:%s\n" % (u, h)
                                    for u, h in self.hashes.items()))

    def tdialog(self, port=None, **kw):
        return TLSDialog(port or self.port, **kw)


class TLSServerTest(harness.ServerTest):
    """ServerTest whose server is a TLSServer(**server_args)."""

    @classmethod
    def setUpClass(cls):
        super(harness.ServerTest, cls).setUpClass()
        cls.server = TLSServer(**cls.server_args).start()


class TLSDialog(harness.Dialog):
    """A raw SMTP dialogue that can switch to TLS.

    implicit: a context (or True for the default one) to wrap the socket
    before the banner (smtps). source: local address to bind (127.0.0.x).
    """

    def __init__(self, port, host="127.0.0.1", timeout=None, banner=True,
                 implicit=None, source=None, session=None):
        self.timeout = timeout or IO_TIMEOUT
        self.buf = b""
        self.sock = socket.create_connection(
            (host, port), timeout=self.timeout,
            source_address=(source, 0) if source else None)
        if implicit is not None:
            self.wrap(implicit, session=session)
        self.banner = self.reply() if banner else None

    def wrap(self, ctx=True, session=None):
        if ctx is True:
            ctx = client_ctx()
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=HOSTNAME,
                                        session=session)
        except BaseException:
            self.close()
            raise

    def starttls(self, ctx=True, session=None):
        code, lines = self.cmd("STARTTLS")
        if code != 220:
            raise AssertionError("STARTTLS: %d %r" % (code, lines))
        if self.buf:
            raise AssertionError("bytes after the STARTTLS reply in the "
                                 "clear: %r" % self.buf[:200])
        self.wrap(ctx, session)

    def auth_plain(self, user, pw=PASSWORD, authzid=""):
        return self.cmd("AUTH PLAIN " + plain(user, pw, authzid))

    @property
    def tls_version(self):
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None


def client_hello(version=None):
    """The bytes of a real TLS ClientHello (from Python's ssl)."""
    ctx = client_ctx(verify=False)
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=HOSTNAME)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def kconfig(name, default):
    """CONFIG_<name> of the build under test (its include/autoconf.h
    beside the binary), or `default`."""
    path = os.path.join(os.path.dirname(harness.BIN), "include", "autoconf.h")
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[:2] == ["#define", "CONFIG_" + name]:
                    return int(parts[2])
    except (OSError, ValueError):
        pass
    return default


def default_users():
    """alice and bob with postie passwd hashes (no hashes without auth)."""
    h = postie_passwd() if have("auth") else ""
    return {"alice": h, "bob": h}
