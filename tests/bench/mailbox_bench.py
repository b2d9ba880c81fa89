#!/usr/bin/python3
"""Helpers for tests/bench/mailbox_bench.sh (Python 3 standard library only).

  mailbox_bench.py freeport
      Prints a free TCP port on 127.0.0.1 (bind to port 0).
  mailbox_bench.py genmbox FILE COUNT
      Writes an mboxrd file of COUNT messages of about 2 KB (1.5-2.5 KB,
      deterministic): a "From " line, Date/From/To/Subject/Message-ID
      headers, 76-column body lines; every 50th message has a body line
      that starts with "From " (quoted ">From " in the file). Prints the
      size in bytes.
  mailbox_bench.py pop3 PORT USER PASSWORD COUNT [--sample] PID...
      One timed POP3 session with poplib against 127.0.0.1:PORT: connect
      + greeting + USER/PASS + STAT, then UIDL, then RETR of every message,
      then QUIT (never DELE). The server is PID... and all their live
      descendants (/proc/*/stat ppid). With --sample a thread samples their
      summed VmRSS and Pss every 50 ms; without, only the client runs
      during the session (the timed runs). Prints key=value lines:
        login, uidl, retr   seconds (time.perf_counter)
        msgs, octets        from STAT; bytes   octets read by all RETRs
        rss_idle_kb, pss_idle_kb   before connecting
        rss_peak_kb, pss_peak_kb   largest sum seen during the session
        pids_peak            most processes seen at once (--sample)
        server_cpu           seconds of CPU of the server's processes over
                             the session: utime+stime+cutime+cstime summed,
                             read after the processes that served it were
                             reaped (their CPU is then in the parent's
                             cutime/cstime; waits at most 2 s), in ticks
        client_cpu           seconds of CPU of this client over the session
      Exits 1 when STAT does not show COUNT messages or a command fails.
  mailbox_bench.py imap PORT USER PASSWORD COUNT WORD [--sample] PID...
      The same for IMAP with imaplib: connect + LOGIN (login), SELECT
      INBOX (select), FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)
      (fetch_meta), FETCH 1:* (BODY.PEEK[]) (fetch_body: every message,
      \Seen untouched), SEARCH TEXT "WORD" (search), LOGOUT; hits= the
      messages found, bytes= the bytes of all bodies. Exits 1 unless every
      message was listed, described and fetched.
  mailbox_bench.py idle PORT USER PASSWORD COUNT plain|tls SECONDS
      COUNT IMAP sessions (TLS 1.2 implicit for "tls", no certificate
      check), each LOGIN, SELECT INBOX, IDLE; prints "ready N" (N sessions
      idling) and holds them until stdin is closed or SECONDS pass, then
      DONE and LOGOUT.
  mailbox_bench.py mem PID...
      Prints rss_kb= pss_kb= pids= for PID... and their descendants.
"""
import imaplib
import os
import poplib
import random
import socket
import ssl
import sys
import threading
import time

from benchlib import wait_released


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


WORDS = ("mail router flash index session message mailbox server queue "
         "loopback header body delivery storage network embedded small "
         "postie dovecot benchmark retrieve uidl stat login").split()


def genmbox(path, count):
    rnd = random.Random(20261122)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(1, count + 1):
            day = 1 + i % 28
            hdr = ("From sender%d@test.lan Sun Nov %2d 10:%02d:%02d 2026\n"
                   "Date: Sun, %d Nov 2026 10:%02d:%02d +0000\n"
                   "From: Sender %d <sender%d@test.lan>\n"
                   "To: demo@test.lan\n"
                   "Subject: benchmark message %d\n"
                   "Message-ID: <mbench.%d@test.lan>\n"
                   "\n" % (i % 97, day, i % 60, (i * 7) % 60, day, i % 60,
                           (i * 7) % 60, i % 97, i % 97, i, i))
            target = rnd.randint(1500, 2500) - len(hdr)
            body = []
            n = 0
            while n < target:
                words = []
                while sum(len(w) + 1 for w in words) < 70:
                    words.append(rnd.choice(WORDS))
                line = " ".join(words)[:76] + "\n"
                body.append(line)
                n += len(line)
            if i % 50 == 0:
                # mboxrd: a body line starting with "From " is stored quoted.
                body.insert(1, ">From the quoted line of message %d\n" % i)
            f.write(hdr.encode() + "".join(body).encode() + b"\n")
    os.replace(tmp, path)
    print(os.path.getsize(path))


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def tree(roots):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        s = read("/proc/%s/stat" % d)
        if s is None:
            continue
        f = s[s.rindex(")") + 2:].split()
        children.setdefault(int(f[1]), []).append(int(d))
    seen, todo = [], list(roots)
    while todo and len(seen) < 10000:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children.get(p, []))
    return seen


