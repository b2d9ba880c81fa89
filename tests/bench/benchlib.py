#!/usr/bin/python3
"""Helpers for tests/bench/bench.sh (Python 3 standard library only).

  benchlib.py freeport [ADDR]
      Prints a free TCP port on ADDR (default 127.0.0.1; bind to port 0).
  benchlib.py snap PID...
      Prints key=value totals over the given processes and all their live
      descendants (found through the ppid field of /proc/*/stat):
        pids     number of processes seen
        pidset   comma-separated pid list (to find exited processes later)
        cpu      utime+stime+cutime+cstime in clock ticks; cutime/cstime
                 hold the CPU of children that exited and were reaped, so
                 sum(cpu) stays exact when short-lived processes come and go
        cpu_ns   the same in nanoseconds: run time from /proc/PID/schedstat
                 (exact) plus cutime+cstime converted from ticks
        wbytes   write_bytes - cancelled_write_bytes from /proc/PID/io
                 (bytes this process caused to be written to storage; lost
                 when a process exits, see pidset)
        rss_kb   sum of VmRSS (shared pages counted once per process)
        pss_kb   sum of Pss from /proc/PID/smaps_rollup (shared pages split)
        ctxt     sum of voluntary+nonvoluntary context switches
        ctxtset  the same per process, "pid:n,pid:n,..."
  benchlib.py hold PORT COUNT SECONDS [tls]
      Opens COUNT TCP connections to 127.0.0.1:PORT, reads each greeting
      line, prints "ready N" (N connections greeted) and keeps them idle
      until stdin is closed or SECONDS pass, then closes them. With "tls"
      each connection is implicit TLS (TLS 1.2, no certificate check), one
      after the other: connect, handshake, greeting.
  benchlib.py tlsrate PORT SECONDS WORKERS new|reuse
      TLS 1.2 handshakes to 127.0.0.1:PORT (implicit TLS) for SECONDS in
      WORKERS processes: connect, handshake, read the 220 greeting, close.
      "new": a fresh SSLContext and no session per connection (a full
      handshake each time); "reuse": each worker resumes the session of its
      first connection (session ID or ticket, whatever the server gives).
      Prints n= (handshakes with a greeting), resumed=, fail=, secs=.
  benchlib.py submit PORT N LEN SESSIONS USER PASSWORD FROM TO
      Sends N messages of about LEN bytes over SESSIONS parallel workers,
      one message per session: EHLO, STARTTLS (TLS 1.2, full handshake),
      EHLO, AUTH PLAIN (skipped when USER is "-"), MAIL, RCPT, DATA, QUIT.
      Exits 1 if any message was refused.
"""
import os
import select
import smtplib
import socket
import ssl
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def stat_fields(pid):
    s = read("/proc/%d/stat" % pid)
    if s is None:
        return None
    # "pid (comm) state ppid ..." - comm may hold spaces and parentheses.
    return s[s.rindex(")") + 2:].split()


def descendants(roots):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        f = stat_fields(int(d))
        if f:
            children.setdefault(int(f[1]), []).append(int(d))
    seen, todo = [], list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children.get(p, []))
    return seen


def kv(text, sep=":"):
    out = {}
    for line in (text or "").splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = v.strip()
    return out


def snap(roots):
    tot = dict(pids=0, cpu=0, cpu_ns=0, wbytes=0, rss_kb=0, pss_kb=0, ctxt=0)
    pids, ctxts = [], []
    for p in descendants(roots):
        f = stat_fields(p)
        if f is None:
            continue
        tot["pids"] += 1
        pids.append(p)
        # After "pid (comm) ": utime stime cutime cstime are fields 14-17
        # of stat(5), i.e. indexes 11..14 here.
        tot["cpu"] += sum(int(x) for x in f[11:15])
        reaped_ns = sum(int(x) for x in f[13:15]) * 10**9 // HZ
        ss = read("/proc/%d/schedstat" % p)
        if ss:
            tot["cpu_ns"] += int(ss.split()[0]) + reaped_ns
        else:
            tot["cpu_ns"] += sum(int(x) for x in f[11:15]) * 10**9 // HZ
        io = kv(read("/proc/%d/io" % p))
        if io:
            tot["wbytes"] += int(io.get("write_bytes", 0)) - \
                int(io.get("cancelled_write_bytes", 0))
        st = kv(read("/proc/%d/status" % p))
        tot["rss_kb"] += int(st.get("VmRSS", "0 kB").split()[0])
        n = int(st.get("voluntary_ctxt_switches", 0)) + \
            int(st.get("nonvoluntary_ctxt_switches", 0))
        tot["ctxt"] += n
        ctxts.append("%d:%d" % (p, n))
        sm = kv(read("/proc/%d/smaps_rollup" % p))
        tot["pss_kb"] += int(sm.get("Pss", "0 kB").split()[0])
    for k, v in tot.items():
        print("%s=%d" % (k, v))
    print("pidset=%s" % ",".join(str(p) for p in sorted(pids)))
    print("ctxtset=%s" % ",".join(ctxts))
    print("hz=%d" % HZ)


