"""Test harness for postie protocol tests (Python 3 stdlib only).

A Server runs the real binary in a private temporary directory (its cwd),
with a generated configuration on a free 127.0.0.1 port, its stderr in a
log file. Dialog is a raw SMTP socket for hostile or exact dialogues.
read_mbox() splits an mbox file and undoes mboxrd quoting.

Environment:
  POSTIE_BIN    the binary (default: build/host/postie under the repo)
  POSTIE_QEMU   command prefix for cross binaries, e.g. "qemu-mips-static"
  POSTIE_QUICK  "1": skip the slow tests (marked with @slow)
  POSTIE_KEEP   "1": keep the temporary directories (printed on stop)
"""
import errno
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

BIN = os.environ.get("POSTIE_BIN") or os.path.join(REPO, "build", "host", "postie")
if not os.path.isabs(BIN):
    BIN = os.path.join(REPO, BIN)
QEMU = shlex.split(os.environ.get("POSTIE_QEMU", ""))
QUICK = os.environ.get("POSTIE_QUICK") == "1"
KEEP = os.environ.get("POSTIE_KEEP") == "1"

# Everything is slower under qemu-user: scale the (generous) bounds.
# These bounds only end a wait that would otherwise never end: a passing
# test never waits them out, so they are set for a machine busy with other
# work (and sanitizer builds), not for speed. Speed is `make bench`'s job.
SLOW = 4.0 if QEMU else 1.0
TEST_TIMEOUT = int(300 * SLOW)      # per test method, enforced with SIGALRM
IO_TIMEOUT = 30.0 * SLOW            # one reply
START_TIMEOUT = 60.0 * SLOW

HOSTNAME = "mail.test.lan"
DOMAINS = ("test.lan", "example.org")
LOCK_WAIT = 5                       # CONFIG_MBOX_LOCK_WAIT default


def command(*args):
    return QEMU + [BIN] + list(args)


_features = None


def features():
    """Set of compiled-in features from `postie -V`."""
    global _features
    if _features is None:
        out = subprocess.run(command("-V"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30 * SLOW).stdout
        _features = set()
        for line in out.decode("utf-8", "replace").splitlines():
            if line.startswith("features:"):
                _features |= set(line.split(":", 1)[1].split())
            elif line.startswith("limits:"):
                # "connections=64 ...": kept as "limit:connections=64"
                _features |= {"limit:" + x for x in line.split(":", 1)[1].split()}
            elif line.startswith("imap:"):
                # IMAP extensions compiled in, as "imap:idle", "imap:move"...
                _features |= {"imap:" + x.lower()
                              for x in line.split(":", 1)[1].split()}
    return _features


def limit(name, default):
    """A compiled-in limit from `postie -V` (limits: NAME=N)."""
    for f in features():
        if f.startswith("limit:%s=" % name):
            return int(f.split("=", 1)[1])
    return default


def need_feature(name):
    """Decorator: skip unless `name` is in the -V features."""
    def deco(obj):
        if name in features():
            return obj
        return unittest.skip("feature '%s' not in this build" % name)(obj)
    return deco


def need_tool(name):
    def deco(obj):
        if shutil.which(name):
            return obj
        return unittest.skip("%s not installed" % name)(obj)
    return deco


def slow(obj):
    """Skipped with --quick (qemu runs)."""
    if QUICK:
        return unittest.skip("slow test (--quick)")(obj)
    return obj


def free_port():
    """A TCP port free on 127.0.0.1 and, where it exists, on ::1: tests
    listen on both, and another make check running beside this one may
    hold a port on ::1 only."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::1", port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    continue
            return port
        finally:
            s.close()
    raise AssertionError("no port free on both 127.0.0.1 and ::1")


def token(prefix="tok"):
    """A unique marker to find one test's message among others."""
    return "%s-%d-%d-%s" % (prefix, os.getpid(), time.monotonic_ns(),
                            os.urandom(3).hex())


class TestCase(unittest.TestCase):
    """unittest.TestCase with a hard per-test time limit (SIGALRM)."""

    timeout = TEST_TIMEOUT

    def _alarm(self, signum, frame):
        raise TimeoutError("test exceeded %d s" % self.timeout)

    def setUp(self):
        super().setUp()
        self._old_alarm = signal.signal(signal.SIGALRM, self._alarm)
        signal.alarm(self.timeout)

    def tearDown(self):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._old_alarm)
        super().tearDown()


# ---- mbox ------------------------------------------------------------

QUOTED_FROM = re.compile(rb"^>+From ")