def field_kb(text, key):
    for line in (text or "").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def mem(roots):
    rss = pss = n = 0
    for p in tree(roots):
        st = read("/proc/%d/status" % p)
        if st is None:
            continue
        n += 1
        rss += field_kb(st, "VmRSS")
        pss += field_kb(read("/proc/%d/smaps_rollup" % p), "Pss")
    return rss, pss, n


class Sampler(threading.Thread):
    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots = roots
        self.stop = threading.Event()
        self.rss = self.pss = self.n = 0

    def run(self):
        while not self.stop.is_set():
            r, p, n = mem(self.roots)
            self.rss, self.pss = max(self.rss, r), max(self.pss, p)
            self.n = max(self.n, n)
            self.stop.wait(0.05)


HZ = os.sysconf("SC_CLK_TCK")


def cpu_ticks(roots):
    t = 0
    for p in tree(roots):
        s = read("/proc/%d/stat" % p)
        if s is None:
            continue
        f = s[s.rindex(")") + 2:].split()
        t += sum(int(x) for x in f[11:15])
    return t


def measured(roots, sample, steps):
    """Runs steps() (which returns (ok, [(key, value)...])) between two
    readings of the server's CPU, with the memory sampler when sample, and
    prints every key=value line of the session (see the module doc)."""
    rss0, pss0, _ = mem(roots) if sample else (0, 0, 0)
    sm = Sampler(roots)
    if sample:
        sm.start()
    npids0 = len(tree(roots))
    cpu0 = cpu_ticks(roots)
    cc0 = time.process_time()
    try:
        ok, out = steps()
    finally:
        sm.stop.set()
        if sample:
            sm.join(5)
    cc1 = time.process_time()
    end = time.monotonic() + 2
    while len(tree(roots)) > npids0 and time.monotonic() < end:
        time.sleep(0.02)
    cpu1 = cpu_ticks(roots)
    for k, v in out:
        print("%s=%s" % (k, v))
    print("rss_idle_kb=%d\npss_idle_kb=%d" % (rss0, pss0))
    print("rss_peak_kb=%d\npss_peak_kb=%d\npids_peak=%d" % (sm.rss, sm.pss, sm.n))
    print("server_cpu=%.3f\nclient_cpu=%.3f" % ((cpu1 - cpu0) / HZ, cc1 - cc0))
    sys.exit(0 if ok else 1)


def pop3(port, user, password, count):
    t0 = time.perf_counter()
    c = poplib.POP3("127.0.0.1", port, timeout=60)
    c.user(user)
    c.pass_(password)
    msgs, octets = c.stat()
    t1 = time.perf_counter()
    _, lines, _ = c.uidl()
    t2 = time.perf_counter()
    nbytes = 0
    for i in range(1, msgs + 1):
        _, body, n = c.retr(i)
        nbytes += n
    t3 = time.perf_counter()
    c.quit()
    ok = True
    if msgs != count or len(lines) != count:
        print("pop3: STAT %d, UIDL %d lines, expected %d" %
              (msgs, len(lines), count), file=sys.stderr)
        ok = False
    return ok, [("login", "%.6f" % (t1 - t0)), ("uidl", "%.6f" % (t2 - t1)),
                ("retr", "%.6f" % (t3 - t2)), ("msgs", msgs),
                ("octets", octets), ("bytes", nbytes)]


def imap_ok(c, typ, data, what):
    if typ != "OK":
        raise imaplib.IMAP4.error("%s: %s %r" % (what, typ, data))
    return data


