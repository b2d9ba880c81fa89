"""A scriptable SMTP peer for the relay tests (Python 3 stdlib only).

A Peer listens on 127.0.0.x:port in a thread and plays remote MX hosts
and smarthosts. Each connection follows a script, a dict:

  greeting   reply to the connection ("220 peer.test ESMTP")
  ehlo       extension lines offered after EHLO (["PIPELINING",
             "8BITMIME", "SIZE 10000000"]); STARTTLS and AUTH are added
             when the script says so
  EHLO HELO MAIL DATA DOT QUIT RSET NOOP
             the reply to that command (DOT: the end of the data)
  RCPT       one reply, a list (by RCPT index, last repeats) or a dict
             {address: reply} (others get "250 2.1.5 ok")
  starttls   an ssl.SSLContext (server side): STARTTLS is offered
  implicit   an ssl.SSLContext: TLS from the first byte (smtps)
  auth       (user, password, "PLAIN LOGIN"): AUTH offered (after TLS
             when starttls is set) and checked; MAIL before it gets 530
  require_tls  MAIL before STARTTLS gets 530
  hang       True: accept and never say anything; or a command name
             (e.g. "DOT"): go silent after receiving it
  close_after  a command name: close without answering it
  bytewise   send every reply one byte per write

A reply is a str ("250 ok", lines separated by "\\n", each sent with
CRLF) or bytes (sent exactly as they are: garbage, bare LF, over-long).

scripts are given per connection: set(s0, s1, ...) uses s0 for the first
connection, s1 for the second, the last one for all later ones.

Everything is recorded: every connection's commands (conns[i].commands)
and every transaction that reached the end of DATA (transactions: sender,
rcpts accepted, data after dot-unstuffing with CRLF, tls, auth user,
reply code given). Bounded: sockets have timeouts, lines at most
MAX_LINE, data at most MAX_DATA, at most max_conns connections at once.
"""
import base64
import socket
import ssl
import threading
import time

MAX_LINE = 8192
MAX_DATA = 4 << 20
MAX_RECORDS = 20000         # connections recorded (then refused)
IO_TIMEOUT = 20.0

DEFAULT = {
    "greeting": "220 peer.test ESMTP test peer",
    "ehlo": ["PIPELINING", "8BITMIME", "SIZE 10000000"],
    "EHLO": None,
    "HELO": "250 peer.test",
    "MAIL": "250 2.1.0 ok",
    "RCPT": "250 2.1.5 ok",
    "DATA": "354 go ahead",
    "DOT": "250 2.0.0 queued",
    "QUIT": "221 2.0.0 bye",
    "RSET": "250 2.0.0 ok",
    "NOOP": "250 2.0.0 ok",
}


class Transaction:
    def __init__(self, conn, sender, rcpts, data, tls, auth, code, mail_line):
        self.conn = conn
        self.sender = sender
        self.rcpts = rcpts
        self.data = data
        self.tls = tls
        self.auth = auth
        self.code = code            # what the peer answered at the dot
        self.mail_line = mail_line

    @property
    def accepted(self):
        return 200 <= self.code < 300

    def __repr__(self):
        return "<Transaction %s -> %s %d bytes code %d>" % (
            self.sender, self.rcpts, len(self.data), self.code)


class ConnRecord:
    def __init__(self, index, peer_addr):
        self.index = index
        self.peer_addr = peer_addr
        self.commands = []          # str, as received (AUTH data masked)
        self.tls = False
        self.auth = None
        self.pre_tls_leftover = b""
        self.error = None


class _Closed(Exception):
    pass


def _code(reply):
    if isinstance(reply, bytes):
        reply = reply.decode("latin-1")
    last = reply.rstrip("\r\n").split("\n")[-1]
    try:
        return int(last[:3])
    except ValueError:
        return 0


