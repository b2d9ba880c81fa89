#!/usr/bin/python3
"""Helpers for tests/bench/bench.sh (Python 3 standard library only).

  benchlib.py freeport
      Prints a free TCP port on 127.0.0.1 (bind to port 0).
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
  benchlib.py hold PORT COUNT SECONDS
      Opens COUNT TCP connections to 127.0.0.1:PORT, reads each greeting
      line, prints "ready N" (N connections greeted) and keeps them idle
      until stdin is closed or SECONDS pass, then closes them.
"""
import os
import select
import socket
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
    pids = []
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
        tot["ctxt"] += int(st.get("voluntary_ctxt_switches", 0)) + \
            int(st.get("nonvoluntary_ctxt_switches", 0))
        sm = kv(read("/proc/%d/smaps_rollup" % p))
        tot["pss_kb"] += int(sm.get("Pss", "0 kB").split()[0])
    for k, v in tot.items():
        print("%s=%d" % (k, v))
    print("pidset=%s" % ",".join(str(p) for p in sorted(pids)))
    print("hz=%d" % HZ)


def hold(port, count, seconds):
    deadline = time.monotonic() + seconds
    socks, greeted = [], 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        except OSError as e:
            print("connect failed: %s" % e, file=sys.stderr)
            break
    for s in socks:
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
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [],
                                max(0, deadline - time.monotonic()))
        if r and not os.read(sys.stdin.fileno(), 64):
            break
    for s in socks:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()


def main():
    a = sys.argv[1:]
    if a[:1] == ["freeport"]:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    elif a[:1] == ["snap"] and len(a) > 1:
        snap([int(x) for x in a[1:]])
    elif a[:1] == ["hold"] and len(a) == 4:
        hold(int(a[1]), int(a[2]), float(a[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