class Message:
    def __init__(self, from_line, raw):
        self.from_line = from_line      # bytes, without the newline
        self.raw = raw                  # bytes, unquoted, LF line ends
        head, sep, body = raw.partition(b"\n\n")
        self.head = head + b"\n"
        self.body = body if sep else b""

    def headers(self, name):
        """Values (unfolded, str) of the header `name`."""
        out = []
        cur = None
        for line in self.head.split(b"\n"):
            if line[:1] in (b" ", b"\t") and cur is not None:
                cur[1] += b" " + line.strip()
                continue
            k, sep, v = line.partition(b":")
            cur = [k.strip().lower(), v.strip()] if sep else None
            if cur:
                out.append(cur)
        return [v.decode("utf-8", "replace") for k, v in out
                if k == name.lower().encode()]

    @property
    def sender(self):
        return self.from_line.split(b" ")[1].decode("utf-8", "replace")

    def __repr__(self):
        return "<Message %r %d bytes>" % (self.from_line, len(self.raw))


def split_mbox(data):
    """Splits mbox bytes into Messages (mboxrd unquoted)."""
    msgs = []
    if not data:
        return msgs
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    cur = None
    for line in lines:
        if line.startswith(b"From "):
            cur = [line, []]
            msgs.append(cur)
            continue
        if cur is None:
            raise ValueError("mbox does not start with a From_ line: %r"
                             % line[:80])
        if QUOTED_FROM.match(line):
            line = line[1:]
        cur[1].append(line)
    out = []
    for from_line, body in msgs:
        # Each message ends with one empty line the writer added.
        if body and body[-1] == b"":
            body = body[:-1]
        out.append(Message(from_line, b"\n".join(body) + b"\n"))
    return out


# ---- raw SMTP dialogues ------------------------------------------------

REPLY_END = re.compile(rb"^(\d{3})(?: .*)?$")
REPLY_MORE = re.compile(rb"^(\d{3})-")


def read_mbox(path):
    """The messages of the mbox file at path ([] when there is none)."""
    try:
        with open(path, "rb") as f:
            return split_mbox(f.read())
    except FileNotFoundError:
        return []


def with_marker(messages, marker):
    if isinstance(marker, str):
        marker = marker.encode()
    return [m for m in messages if marker in m.raw]


def wait_until(pred, timeout, what="condition", step=0.05):
    """pred()'s first true value, polled every step seconds; an
    AssertionError naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


class Closed(Exception):
    """The server closed the connection."""


class Dialog:
    """A raw SMTP client: exact bytes out, replies parsed in."""

    def __init__(self, port, host="127.0.0.1", timeout=None, banner=True):
        self.timeout = timeout or IO_TIMEOUT
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.buf = b""
        self.banner = self.reply() if banner else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply line")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed; pending %r" % self.buf[:200])
            self.buf += chunk
            if len(self.buf) > 1 << 20:
                raise AssertionError("reply line over 1 MiB")
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def reply(self, timeout=None):
        """(code, [text lines]) of one full reply; raises Closed on EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        for _ in range(1000):
            raw = self._line(deadline)
            if not raw.endswith(b"\r"):
                raise AssertionError("reply line without CRLF: %r" % raw)
            line = raw[:-1]
            lines.append(line.decode("utf-8", "replace"))
            if REPLY_MORE.match(line):
                continue
            m = REPLY_END.match(line)
            if not m:
                raise AssertionError("malformed reply line %r" % line)
            return int(m.group(1)), lines
        raise AssertionError("reply of more than 1000 lines")

    def cmd(self, line, timeout=None):
        self.send(line + ("\r\n" if isinstance(line, str) else b"\r\n"))
        return self.reply(timeout)

    def code(self, line, timeout=None):
        return self.cmd(line, timeout)[0]

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def read_until_closed(self, timeout=None):
        """All bytes until EOF; raises socket.timeout if still open."""
        deadline = time.monotonic() + (timeout or self.timeout)
        data = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("connection still open")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk
            if len(data) > 1 << 20:
                raise AssertionError("over 1 MiB before close")

    def ehlo(self, name="client.test"):
        code, lines = self.cmd("EHLO " + name)
        if code != 250:
            raise AssertionError("EHLO: %d %r" % (code, lines))
        return lines

    def send_mail(self, sender, rcpts, body, mail_params="", data_timeout=None):
        """MAIL, RCPT..., DATA, body (bytes, already CRLF and dot-stuffed
        as wanted, without the final dot); returns the reply to the end
        of DATA as (code, lines). Asserts the envelope is accepted."""
        code, lines = self.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))
        if code != 250:
            raise AssertionError("MAIL: %d %r" % (code, lines))
        for r in rcpts:
            code, lines = self.cmd("RCPT TO:<%s>" % r)
            if code != 250:
                raise AssertionError("RCPT %s: %d %r" % (r, code, lines))
        code, lines = self.cmd("DATA")
        if code != 354:
            raise AssertionError("DATA: %d %r" % (code, lines))
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send(body + b".\r\n")
        return self.reply(data_timeout)