class Peer:
    def __init__(self, host, port=0, max_conns=64, timeout=IO_TIMEOUT):
        self.host = host
        self.port = port
        self.max_conns = max_conns
        self.timeout = timeout
        self.lock = threading.Lock()
        self.scripts = [{}]
        self.conns = []
        self.transactions = []
        self.stopping = threading.Event()
        self.sock = None
        self.thread = None
        self.workers = []
        self.live = set()

    # ---- control ------------------------------------------------------

    def listen(self):
        """Binds and listens (raises OSError if the address is taken)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self.port))
            s.listen(16)
        except OSError:
            s.close()
            raise
        self.port = s.getsockname()[1]
        s.settimeout(0.2)
        self.sock = s
        return self

    def start(self):
        if self.sock is None:
            self.listen()
        self.stopping.clear()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name="peer-%s" % self.host)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.thread:
            self.thread.join(5)
            self.thread = None
        if self.sock:
            self.sock.close()
            self.sock = None
        with self.lock:
            live = list(self.live)
        for s in live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for w in self.workers:
            w.join(5)
        self.workers = []

    def set(self, *scripts):
        """New scripts, records cleared. The scripts are for new
        connections: one still open (a client keeping it for its next
        message) is shut down."""
        with self.lock:
            self.scripts = list(scripts) or [{}]
            self.conns = []
            self.transactions = []
            live = list(self.live)
        for s in live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def script_for(self, index):
        s = dict(DEFAULT)
        s.update(self.scripts[min(index, len(self.scripts) - 1)])
        return s

    def accepted(self):
        """Transactions the peer answered 2xx at the dot."""
        with self.lock:
            return [t for t in self.transactions if t.accepted]

    def find(self, marker):
        if isinstance(marker, str):
            marker = marker.encode()
        return [t for t in self.accepted() if marker in t.data]

    def nconns(self):
        with self.lock:
            return len(self.conns)

    def commands(self):
        with self.lock:
            return [c for r in self.conns for c in r.commands]

    # ---- serving --------------------------------------------------------

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                c, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.workers = [w for w in self.workers if w.is_alive()]
                if len(self.live) >= self.max_conns or \
                        len(self.conns) >= MAX_RECORDS:
                    c.close()
                    continue
                rec = ConnRecord(len(self.conns), addr)
                self.conns.append(rec)
                self.live.add(c)
                script = self.script_for(rec.index)
            w = threading.Thread(target=self._serve, args=(c, rec, script),
                                 daemon=True)
            self.workers.append(w)
            w.start()

    def _serve(self, sock, rec, script):
        sess = _Session(self, sock, rec, script)
        try:
            sess.run()
        except (_Closed, OSError, ssl.SSLError, ValueError) as e:
            rec.error = repr(e)
        finally:
            with self.lock:
                self.live.discard(sess.sock)
                self.live.discard(sock)
            try:
                sess.sock.close()
            except OSError:
                pass


class _Session:
    def __init__(self, peer, sock, rec, script):
        self.peer = peer
        self.sock = sock
        self.rec = rec
        self.s = script
        self.buf = b""
        self.sock.settimeout(peer.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # io
    def send(self, reply):
        if reply is None:
            return
        if isinstance(reply, str):
            data = b"".join(l.encode("utf-8") + b"\r\n"
                            for l in reply.split("\n"))
        else:
            data = reply
        if self.s.get("bytewise"):
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                time.sleep(0.001)
        else:
            self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            if self.peer.stopping.is_set():
                raise _Closed("stopping")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed("client closed")
            self.buf += chunk
            if len(self.buf) > MAX_LINE and b"\n" not in self.buf:
                raise _Closed("line too long")
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def hang(self):
        # Silent until the peer stops or the bound passes; reads are
        # drained so that the client's writes never block.
        deadline = time.monotonic() + 120
        self.sock.settimeout(0.2)
        while not self.peer.stopping.is_set() and time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return
            except socket.timeout:
                continue
        raise _Closed("hung")

    def wrap(self, ctx):
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        with self.peer.lock:
            self.peer.live.add(self.sock)
        self.sock.settimeout(self.peer.timeout)
        self.rec.tls = True

    # dialogue
    def run(self):
        s = self.s
        if s.get("hang") is True:
            self.hang()
        if s.get("implicit"):
            self.wrap(s["implicit"])
        self.send(s["greeting"])
        sender, rcpts, mail_line, nrcpt = None, [], None, 0
        for _ in range(1000):
            raw = self.line()
            text = raw.decode("utf-8", "replace")
            verb = text.split(" ", 1)[0].upper()
            shown = text
            if verb == "AUTH" and len(text.split()) > 2:
                shown = " ".join(text.split()[:2]) + " ****"
            self.rec.commands.append(shown)
            if s.get("close_after") == verb:
                raise _Closed("close_after " + verb)
            if s.get("hang") == verb:
                self.hang()
            if verb in ("EHLO", "HELO"):
                self.send(self.ehlo_reply(verb))
            elif verb == "STARTTLS" and s.get("starttls") and not self.rec.tls:
                self.send(s.get("STARTTLS", "220 2.0.0 ready"))
                if self.buf:
                    self.rec.pre_tls_leftover = self.buf
                    self.buf = b""
                self.wrap(s["starttls"])
            elif verb == "AUTH" and s.get("auth"):
                self.auth(text)
            elif verb == "MAIL":
                if s.get("require_tls") and not self.rec.tls:
                    self.send("530 5.7.0 must issue STARTTLS first")
                    continue
                if s.get("auth") and not self.rec.auth:
                    self.send("530 5.7.0 authentication required")
                    continue
                reply = s["MAIL"]
                self.send(reply)
                if 200 <= _code(reply) < 300:
                    sender = text[10:].split(">", 1)[0].lstrip("<")
                    mail_line = text
                    rcpts, nrcpt = [], 0
            elif verb == "RCPT":
                addr = text[8:].split(">", 1)[0].lstrip("<")
                reply = self.rcpt_reply(nrcpt, addr)
                nrcpt += 1
                self.send(reply)
                if sender is not None and 200 <= _code(reply) < 300:
                    rcpts.append(addr)
            elif verb == "DATA":
                if sender is None or not rcpts:
                    self.send("503 5.5.1 no valid recipients")
                    continue
                reply = s["DATA"]
                self.send(reply)
                if _code(reply) != 354:
                    continue
                data = self.data()
                if s.get("close_after") == "DOT":
                    raise _Closed("close_after DOT")
                if s.get("hang") == "DOT":
                    self.hang()
                reply = s["DOT"]
                with self.peer.lock:
                    self.peer.transactions.append(Transaction(
                        self.rec.index, sender, list(rcpts), data,
                        self.rec.tls, self.rec.auth, _code(reply), mail_line))
                self.send(reply)
                sender, rcpts, nrcpt = None, [], 0
            elif verb == "QUIT":
                self.send(s["QUIT"])
                return
            elif verb in ("RSET", "NOOP"):
                if verb == "RSET":
                    sender, rcpts, nrcpt = None, [], 0
                self.send(s[verb])
            else:
                self.send("502 5.5.2 not implemented")
        raise _Closed("too many commands")

    def ehlo_reply(self, verb):
        s = self.s
        if s.get(verb) is not None:
            return s[verb]
        if verb == "HELO":
            return s["HELO"]
        ext = list(s["ehlo"])
        if s.get("starttls") and not self.rec.tls:
            ext.append("STARTTLS")
        if s.get("auth") and (self.rec.tls or not s.get("starttls")):
            ext.append("AUTH " + s["auth"][2])
        lines = ["250-peer.test hello"] + ["250-" + e for e in ext]
        lines[-1] = "250 " + lines[-1][4:]
        return "\n".join(lines)

    def rcpt_reply(self, i, addr):
        r = self.s["RCPT"]
        if isinstance(r, dict):
            return r.get(addr, "250 2.1.5 ok")
        if isinstance(r, list):
            return r[min(i, len(r) - 1)]
        return r

    def data(self):
        out = []
        size = 0
        while True:
            line = self._raw_line()
            if line == b".\r\n":
                return b"".join(out)
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > MAX_DATA:
                raise _Closed("data too big")
            out.append(line)

    def _raw_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed("closed in DATA")
            self.buf += chunk
            if len(self.buf) > MAX_DATA:
                raise _Closed("data line too long")
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def auth(self, text):
        user, pw, mechs = self.s["auth"]
        parts = text.split()
        mech = parts[1].upper() if len(parts) > 1 else ""
        if mech not in mechs.upper().split():
            self.send("504 5.5.4 mechanism not offered")
            return
        if mech == "PLAIN":
            if len(parts) > 2:
                resp = parts[2]
            else:
                self.send("334 ")
                resp = self.line().decode("ascii", "replace")
            try:
                fields = base64.b64decode(resp, validate=True).split(b"\0")
            except ValueError:
                fields = []
            ok = len(fields) == 3 and fields[1].decode("utf-8", "replace") == user \
                and fields[2].decode("utf-8", "replace") == pw
        else:
            self.send("334 VXNlcm5hbWU6")
            u = self.line()
            self.send("334 UGFzc3dvcmQ6")
            p = self.line()
            try:
                ok = base64.b64decode(u, validate=True).decode() == user and \
                    base64.b64decode(p, validate=True).decode() == pw
            except ValueError:
                ok = False
        if ok:
            self.rec.auth = user
            self.send("235 2.7.0 authenticated")
        else:
            self.send("535 5.7.8 authentication failed")
