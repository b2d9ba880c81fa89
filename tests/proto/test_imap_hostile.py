"""IMAP command framing under hostile input, against the real binary: the
pre-auth literal overflow of the command buffer (issue 12, defect 1) plain
and over imaps, lines at the exact end of the command buffer, every command
answered by exactly one tagged reply. A crash is seen as a dead process."""
import socket
import ssl

import harness
import tlsutil
from harness import IO_TIMEOUT
from test_imap import ImapBase, Raw

CMD_MAX = 8192          # IMAP_CMD_MAX in src/proto/imap.c


def exploit_line(total=CMD_MAX - 1, lit="{4096}", end=b"\n"):
    """A pre-auth command whose line fills the command buffer to `total`
    bytes (its end not counted) and asks for a literal."""
    head = "a LOGIN "
    pad = total - len(head) - len(lit) - 1
    return (head + "x" * pad + " " + lit).encode() + end


class Framing(ImapBase):

    def alive(self, r, tag="z"):
        """The session and the daemon both still answer."""
        out = r.cmd(tag, "NOOP")
        self.assertTrue(out[-1].startswith(tag + " OK"), out)
        self.assertTrue(self.server.running(), "postie died")

    def tagged_once(self, lines, tag):
        got = [ln for ln in lines if ln.startswith(tag + " ")]
        self.assertEqual(len(got), 1, lines[-5:])
        return got[0]

    def exploit(self, r):
        line = exploit_line()
        self.assertEqual(len(line), CMD_MAX)
        r.send(line)
        first = r.line()
        # A hostile client sends the literal whatever the answer: those
        # bytes must never land past the command buffer (before the fix
        # they overwrote the session and the daemon died).
        r.send(b"A" * 4096 + b"\r\n")
        try:
            out = r.cmd("s", "SELECT INBOX")
        except (harness.Closed, OSError):
            out = None
        self.assertTrue(self.server.running(), "postie died")
        # The literal that cannot fit is refused before it comes, with one
        # tagged answer; the junk line that followed is not a command that
        # logs anyone in.
        self.assertRegex(first, r"^a (NO|BAD) ")
        self.assertIsNotNone(out, "session cut")
        self.assertRegex(out[-1], r"^s BAD .*(Log in|state)", out)
        self.alive(r)

    def test_defect1_exploit_plain(self):
        r = self.raw()
        try:
            self.exploit(r)
        finally:
            r.close()
        self.assertTrue(self.server.running(), "postie died")

    @tlsutil.need_features("tls")
    def test_defect1_exploit_imaps(self):
        sock = socket.create_connection(("127.0.0.1", self.server.imaps_port),
                                        IO_TIMEOUT)
        sock = tlsutil.client_ctx().wrap_socket(
            sock, server_hostname=harness.HOSTNAME)
        r = Raw(None, sock=sock)
        try:
            self.exploit(r)
        finally:
            r.close()
        self.assertTrue(self.server.running(), "postie died")
