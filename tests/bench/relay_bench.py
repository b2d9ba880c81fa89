#!/usr/bin/python3
"""tests/bench/relay_bench.py [--quick] — part of `make bench`: relay
throughput with connection reuse, postie next to Postfix, same machine,
same run, as ratios postie / Postfix.

    client --SMTP--> server (queue, fsync) --SMTP--> sink

client: Postfix's smtp-source, 4 parallel sessions, one message per
session, N messages of LEN bytes to demo@dest.lan (not local: relayed).
server: postie (build/host/postie or POSTIE_BIN; relay_networks
127.0.0.0/8, `smarthost 127.0.0.3:PORT plain`, queue_retry 1s 2s, its
compiled RELAY_MAX_PER_DEST and RELAY_IDLE_SECS) or a private Postfix
(tests/proto/postfix.py with relayhost = [127.0.0.3]:PORT: smtp(8) with
its defaults, destination concurrency up to 20 and its connection cache).
sink: Postfix's smtp-sink on 127.0.0.3, run as nobody, counting sessions
and messages (-c); it throws the mail away.

Per run: the time from the first message sent until the sink has counted
all N (bounded: 300 s), the messages per second over that time, and the
sessions the sink saw (messages per outgoing connection: 1.0 means no
reuse). Runs alternate postie, Postfix; the median of 3 (1 with --quick)
is reported. Sizes: 2 KiB x 2000 and 64 KiB x 300 (--quick: 300 and 50).
Everything on loopback, every wait bounded; as root (Postfix's master).
Writes the rows to build/bench/relay.md (bench_all.sh puts them into the
combined table). Timings live here, never in pass/fail tests.
"""
import os
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "proto"))
import harness  # noqa: E402
import postfix  # noqa: E402

SINK_ADDR = "127.0.0.3"
SESSIONS = 4
RCPT = "demo@dest.lan"
SENDER = "a@test.lan"
DRAIN_TIMEOUT = 300


