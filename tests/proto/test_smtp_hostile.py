"""Hostile and odd clients: NUL bytes, binary garbage, HTTP, long lines,
idle clients, connection floods, command sequence errors, pipelined
floods, clients that vanish mid-transaction."""
import os
import select
import socket
import time
import unittest

import harness
from harness import SLOW, crlf, slow, token


class Hostile(harness.ServerTest):
    server_args = {"max_connections": 64}

    def test_nul_in_command(self):
        with self.server.dialog() as d:
            code, lines = d.cmd(b"EHLO a\x00b")
            self.assertEqual(code, 500, lines)
            code, lines = d.cmd(b"NO\x00OP")
            self.assertEqual(code, 500, lines)
            d.ehlo()
            self.assertEqual(d.code(b"MAIL FROM:<a@example.net>\x00"), 500)
            self.assertEqual(d.code("NOOP"), 250)

    def test_unknown_command(self):
        with self.server.dialog() as d:
            code, lines = d.cmd("XYZZY plugh")
            self.assertEqual(code, 500, lines)
            self.assertIn("5.5.2", lines[0])
            self.assertEqual(d.code("NOOP"), 250)

    def test_unimplemented_commands(self):
        with self.server.dialog() as d:
            d.ehlo()
            if "tls" not in harness.features():
                code, lines = d.cmd("STARTTLS")
                self.assertEqual(code, 454, lines)
            for verb in ("EXPN staff", "TURN", "BDAT 10 LAST"):
                code, lines = d.cmd(verb)
                self.assertTrue(500 <= code < 600, (verb, lines))
            if "auth" not in harness.features():
                self.assertTrue(500 <= d.code("AUTH PLAIN AGFAAGI=") < 600)
            self.assertEqual(d.code("NOOP"), 250)

    def test_lowercase_verbs(self):
        t = token()
        with self.server.dialog() as d:
            self.assertEqual(d.code("ehlo c.test"), 250)
            self.assertEqual(d.code("mail from:<a@example.net>"), 250)
            self.assertEqual(d.code("rcpt to:<demo@test.lan>"), 250)
            self.assertEqual(d.code("data"), 354)
            d.send(crlf("Subject: %s\n\nlower\n" % t) + b".\r\n")
            self.assertEqual(d.reply()[0], 250)
        self.assertEqual(len(self.server.find("demo", t)), 1)

    def test_garbage_then_421(self):
        rnd = bytes((b if b not in (0x0a,) else 0x41) for b in os.urandom(400))
        with self.server.dialog() as d:
            # Lines of binary garbage (no NUL-free guarantee: both paths).
            chunks = [rnd[i:i + 40] + b"\r\n" for i in range(0, 400, 40)]
            chunks += [b"\xff\xfe\xfd garbage\r\n"] * 5
            d.send(b"".join(chunks))
            codes = []
            for _ in range(30):
                try:
                    codes.append(d.reply()[0])
                except harness.Closed:
                    break
                if codes[-1] == 421:
                    break
            self.assertEqual(codes[-1], 421, codes)
            self.assertTrue(all(500 <= c < 600 for c in codes[:-1]), codes)
            self.assertLessEqual(len(codes), 11)
            # And the connection is closed.
            rest = d.read_until_closed(timeout=10 * SLOW)
            self.assertEqual(rest, b"")

    def test_http_request_hung_up(self):
        with self.server.dialog() as d:
            d.send(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            data = d.read_until_closed(timeout=10 * SLOW)
            for line in data.split(b"\r\n"):
                self.assertFalse(line[:1] == b"2", data)

    def test_http_post_before_ehlo_and_after(self):
        with self.server.dialog() as d:
            d.ehlo()
            d.send(b"POST /cgi HTTP/1.1\r\n")
            data = d.read_until_closed(timeout=10 * SLOW)
            self.assertFalse(data.startswith(b"2"), data)

    def test_command_line_too_long(self):
        with self.server.dialog() as d:
            d.ehlo()
            code, lines = d.cmd("NOOP " + "x" * 600)
            self.assertEqual(code, 500, lines)
            self.assertIn("5.5.2", lines[0])
            self.assertEqual(d.code("NOOP"), 250)
            # Longer than any buffer: still one error, session goes on.
            code, lines = d.cmd("MAIL FROM:<" + "y" * 5000 + "@example.net>")
            self.assertEqual(code, 500, lines)
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 250)
            self.assertEqual(d.code("RSET"), 250)

    def test_command_line_at_limit(self):
        # 512 octets with the CRLF is the RFC 5321 limit: accepted.
        with self.server.dialog() as d:
            line = "NOOP " + "z" * (510 - 5)
            self.assertEqual(len(line), 510)
            self.assertEqual(d.code(line), 250)
            self.assertEqual(d.code(line + "z"), 500)
            self.assertEqual(d.code("NOOP"), 250)

    def test_huge_line_without_newline_then_close(self):
        with self.server.dialog() as d:
            d.send(b"A" * 200000)
            d.close()
        self.assertServing()

    def test_sequence_errors(self):
        with self.server.dialog() as d:
            code, lines = d.cmd("MAIL FROM:<a@example.net>")
            self.assertEqual(code, 503, lines)
            self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 503)
            self.assertEqual(d.code("DATA"), 503)
            d.ehlo()
            self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 503)
            self.assertEqual(d.code("DATA"), 503)
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertIn(d.code("DATA"), (503, 554))
            self.assertEqual(d.code("QUIT"), 221)
        # A new session: fewer than CONFIG_SMTP_MAX_ERRORS (10) per session.
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("MAIL FROM:<b@example.net>"), 503)
            self.assertEqual(d.code("RCPT TO:<nobody@test.lan>"), 550)
            self.assertIn(d.code("DATA"), (503, 554))
            self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 250)
            self.assertEqual(d.code("DATA junk"), 501)
            self.assertEqual(d.code("RSET"), 250)
            self.assertEqual(d.code("QUIT"), 221)

    def test_ehlo_resets_transaction(self):
        t = token()
        with self.server.dialog() as d:
            d.ehlo()
            self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
            self.assertEqual(d.code("RCPT TO:<alice@test.lan>"), 250)
            d.ehlo("again.test")
            self.assertEqual(d.code("DATA"), 503)
            code, _ = d.send_mail("b@example.net", ["bob@test.lan"],
                                  crlf("Subject: %s\n\nx\n" % t))
            self.assertEqual(code, 250)
        self.assertEqual(self.server.find("alice", t), [])
        self.assertEqual(len(self.server.find("bob", t)), 1)

    def test_pipelined_flood_of_commands(self):
        # Many small commands in one write: every one gets its reply, in
        # order, with nothing left waiting in the server's input buffer.
        n = 150
        with self.server.dialog() as d:
            d.ehlo()
            d.send(b"NOOP\r\n" * n + b"QUIT\r\n")
            got = []
            for _ in range(n + 1):
                try:
                    got.append(d.reply(timeout=5 * SLOW)[0])
                except socket.timeout:
                    break
            self.assertEqual(len(got), n + 1,
                             "only %d of %d replies: the server stalled with "
                             "commands still buffered" % (len(got), n + 1))
            self.assertEqual(got, [250] * n + [221])

    def test_pipelined_flood_mixed(self):
        # A pipelined batch of transactions with wrong commands mixed in.
        t = token()
        batch = b""
        for i in range(20):
            batch += (b"MAIL FROM:<a@example.net>\r\nRCPT TO:<carol@test.lan>\r\n"
                      b"DATA\r\n" + crlf("Subject: %s %d\n\nm%d\n" % (t, i, i)) +
                      b".\r\n")
        with self.server.dialog() as d:
            d.ehlo()
            d.send(batch + b"QUIT\r\n")
            got = []
            for _ in range(81):
                try:
                    got.append(d.reply(timeout=10 * SLOW)[0])
                except socket.timeout:
                    break
            self.assertEqual(got, [250, 250, 354, 250] * 20 + [221])
        self.assertEqual(len(self.server.find("carol", t)), 20)

    def test_too_many_commands(self):
        limit = 1000    # CONFIG_SMTP_MAX_COMMANDS default
        with self.server.dialog() as d:
            got = []
            for _ in range(limit // 50 + 2):
                d.send(b"NOOP\r\n" * 50)
                try:
                    for _ in range(50):
                        got.append(d.reply()[0])
                except (harness.Closed, ConnectionResetError):
                    break
                if got[-1] == 421:
                    break
            self.assertEqual(got[-1], 421, got[-5:])
            self.assertGreaterEqual(len(got), 100)

    def test_idle_client_does_not_block_others(self):
        idle = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        half = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        try:
            half.sendall(b"EHLO half-a-line-without-newline")
            t = token()
            with self.server.dialog() as d:
                d.ehlo()
                code, _ = d.send_mail("a@example.net", ["demo@test.lan"],
                                      crlf("Subject: %s\n\nwhile idle\n" % t))
                self.assertEqual(code, 250)
            self.assertEqual(len(self.server.find("demo", t)), 1)
        finally:
            idle.close()
            half.close()

    def test_client_vanishes_in_data(self):
        t = token()
        d = self.server.dialog()
        d.ehlo()
        self.assertEqual(d.code("MAIL FROM:<a@example.net>"), 250)
        self.assertEqual(d.code("RCPT TO:<demo@test.lan>"), 250)
        self.assertEqual(d.code("DATA"), 354)
        d.send(crlf("Subject: %s\n\nhalf a message\n" % t))
        d.close()
        # The server notices the close; nothing delivered, no tmp file left.
        deadline = time.monotonic() + 10 * SLOW
        while self.server.spool_tmp() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.server.spool_tmp(), [])
        self.assertEqual(self.server.anywhere(t), [])
        self.assertServing()

    def test_client_resets_connection(self):
        d = self.server.dialog()
        d.ehlo()
        d.send(b"MAIL FROM:<a@example.net>\r\n")
        d.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        d.close()
        self.assertServing()

    def test_quit_with_half_close(self):
        with self.server.dialog() as d:
            d.send(b"QUIT\r\n")
            d.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(d.reply()[0], 221)
            self.assertEqual(d.read_until_closed(), b"")

    def test_eof_without_quit(self):
        with self.server.dialog() as d:
            d.ehlo()
            d.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(d.read_until_closed(timeout=10 * SLOW), b"")
        self.assertServing()

    def test_data_bytes_all_values(self):
        # Every byte but NUL, in lines: stored as sent (CRLF -> LF).
        t = token()
        payload = bytes(b for b in range(1, 256) if b not in (10, 13))
        code, _ = self.deliver(["demo@test.lan"],
                               crlf(b"Subject: " + t.encode() + b"\n\n" + payload + b"\n"))
        self.assertEqual(code, 250)
        m = self.server.find("demo", t)
        self.assertEqual(len(m), 1)
        self.assertEqual(m[0].body, payload + b"\n")

    @slow
    def test_200_connections(self):
        n = 200
        socks = []
        try:
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                # From 20 addresses, under max_connections_per_ip.
                s.bind(("127.0.0.%d" % (1 + len(socks) % 20), 0))
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", self.server.port))
                socks.append(s)
            # Read banners for a while; connections beyond the slots wait
            # (no banner, no error) rather than failing the others.
            banners, bad = 0, []
            bufs = {s: b"" for s in socks}
            deadline = time.monotonic() + 5 * SLOW
            while time.monotonic() < deadline and banners < 64:
                waiting = [s for s in socks if b"\n" not in bufs[s]]
                r, _, _ = select.select(waiting[:500], [], [], 0.2)
                for s in r:
                    try:
                        chunk = s.recv(512)
                    except (BlockingIOError, ConnectionError):
                        continue
                    bufs[s] += chunk
                    if b"\n" in bufs[s]:
                        if bufs[s].startswith(b"220 "):
                            banners += 1
                        else:
                            bad.append(bufs[s])
            self.assertEqual(bad, [])
            self.assertGreaterEqual(banners, 64,
                                    "max_connections=64: 64 should be served")
        finally:
            for s in socks:
                s.close()
        # After the flood, the server serves again (allow it to drain the
        # closed backlog first).
        deadline = time.monotonic() + 20 * SLOW
        while True:
            try:
                self.assertServing()
                break
            except (socket.timeout, harness.Closed, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


class ConnectionLimit(harness.ServerTest):
    server_args = {"max_connections": 2}

    def test_waits_beyond_max_connections(self):
        a = self.server.dialog()
        b = self.server.dialog()
        c = socket.create_connection(("127.0.0.1", self.server.port), timeout=10 * SLOW)
        try:
            self.assertEqual(a.banner[0], 220)
            self.assertEqual(b.banner[0], 220)
            # The third waits in the listen queue: no banner, no refusal.
            c.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                c.recv(100)
            a.cmd("QUIT")
            a.close()
            # Once a slot frees, the waiting client is greeted.
            c.settimeout(10 * SLOW)
            self.assertTrue(c.recv(100).startswith(b"220 "))
            self.assertEqual(b.code("NOOP"), 250)
        finally:
            a.close()
            b.close()
            c.close()

    def test_slots_come_back(self):
        for _ in range(10):
            with self.server.dialog() as d:
                self.assertEqual(d.code("QUIT"), 221)
        with self.server.dialog() as d1, self.server.dialog() as d2:
            self.assertEqual(d1.code("NOOP"), 250)
            self.assertEqual(d2.code("NOOP"), 250)


if __name__ == "__main__":
    unittest.main()