def client_ctx():
    # What postie speaks (TLS 1.2 only), for both servers; the servers'
    # certificates are self-signed test certificates, so no verification.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_greet(port, ctx, session=None, timeout=10):
    """connect, handshake, read the 220 line: the SSLSocket or None."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, session=session)
    except (OSError, ValueError):
        raw.close()
        return None
    buf = b""
    try:
        while b"\n" not in buf and len(buf) < 4096:
            d = s.recv(512)
            if not d:
                break
            buf += d
    except OSError:
        pass
    if not buf.startswith(b"220"):
        s.close()
        return None
    return s


def hold_tls(port, count, deadline):
    socks = []
    ctx = client_ctx()
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            s = tls_greet(port, ctx)
        except OSError as e:
            print("connect failed: %s" % e, file=sys.stderr)
            break
        if s is None:
            print("TLS connection %d: no greeting" % (len(socks) + 1),
                  file=sys.stderr)
            break
        socks.append(s)
    return socks, len(socks)


def tlsrate_worker(port, deadline, mode, wfd):
    n = resumed = fail = 0
    ctx = client_ctx()
    session = None
    while time.monotonic() < deadline and fail < 100:
        if mode == "new":
            ctx = client_ctx()
        try:
            s = tls_greet(port, ctx, session)
        except OSError:
            s = None
        if s is None:
            fail += 1
            time.sleep(0.01)
            continue
        n += 1
        if s.session_reused:
            resumed += 1
        elif mode == "reuse":
            session = s.session
        s.close()
    os.write(wfd, ("%d %d %d\n" % (n, resumed, fail)).encode())
    os.close(wfd)


def tlsrate(port, seconds, workers, mode):
    t0 = time.monotonic()
    deadline = t0 + seconds
    kids = []
    for _ in range(workers):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                tlsrate_worker(port, deadline, mode, w)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(w)
        kids.append((pid, r))
    tot = [0, 0, 0]
    for pid, r in kids:
        data = b""
        while True:
            d = os.read(r, 256)
            if not d:
                break
            data += d
        os.close(r)
        os.waitpid(pid, 0)
        for i, v in enumerate(data.split()[:3]):
            tot[i] += int(v)
    secs = time.monotonic() - t0
    print("n=%d\nresumed=%d\nfail=%d\nsecs=%.3f" % (tot[0], tot[1], tot[2], secs))


def submit_one(port, msg, user, password, frm, to):
    with smtplib.SMTP("127.0.0.1", port, "client.test.lan", timeout=30) as c:
        c.ehlo()
        c.starttls(context=client_ctx())
        c.ehlo()
        if user != "-":
            c.login(user, password)
        c.sendmail(frm, [to], msg)


def submit(port, n, length, sessions, user, password, frm, to):
    line = b"X" * 76 + b"\r\n"
    body = line * max(1, length // len(line))
    msg = (b"From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n\r\n" %
           (frm.encode(), to.encode())) + body
    kids = []
    for w in range(sessions):
        count = n // sessions + (1 if w < n % sessions else 0)
        pid = os.fork()
        if pid == 0:
            bad = 0
            for _ in range(count):
                try:
                    submit_one(port, msg, user, password, frm, to)
                except (OSError, smtplib.SMTPException) as e:
                    bad += 1
                    if bad <= 3:
                        print("submit: %s" % e, file=sys.stderr)
            os._exit(1 if bad else 0)
        kids.append(pid)
    rc = 0
    for pid in kids:
        _, st = os.waitpid(pid, 0)
        if st:
            rc = 1
    sys.exit(rc)


def wait_released(deadline):
    """Returns when stdin is closed or at deadline (time.monotonic)."""
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [],
                                max(0, deadline - time.monotonic()))
        if r and not os.read(sys.stdin.fileno(), 64):
            break


def hold(port, count, seconds, tls=False):
    deadline = time.monotonic() + seconds
    socks, greeted = [], 0
    if tls:
        socks, greeted = hold_tls(port, count, deadline)
        count = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        except OSError as e:
            print("connect failed: %s" % e, file=sys.stderr)
            break
    for s in socks if not tls else []:
        buf = b""
        try:
            s.settimeout(max(0.1, min(10, deadline - time.monotonic())))
            while b"\n" not in buf:
                d = s.recv(512)
                if not d:
                    break
                buf += d
        except OSError:
            pass
        if buf.startswith(b"220"):
            greeted += 1
    print("ready %d" % greeted, flush=True)
    wait_released(deadline)
    for s in socks:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()


def main():
    a = sys.argv[1:]
    if a[:1] == ["freeport"] and len(a) <= 2:
        addr = a[1] if len(a) == 2 else "127.0.0.1"
        if not addr.startswith("127."):
            print("freeport: loopback addresses only", file=sys.stderr)
            sys.exit(2)
        s = socket.socket()
        s.bind((addr, 0))
        print(s.getsockname()[1])
        s.close()
    elif a[:1] == ["snap"] and len(a) > 1:
        snap([int(x) for x in a[1:]])
    elif a[:1] == ["hold"] and len(a) in (4, 5):
        hold(int(a[1]), int(a[2]), float(a[3]), a[4:] == ["tls"])
    elif a[:1] == ["tlsrate"] and len(a) == 5 and a[4] in ("new", "reuse"):
        tlsrate(int(a[1]), float(a[2]), int(a[3]), a[4])
    elif a[:1] == ["submit"] and len(a) == 9:
        submit(int(a[1]), int(a[2]), int(a[3]), int(a[4]), *a[5:9])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