def imap(port, user, password, count, word):
    t0 = time.perf_counter()
    c = imaplib.IMAP4("127.0.0.1", port, timeout=120)
    imap_ok(c, *c.login(user, password), "LOGIN")
    t1 = time.perf_counter()
    # SELECT (not imaplib's select(), which refuses a [READ-ONLY] answer:
    # Dovecot, given a mbox it cannot write, opens it read-only).
    c.untagged_responses = {}
    typ, dat = c._simple_command("SELECT", "INBOX")
    data = imap_ok(c, *c._untagged_response(typ, dat, "EXISTS"), "SELECT")
    c.state = "SELECTED"
    c.is_readonly = "READ-ONLY" in c.untagged_responses
    t2 = time.perf_counter()
    exists = int(data[0])
    meta = imap_ok(c, *c.fetch("1:*", "(FLAGS ENVELOPE BODYSTRUCTURE)"), "FETCH")
    t3 = time.perf_counter()
    bodies = imap_ok(c, *c.fetch("1:*", "(BODY.PEEK[])"), "FETCH BODY")
    t4 = time.perf_counter()
    hits = imap_ok(c, *c.search(None, "TEXT", '"%s"' % word), "SEARCH")
    t5 = time.perf_counter()
    c.logout()
    nmeta = sum(1 for x in meta if isinstance(x, bytes) and b"ENVELOPE" in x
                or isinstance(x, tuple) and b"ENVELOPE" in x[0])
    parts = [x for x in bodies if isinstance(x, tuple)]
    nbytes = sum(len(x[1]) for x in parts)
    nhits = len(hits[0].split()) if hits and hits[0] else 0
    ok = exists == count and len(parts) == count and nmeta == count
    if not ok:
        print("imap: EXISTS %d, %d ENVELOPEs, %d bodies, expected %d" %
              (exists, nmeta, len(parts), count), file=sys.stderr)
    return ok, [("login", "%.6f" % (t1 - t0)), ("select", "%.6f" % (t2 - t1)),
                ("fetch_meta", "%.6f" % (t3 - t2)),
                ("fetch_body", "%.6f" % (t4 - t3)),
                ("search", "%.6f" % (t5 - t4)), ("msgs", exists),
                ("bytes", nbytes), ("hits", nhits)]


def idle_one(port, user, password, ctx):
    """LOGIN, SELECT INBOX, IDLE on a new connection: the socket once the
    server said "+" to IDLE, or None."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    s = ctx.wrap_socket(raw) if ctx else raw
    buf = b""

    def until(tag):
        nonlocal buf
        while True:
            i = buf.find(b"\r\n")
            while i < 0:
                d = s.recv(65536)
                if not d:
                    raise OSError("connection closed")
                buf += d
                i = buf.find(b"\r\n")
            line, buf = buf[:i], buf[i + 2:]
            if line.startswith(tag):
                return line
    until(b"* ")
    s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), password.encode()))
    if b"a OK" not in until(b"a "):
        return None
    s.sendall(b"b SELECT INBOX\r\n")
    if b"b OK" not in until(b"b "):
        return None
    s.sendall(b"c IDLE\r\n")
    until(b"+")
    return s


def idle(port, user, password, count, tls, seconds):
    """count sessions in IDLE; prints "ready N", holds them until stdin is
    closed or seconds pass, then DONE + LOGOUT each."""
    deadline = time.monotonic() + seconds
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    socks = []
    for i in range(count):
        if time.monotonic() > deadline:
            break
        try:
            s = idle_one(port, user, password, ctx)
        except (OSError, ssl.SSLError) as e:
            print("idle session %d: %s" % (i + 1, e), file=sys.stderr)
            break
        if s is None:
            print("idle session %d refused" % (i + 1), file=sys.stderr)
            break
        socks.append(s)
    print("ready %d" % len(socks), flush=True)
    wait_released(deadline)
    for s in socks:
        try:
            s.sendall(b"DONE\r\nz LOGOUT\r\n")
        except OSError:
            pass
    time.sleep(0.5)
    for s in socks:
        s.close()


def main():
    a = sys.argv[1:]
    if a == ["freeport"]:
        freeport()
    elif a[:1] == ["genmbox"] and len(a) == 3:
        genmbox(a[1], int(a[2]))
    elif a[:1] in (["pop3"], ["imap"]) and len(a) >= 6:
        # pop3 PORT USER PASS COUNT ..., imap PORT USER PASS COUNT WORD ...
        rest = a[5:] if a[0] == "pop3" else a[6:]
        sample = rest[:1] == ["--sample"]
        pids = [int(x) for x in rest[sample:]]
        port, user, pw, count = int(a[1]), a[2], a[3], int(a[4])
        if a[0] == "pop3":
            steps = lambda: pop3(port, user, pw, count)
        else:
            steps = lambda: imap(port, user, pw, count, a[5])
        try:
            measured(pids, sample, steps)
        except (OSError, poplib.error_proto, imaplib.IMAP4.error) as e:
            print("%s: %s" % (a[0], e), file=sys.stderr)
            sys.exit(1)
    elif a[:1] == ["idle"] and len(a) == 7 and a[5] in ("plain", "tls"):
        idle(int(a[1]), a[2], a[3], int(a[4]), a[5] == "tls", float(a[6]))
    elif a[:1] == ["mem"] and len(a) >= 2:
        r, p, n = mem([int(x) for x in a[1:]])
        print("rss_kb=%d\npss_kb=%d\npids=%d" % (r, p, n))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