def free_port(addr):
    s = socket.socket()
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Sink:
    """smtp-sink -c: its stdout carries "sess=N quit=N mesg=N" counters,
    rewritten (CR) after every session, QUIT and message."""

    def __init__(self, out):
        self.port = free_port(SINK_ADDR)
        self.out = out
        self.f = open(out, "wb")
        self.proc = subprocess.Popen(
            ["timeout", "3600", "smtp-sink", "-4", "-c", "-u", "nobody",
             "%s:%d" % (SINK_ADDR, self.port), "256"],
            stdin=subprocess.DEVNULL, stdout=self.f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((SINK_ADDR, self.port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        # That probe was a session too; counts() are used as deltas.

    def counts(self):
        with open(self.out, "rb") as f:
            f.seek(max(0, os.path.getsize(self.out) - 400))
            tail = f.read().decode("ascii", "replace").replace("\r", "\n")
        m = re.findall(r"sess=(\d+) quit=\d+ mesg=(\d+)", tail)
        return (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.f.close()


def run_load(port, n, length, sink):
    """smtp-source into port; returns (seconds, messages, sessions) seen
    by the sink until it has all n (or the time bound)."""
    s0, m0 = sink.counts()
    t0 = time.monotonic()
    src = subprocess.run(
        ["smtp-source", "-c", "-l", str(length), "-m", str(n), "-s",
         str(SESSIONS), "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % port],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, timeout=DRAIN_TIMEOUT)
    deadline = t0 + DRAIN_TIMEOUT if src.returncode == 0 else time.monotonic() + 10
    while time.monotonic() < deadline:
        s, m = sink.counts()
        if m - m0 >= n:
            break
        time.sleep(0.02)
    secs = time.monotonic() - t0
    time.sleep(3)       # kept connections close (postie: 2 s idle)
    s, m = sink.counts()
    return secs, m - m0, s - s0


def postie_server(sink_port):
    extra = ("relay_networks 127.0.0.0/8\nsmarthost %s:%d plain\n"
             "queue_retry 1s 2s\n" % (SINK_ADDR, sink_port))
    srv = harness.Server(extra=extra, max_size="10M")
    return srv.start()


def kconfig(name):
    cfg = os.path.join(os.path.dirname(harness.BIN), ".config")
    try:
        with open(cfg) as f:
            m = re.search(r"^CONFIG_%s=(\d+)" % name, f.read(), re.M)
            return m.group(1) if m else "?"
    except OSError:
        return "?"


def fdiv(a, b):
    return "%.3g" % (a / b) if b else "n/a"


def main():
    quick = "--quick" in sys.argv[1:]
    runs = [(300, 2048), (50, 65536)] if quick else [(2000, 2048), (300, 65536)]
    reps = 1 if quick else 3
    why = postfix.available()
    if why:
        print("relay_bench: no Postfix: %s" % why, file=sys.stderr)
        return 1
    out_dir = os.path.join(REPO, "build", "bench")
    os.makedirs(out_dir, exist_ok=True)
    load0 = open("/proc/loadavg").read().split()[:3]
    sink = Sink(os.path.join(out_dir, "relay-sink.out"))
    pf = srv = None
    rows = []
    try:
        pf = postfix.Postfix(addr="127.0.0.1",
                             relayhost="[%s]:%d" % (SINK_ADDR, sink.port))
        pf.start()
        srv = postie_server(sink.port)
        for n, length in runs:
            res = {"postie": [], "postfix": []}
            for _ in range(reps):
                res["postie"].append(run_load(srv.port, n, length, sink))
                res["postfix"].append(run_load(pf.port["plain"], n, length, sink))
            med = {}
            for k, v in res.items():
                v = sorted(v, key=lambda r: r[0])
                secs, got, sess = v[len(v) // 2]
                med[k] = (got / secs if secs else 0, got, secs, sess,
                          min(r[1] / r[0] for r in v if r[0]),
                          max(r[1] / r[0] for r in v if r[0]))
                print("relay_bench: %s %d x %d B: %s" % (k, n, length, v),
                      file=sys.stderr)
            p, f = med["postie"], med["postfix"]
            rng = lambda m: " (%.0f–%.0f over %d runs)" % (m[4], m[5], reps) if reps > 1 else ""
            rows.append("| relay msgs/s with connection reuse, SMTP→queue→smtp-sink, "
                        "%d B × %d (median run) | %.0f (%d in %.2f s)%s | %.0f (%d in "
                        "%.2f s)%s | %s |" % (length, n, p[0], p[1], p[2], rng(p),
                                              f[0], f[1], f[2], rng(f), fdiv(p[0], f[0])))
            rows.append("| messages per outgoing connection, %d B (sink sessions: "
                        "postie %d, Postfix %d) | %.1f | %.1f | %s |" % (
                            length, p[3], f[3], p[1] / max(p[3], 1),
                            f[1] / max(f[3], 1),
                            fdiv(p[1] / max(p[3], 1), f[1] / max(f[3], 1))))
    finally:
        if srv:
            srv.cleanup()
        if pf:
            pf.cleanup()
        sink.stop()
    load1 = open("/proc/loadavg").read().split()[:3]
    with open(os.path.join(out_dir, "relay.md"), "w") as f:
        f.write("### Relay with connection reuse: postie next to Postfix\n\n")
        f.write("- load average at the start %s, at the end %s\n" % (
            " ".join(load0), " ".join(load1)))
        f.write("- postie: %s (RELAY_MAX_DELIVERIES=%s, RELAY_MAX_PER_DEST=%s, "
                "RELAY_IDLE_SECS=%s); Postfix %s, relayhost = the sink, its "
                "defaults\n\n" % (harness.BIN, kconfig("RELAY_MAX_DELIVERIES"),
                                  kconfig("RELAY_MAX_PER_DEST"),
                                  kconfig("RELAY_IDLE_SECS"),
                                  subprocess.run(["postconf", "-d", "-h", "mail_version"],
                                                 stdout=subprocess.PIPE).stdout.decode().strip()))
        f.write("| metric | postie | Postfix | postie / Postfix |\n|---|---:|---:|---:|\n")
        f.write("\n".join(rows) + "\n\nReproduce: `tests/bench/relay_bench.py` "
                "(as root), part of `make bench`.\n")
    with open(os.path.join(out_dir, "relay.md")) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
