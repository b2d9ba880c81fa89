"""The DNS adaptor (src/dns/dns_udns.c) in the real loop, through the
dns_driver test program, against a dnsmasq that serves only the test data
below on 127.0.0.53 and a free port (--no-resolv, --local=/test/: it never
forwards anywhere).

The driver is built next to the binary: POSTIE_DNS_DRIVER, else
<dir of POSTIE_BIN>/tests/dns_driver. Skipped without it or dnsmasq."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import SLOW, QEMU, slow

DRIVER = os.environ.get("POSTIE_DNS_DRIVER") or os.path.join(
    os.path.dirname(harness.BIN), "tests", "dns_driver")
DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
LISTEN = "127.0.0.53"

RECORDS = [
    "--mx-host=mx.test,mx1.mx.test,10",
    "--mx-host=mx.test,mx2.mx.test,20",
    "--host-record=mx1.mx.test,127.0.0.2",
    "--host-record=mx2.mx.test,127.0.0.3,::2",
    "--host-record=amx.test,127.0.0.4",             # no MX: implicit MX
    "--mx-host=nullmx.test,.,0",                    # RFC 7505 null MX
    "--address=/nx.test/",                          # NXDOMAIN
    "--mx-host=noaddr.test,gone.test,10",           # exchanger without address
    "--mx-host=cname.test,alias.test,10",
    "--cname=alias.test,mx1.mx.test",
    "--mx-host=eq.test,eq1.test,10",
    "--mx-host=eq.test,eq2.test,10",
    "--host-record=eq1.test,127.0.0.5",
    "--host-record=eq2.test,127.0.0.6",
    "--mx-host=backup.test,dead.test,5",            # best MX has no address
    "--mx-host=backup.test,mx1.mx.test,50",
]


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((LISTEN, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Dnsmasq:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="postie-dns-")
        self.proc = None
        self.port = None

    def start(self):
        last = ""
        for _ in range(5):
            self.port = free_udp_port()
            log = os.path.join(self.dir, "dnsmasq.log")
            cmd = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
                   "--no-resolv", "--no-hosts", "--no-poll", "--pid-file",
                   "--port=%d" % self.port, "--listen-address=" + LISTEN,
                   "--bind-interfaces", "--local=/test/", "--log-queries",
                   "--log-facility=" + log] + RECORDS
            if os.geteuid() == 0:
                cmd.append("--user=root")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if self._ready():
                return self
            if self.proc.poll() is None:
                self.proc.kill()
            last = self.proc.communicate(timeout=10)[1].decode("utf-8", "replace")
        raise unittest.SkipTest("dnsmasq did not start: %s" % last[-500:])

    def _ready(self):
        """True once dnsmasq answers a query on the port."""
        # A minimal query for "mx.test" MX.
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x02mx\x04test\x00\x00\x0f\x00\x01")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(q, (LISTEN, self.port))
                if s.recv(512)[:2] == b"\x12\x34":
                    return True
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def server(self):
        return "%s:%d" % (LISTEN, self.port)


def parse(out):
    """{name: (status, why, [(host, pref, addr)])}, plus raw lines."""
    res = {}
    for line in out.splitlines():
        parts = line.split(" ")
        if parts[0] == "result":
            why = line.split(" why=", 1)[1] if " why=" in line else ""
            res[parts[1]] = (parts[2], why, [])
        elif parts[0] == "target":
            res[parts[1]][2].append((parts[2], int(parts[3]), parts[4]))
    return res


@unittest.skipUnless(os.path.exists(DRIVER), "no dns_driver at %s" % DRIVER)
@unittest.skipUnless(DNSMASQ, "dnsmasq not installed")
class DnsTest(harness.TestCase):
    timeout = int(120 * SLOW)
    server = None

    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq().start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def drive(self, *args, server=None, timeout=60):
        p = subprocess.run(QEMU + [DRIVER, server or self.dns.server] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout * SLOW)
        out = p.stdout.decode("utf-8", "replace")
        self.assertNotIn("sync-callback", out)
        self.assertEqual(p.returncode, 0, out + p.stderr.decode("utf-8", "replace"))
        self.assertIn("done", out)
        return parse(out), out

    def test_mx_in_preference_order(self):
        res, out = self.drive("mx", "mx.test")
        st, why, t = res["mx.test"]
        self.assertEqual(st, "OK", out)
        self.assertEqual(t[0], ("mx1.mx.test", 10, "127.0.0.2"))
        self.assertEqual(t[1], ("mx2.mx.test", 20, "127.0.0.3"))
        if len(t) > 2:          # with CONFIG_IPV6: IPv4 first per host
            self.assertEqual(t[2], ("mx2.mx.test", 20, "::2"))

    def test_implicit_mx(self):
        res, out = self.drive("mx", "amx.test")
        self.assertEqual(res["amx.test"][0], "OK", out)
        self.assertEqual(res["amx.test"][2], [("amx.test", 0, "127.0.0.4")])

    def test_permanent_failures(self):
        res, out = self.drive("mx", "nx.test", "nosuch.test", "nullmx.test",
                              "noaddr.test", "bad..name", "-x.test")
        for name in ("nx.test", "nosuch.test", "nullmx.test", "noaddr.test",
                     "bad..name"):
            self.assertEqual(res[name][0], "PERM", (name, out))
        self.assertIn("null MX", res["nullmx.test"][1])
        self.assertIn("no such domain", res["nx.test"][1])

    def test_cname_equal_prefs_and_backup(self):
        res, out = self.drive("mx", "cname.test", "eq.test", "backup.test")
        self.assertEqual(res["cname.test"][0], "OK", out)
        self.assertEqual(res["cname.test"][2][0][2], "127.0.0.2")
        self.assertEqual(sorted(a for _, _, a in res["eq.test"][2]),
                         ["127.0.0.5", "127.0.0.6"])
        self.assertEqual(res["backup.test"][2],
                         [("mx1.mx.test", 50, "127.0.0.2")])

    def test_host_lookup_and_literals(self):
        res, out = self.drive("host", "mx2.mx.test", "192.0.2.1", "[192.0.2.2]",
                              "gone.test")
        self.assertEqual(res["mx2.mx.test"][0], "OK", out)
        self.assertEqual(res["mx2.mx.test"][2][0], ("mx2.mx.test", 0, "127.0.0.3"))
        self.assertEqual(res["192.0.2.1"][2], [("192.0.2.1", 0, "192.0.2.1")])
        self.assertEqual(res["[192.0.2.2]"][2], [("192.0.2.2", 0, "192.0.2.2")])
        self.assertEqual(res["gone.test"][0], "PERM", out)

    def test_refused_is_temporary(self):
        # Outside --local=/test/ with no upstream dnsmasq answers REFUSED.
        res, out = self.drive("mx", "example.invalid")
        self.assertEqual(res["example.invalid"][0], "TEMP", out)

    def test_bad_server_is_temporary(self):
        res, out = self.drive("mx", "mx.test", server="not-an-address")
        self.assertEqual(res["mx.test"][0], "TEMP", out)

    @slow
    def test_silent_server_times_out_temporary(self):
        port = free_udp_port()
        res, out = self.drive("mx", "mx.test", server="%s:%d" % (LISTEN, port),
                              timeout=90)
        self.assertEqual(res["mx.test"][0], "TEMP", out)

    def test_many_at_once(self):
        names = ["mx.test", "amx.test", "nx.test", "eq.test"] * 8
        res, out = self.drive("mx", *names)
        answered = out.count("\nresult ") + out.startswith("result ")
        refused = out.count("refused ")
        self.assertEqual(answered + refused, len(names), out)
        self.assertGreater(answered, 0)

    def test_drop_never_calls_back(self):
        res, out = self.drive("drop", "mx.test", "amx.test", "192.0.2.1")
        self.assertIn("dropped quietly", out)
        self.assertEqual(res, {})

    def test_reload_ends_lookups_as_temporary(self):
        res, out = self.drive("reload", "mx.test", "amx.test")
        self.assertEqual(sorted(res), ["amx.test", "mx.test"], out)
        for name in res:
            self.assertEqual(res[name][0], "TEMP", out)
            self.assertIn("reloaded", res[name][1])

    def test_idle_makes_no_wakeups(self):
        res, out = self.drive("idle")
        self.assertIn("idle served=0", out)
        res, out = self.drive("idle", "mx.test")
        self.assertEqual(res["mx.test"][0], "OK", out)
        self.assertIn("idle served=0", out)