def crlf(text):
    """Text with LF line ends -> bytes with CRLF, ending in CRLF."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    if not text.endswith(b"\n"):
        text += b"\n"
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ---- the server ----------------------------------------------------------

DEFAULT_USERS = ("demo", "alice", "bob", "carol")


class StartError(Exception):
    pass


def _listen_inodes(port):
    """Inodes of sockets listening on 127.0.0.1:port (or any address),
    from /proc/net/tcp; None without /proc."""
    inodes = set()
    found = False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != "0A":     # 0A: LISTEN
                continue
            addr, _, hexport = parts[1].partition(":")
            if int(hexport, 16) == port:
                inodes.add(parts[9])
    return inodes if found else None


class Server:
    """postie in a temp dir. Use start()/stop() or as a context manager."""

    def __init__(self, users=DEFAULT_USERS, aliases=None, max_size="1M",
                 max_connections=64, extra="", create_mail_dir=True,
                 conf_text=None, smtp=True):
        """smtp=False: no listener at all (mail comes in by sendmail);
        start() then waits for the "started" log line instead of a port."""
        # Asked for a listener in a build without the SMTP server: the
        # configuration has none (sendmail can still use it); start() skips.
        self.want_smtp = smtp
        self.smtp = smtp and "smtp" in features()
        self.dir = tempfile.mkdtemp(prefix="postie-proto-")
        self.users = list(users)
        self.aliases = aliases
        self.max_size = max_size
        # A small board's build has fewer slots than the default asks.
        self.max_connections = min(max_connections, limit("connections", max_connections))
        self.extra = extra
        self.conf_text = conf_text
        self.proc = None
        self.port = None
        self.log_path = self.path("postie.log")
        self._log = None
        self.write("users", "".join("%s:\n" % u for u in self.users))
        if aliases is not None:
            self.write("aliases", aliases)
        if create_mail_dir:
            os.mkdir(self.path("mail"))

    # files
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        os.chmod(p, mode)
        return p

    def config(self, port):
        return self._no_real_dns(self._config(port))

    @staticmethod
    def _no_real_dns(text):
        """A build with DNS must never ask the machine's resolver: unless the
        test names its own dnsmasq, lookups go to a loopback port where
        nothing listens (they fail as temporary errors)."""
        if "dns" in features() and "dns_server" not in text:
            text += "\ndns_server 127.0.0.1:9\n"
        return text

    def _config(self, port):
        if self.conf_text is not None:
            return self.conf_text.replace("@PORT@", str(port))
        lines = ["# generated by tests/proto/harness.py", "hostname %s" % HOSTNAME]
        if self.smtp:
            lines.append("listen smtp 127.0.0.1:%d" % port)
        # A null client (no "mbox": CONFIG_MAILBOXES off) refuses both.
        mbox = "mbox" in features()
        if mbox:
            lines.append("users ./users")
        if self.aliases is not None:
            lines.append("aliases ./aliases")
        lines += [
            "mail_dir ./mail" if mbox else "# no local mailboxes in this build",
            "spool_dir ./spool",
            "local_domains %s" % " ".join(DOMAINS),
            "max_message_size %s" % self.max_size,
            "max_connections %d" % self.max_connections,
        ]
        return "\n".join(lines) + "\n" + self.extra

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # process
    def start(self):
        last = None
        for _ in range(5):          # a free port can be taken meanwhile
            self.port = free_port()
            text = self.config(self.port)
            if self.want_smtp != self.smtp or "smtp" not in features() and re.search(
                    r"(?m)^\s*listen\s+(smtp|smtps|submission)\s", text):
                self.cleanup(force=True)
                raise unittest.SkipTest("feature 'smtp' not in this build")
            self.write("postie.conf", text)
            try:
                self._spawn()
                return self
            except StartError as e:
                last = e
                if "Address in use" not in str(e) and "in use" not in str(e):
                    break
        self.cleanup(force=True)
        raise last

    def _spawn(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            command("-c", "postie.conf"), cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise StartError("postie exited %s at start: %s"
                                 % (self.proc.returncode, self.log()[-2000:]))
            if self._ready():
                return
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(10)
        raise StartError("postie did not listen within %.0f s: %s"
                         % (START_TIMEOUT, self.log()[-2000:]))

    def _ready(self):
        # The listeners are bound before start-up ends (the spool's tmp
        # files are cleaned, the queue loaded after): ready is both.
        started = re.search(r"postie \S+ started: ", self.log()) is not None
        if self.smtp:
            return started and self._listening()
        return started

    def _listening(self):
        """True once *our* process listens on the port. Another process
        could hold the port we picked; a plain connect would then succeed
        while postie is still starting (a signal sent then is lost)."""
        mine = _listen_inodes(self.port)
        if mine is None:        # no /proc: fall back to a connect
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        if not mine:
            return False
        fd_dir = "/proc/%d/fd" % self.proc.pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    link = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in mine:
                    return True
        except OSError:
            return False
        return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code
        (negative for a signal, None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout or 10 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10 * SLOW)
                rc = None
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def sanitizer_report(self):
        log = self.log()
        for mark in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            if mark in log:
                return log[log.index(mark) - 200:][:3000]
        return None

    def cleanup(self, force=False):
        if self.proc is not None:
            self.stop()
        if KEEP and not force:
            print("kept", self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()

    def reload(self, timeout=None):
        """SIGHUP; waits until the log shows the outcome. True if reloaded."""
        before = self.log()
        n_ok = before.count("reloaded ")
        n_bad = before.count("reload failed")
        self.signal(signal.SIGHUP)
        deadline = time.monotonic() + (timeout or 10 * SLOW)
        while time.monotonic() < deadline:
            log = self.log()
            if log.count("reloaded ") > n_ok:
                return True
            if log.count("reload failed") > n_bad:
                return False
            time.sleep(0.05)
        raise AssertionError("no reload outcome in the log: %s" % self.log()[-1000:])

    # clients
    def dialog(self, **kw):
        return Dialog(self.port, **kw)

    def smtplib(self):
        import smtplib
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test",
                            timeout=IO_TIMEOUT)

    # mailboxes
    def mbox_bytes(self, user):
        try:
            with open(self.path("mail", user), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def mbox(self, user):
        return split_mbox(self.mbox_bytes(user))

    def find(self, user, marker):
        return with_marker(self.mbox(user), marker)

    def anywhere(self, marker):
        """Names of files under the temp dir (but the log) holding marker."""
        if isinstance(marker, str):
            marker = marker.encode()
        hits = []
        for root, _, files in os.walk(self.dir):
            for name in files:
                p = os.path.join(root, name)
                if p == self.log_path:
                    continue
                try:
                    # Regular files only: a FIFO would block the open.
                    if not stat.S_ISREG(os.lstat(p).st_mode):
                        continue
                    with open(p, "rb") as f:
                        if marker in f.read():
                            hits.append(os.path.relpath(p, self.dir))
                except OSError:
                    pass
        return hits

    def spool_tmp(self):
        try:
            return sorted(os.listdir(self.path("spool", "tmp")))
        except FileNotFoundError:
            return []


class ServerTest(TestCase):
    """One server per class; set `server_args` to change its setup.
    tearDownClass checks that it stops with 0 and no sanitizer report."""

    server_args = {}
    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = Server(**cls.server_args).start()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        cls.server = None
        if srv is not None:
            rc = srv.stop()
            report = srv.sanitizer_report()
            log_tail = srv.log()[-1500:]
            srv.cleanup()
            if rc != 0:
                raise AssertionError("postie exited with %r at SIGTERM; log:\n%s"
                                     % (rc, log_tail))
            if report:
                raise AssertionError("sanitizer report:\n" + report)
        super().tearDownClass()

    def assertServing(self, msg=""):
        """The server still answers a full greeting and EHLO."""
        self.assertTrue(self.server.running(), "postie died " + msg +
                        self.server.log()[-1500:])
        with self.server.dialog() as d:
            self.assertEqual(d.banner[0], 220)
            d.ehlo()
            self.assertEqual(d.code("QUIT"), 221)

    def deliver(self, rcpts, body, sender="sender@example.net", params=""):
        """Sends with a raw dialogue; returns the end-of-DATA reply."""
        with self.server.dialog() as d:
            d.ehlo()
            r = d.send_mail(sender, rcpts, body, params)
            d.cmd("QUIT")
            return r
