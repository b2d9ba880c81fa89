"""IMAP with real clients: mbsync (isync) syncing every
folder to a Maildir and back over imap, STARTTLS and imaps; mutt in a
pseudo-terminal; a second IMAP session in IDLE seeing what mbsync did.
"Done when": mail read, flagged, moved and deleted with one client shows
up the same with another (mutt's changes pulled by mbsync, mbsync's seen
by an IDLE session and by imaplib), and on disk in the mbox layout
(mail_dir/USER, mail_dir/.postie/folders/USER/NAME) that mutt and Python's
mailbox module read.

Every client runs with a time limit, on 127.0.0.1, with its own HOME and
configuration in a temporary directory. The server's certificate names
127.0.0.1 as a DNS name too: mbsync matches the host only against DNS
names and the common name.
"""
import email.parser
import email.policy
import fcntl
import glob
import imaplib
import mailbox
import os
import re
import select
import shutil
import struct
import subprocess
import tempfile
import termios
import time
import unittest

import harness
import tlsutil
from harness import IO_TIMEOUT, SLOW, token
from test_imap import IMAPServer, ImapBase, Raw, have_imap, mbox_text, msg
from tlsutil import PASSWORD

CLIENT_TIMEOUT = 60 * SLOW          # one mbsync run, one mutt session
FOLDERS = ".postie/folders"

_ipcert = {}


def ip_cert():
    """(cert, key) of a self-signed certificate for 127.0.0.1 that mbsync
    accepts (CN and a DNS name of 127.0.0.1; IP and the test host name
    too), made once per process."""
    if _ipcert:
        return _ipcert["c"], _ipcert["k"]
    if not shutil.which("openssl"):
        raise unittest.SkipTest("openssl not installed")
    d = tempfile.mkdtemp(prefix="postie-ipcert-")
    import atexit
    atexit.register(shutil.rmtree, d, True)
    c, k = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", k, "-out", c, "-days", "30", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=DNS:127.0.0.1,DNS:%s,IP:127.0.0.1"
         % harness.HOSTNAME],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    if r.returncode != 0:
        raise AssertionError("openssl req: %s" % r.stderr.decode()[-500:])
    _ipcert.update(c=c, k=k)
    return c, k


def need(tool, package):
    if not shutil.which(tool):
        raise AssertionError("%s not installed (Debian package %s; "
                             "tests/install-deps.sh check installs it)"
                             % (tool, package))


def lf(data):
    return data.replace(b"\r\n", b"\n")


def drop_tuid(data):
    """mbsync's own tracking header (X-TUID) removed."""
    return re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", data)


def subject_of(data):
    m = re.search(rb"(?mi)^Subject: *([^\r\n]*)", data.partition(b"\n\n")[0])
    return m.group(1).decode() if m else None


# ---- the server's side -------------------------------------------------

class ClientBase(ImapBase):
    """One server per class (ImapBase's, with a certificate for
    127.0.0.1); every test starts with an empty INBOX and no folders."""

    timeout = int(240 * SLOW)

    @classmethod
    def setUpClass(cls):
        super(harness.ServerTest, cls).setUpClass()
        if not have_imap():
            raise unittest.SkipTest("imap not in this build")
        c, k = ip_cert()
        srv = IMAPServer(tls="rsa", extra=cls.extra,
                         users=tlsutil.default_users())
        shutil.copyfile(c, srv.path("cert.pem"))
        shutil.copyfile(k, srv.path("key.pem"))
        cls.server = srv.start()

    def setUp(self):
        super().setUp()
        shutil.rmtree(self.server.path("mail", ".postie"), ignore_errors=True)
        self.work = tempfile.mkdtemp(prefix="postie-clients-")
        if not harness.KEEP:
            self.addCleanup(shutil.rmtree, self.work, True)
        else:
            print("kept", self.work)

    # folders on disk
    def folder_path(self, name, user="alice"):
        if name == "INBOX":
            return self.server.path("mail", user)
        return self.server.path("mail", FOLDERS, user, *name.split("/"))

    def put_folder(self, name, bodies, user="alice"):
        p = self.folder_path(name, user)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(mbox_text(bodies))
        os.chmod(p, 0o600)

    def disk_bytes(self, name, user="alice"):
        with open(self.folder_path(name, user), "rb") as f:
            return f.read()

    def disk(self, name, user="alice"):
        """The messages of a folder's mbox file (harness.Message list)."""
        return harness.split_mbox(self.disk_bytes(name, user))

    def disk_subjects(self, name):
        return sorted(subject_of(m.raw) for m in self.disk(name))

    # the server's view through imaplib
    def folders(self):
        """Selectable folder names from LIST "" *."""
        m = self.server.imap()
        try:
            typ, data = m.list('""', "*")
            self.assertEqual(typ, "OK", data)
        finally:
            m.logout()
        out = set()
        for d in data:
            if isinstance(d, tuple):
                d = d[0] + d[1]
            mm = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) "?(.*?)"?$', d)
            self.assertTrue(mm, d)
            if b"\\noselect" not in mm.group(1).lower():
                out.add(mm.group(2).decode())
        return out

    def view(self, folder, m=None):
        """{subject: (uid, flags set, message bytes)} of a folder."""
        own = m is None
        if own:
            m = self.server.imap()
        try:
            typ, data = m.select('"%s"' % folder, readonly=True)
            self.assertEqual(typ, "OK", (folder, data))
            out = {}
            if data[0] == b"0":
                return out
            typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            self.assertEqual(typ, "OK", data)
            for d in data:
                if not isinstance(d, tuple):
                    continue
                uid = int(re.search(rb"UID (\d+)", d[0]).group(1))
                fl = re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1)
                out[subject_of(lf(d[1]))] = (uid, set(fl.decode().split()), d[1])
            return out
        finally:
            if own:
                m.logout()


# ---- mbsync ----------------------------------------------------------------

class Maildir:
    """mbsync's near side: md/INBOX, md/NAME (SubFolders Verbatim)."""

    def __init__(self, root):
        self.root = root
        self.n = 0

    def path(self, folder):
        return os.path.join(self.root, *folder.split("/"))

    def folders(self):
        out = set()
        for d, subdirs, _ in os.walk(self.root):
            if {"cur", "new", "tmp"} <= set(subdirs):
                out.add(os.path.relpath(d, self.root).replace(os.sep, "/"))
        return out

    def msgs(self, folder):
        """{subject: (path, flags string, bytes)}."""
        out = {}
        for sub in ("new", "cur"):
            for p in glob.glob(os.path.join(self.path(folder), sub, "*")):
                with open(p, "rb") as f:
                    data = f.read()
                name = os.path.basename(p)
                flags = name.split(":2,", 1)[1] if ":2," in name else ""
                s = subject_of(data)
                assert s not in out, ("two messages with subject", s, folder)
                out[s] = (p, flags, data)
        return out

    def set_flags(self, folder, subject, flags, index=None):
        """index: msgs(folder) read once for many calls (each message's
        file at most once: its path changes)."""
        p, _, _ = (self.msgs(folder) if index is None else index)[subject]
        base = os.path.basename(p).split(":2,", 1)[0]
        os.rename(p, os.path.join(self.path(folder), "cur",
                                  base + ":2," + "".join(sorted(flags))))

    def delete(self, folder, subject, index=None):
        os.unlink((self.msgs(folder) if index is None else index)[subject][0])

    def add(self, folder, data, flags=""):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.path(folder), sub), exist_ok=True)
        self.n += 1
        name = "%d.%d_%d.postietest" % (time.time(), os.getpid(), self.n)
        sub = "cur" if flags else "new"
        if flags:
            name += ":2," + flags
        with open(os.path.join(self.path(folder), sub, name), "wb") as f:
            f.write(data)

    def move(self, src, subject, dst):
        """As a mail reader does: the file goes to the other folder, without
        the source folder's UID (mbsync's ,U=N in the name)."""
        p, flags, data = self.msgs(src)[subject]
        os.unlink(p)
        self.add(dst, data, flags)

    def snapshot(self):
        out = {}
        for d, _, files in os.walk(self.root):
            for f in files:
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, self.root)] = fh.read()
        return out


class MbsyncBase(ClientBase):

    def setUp(self):
        super().setUp()
        need("mbsync", "isync")
        self.md = Maildir(os.path.join(self.work, "md"))
        os.makedirs(self.md.root)

    def mbsync_conf(self, ssl):
        port = self.server.imaps_port if ssl == "IMAPS" else self.server.imap_port
        conf = ["IMAPAccount postie", "Host 127.0.0.1", "Port %d" % port,
                "User alice", 'Pass "%s"' % PASSWORD, "SSLType %s" % ssl,
                "Timeout %d" % int(20 * SLOW)]
        if ssl != "None":
            conf.append("CertificateFile %s" % ip_cert()[0])
        conf += ["", "IMAPStore remote", "Account postie", "",
                 "MaildirStore local", "Path %s/" % self.md.root,
                 "Inbox %s" % os.path.join(self.md.root, "INBOX"),
                 "SubFolders Verbatim", "",
                 "Channel c", "Far :remote:", "Near :local:", "Patterns *",
                 "Create Both", "Expunge Both", "SyncState *", ""]
        p = os.path.join(self.work, "mbsyncrc")
        with open(p, "w") as f:
            f.write("\n".join(conf))
        return p

    def mbsync(self, ssl="None"):
        """Runs `mbsync -a` with network debugging; asserts exit 0; returns
        the commands it sent (tag stripped)."""
        conf = self.mbsync_conf(ssl)
        env = dict(os.environ, HOME=self.work)
        r = subprocess.run(["mbsync", "-c", conf, "-a", "-Dn"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, cwd=self.work,
                           timeout=CLIENT_TIMEOUT)
        out = r.stdout.decode("utf-8", "replace")
        self.last_output = out
        tail = out[-3000:] + "\n--- server log ---\n" + self.server.log()[-1500:]
        self.assertEqual(r.returncode, 0, "mbsync failed:\n" + tail)
        self.assertNotRegex(out, r"(?m)^(IMAP error|Error|Warning|\*\*\*)",
                            "mbsync complained:\n" + tail)
        sent = re.findall(r"(?m)^>>> \d+ (.*)$", out)
        self.assertTrue(sent, "mbsync -Dn showed no commands:\n" + tail)
        return sent

    def assert_noop(self, ssl):
        """A run that changes nothing on either side."""
        server_before = {f: self.view(f) for f in self.folders()}
        disk_before = {f: self.disk_bytes(f) for f in server_before}
        local_before = self.md.snapshot()
        sent = self.mbsync(ssl)
        changing = [c for c in sent if re.match(
            r"(UID )?(STORE|EXPUNGE|COPY|MOVE)|APPEND|CREATE|DELETE|RENAME", c)]
        self.assertEqual(changing, [], "a no-op run sent changes")
        self.assertEqual({f: self.view(f) for f in self.folders()}, server_before)
        self.assertEqual({f: self.disk_bytes(f) for f in server_before},
                         disk_before)
        after = self.md.snapshot()
        after = {k: v for k, v in after.items()
                 if not k.endswith((".mbsyncstate", ".mbsyncstate.lock"))}
        before = {k: v for k, v in local_before.items()
                  if not k.endswith((".mbsyncstate", ".mbsyncstate.lock"))}
        self.assertEqual(sorted(after), sorted(before))
        self.assertEqual(after, before)

    def assert_same(self, folders=None):
        """Server and Maildir agree: the same folders, and in each the same
        messages (bytes, CRLF and X-TUID aside) with the same flags."""
        srv = self.folders()
        self.assertEqual(srv, self.md.folders())
        for f in folders or srv:
            view = self.view(f)
            local = self.md.msgs(f)
            self.assertEqual(sorted(view), sorted(local), f)
            disk = {subject_of(m.raw): m.raw for m in self.disk(f)}
            self.assertEqual(sorted(disk), sorted(view), f)
            for s, (uid, flags, data) in view.items():
                _, lflags, ldata = local[s]
                self.assertEqual(drop_tuid(ldata), drop_tuid(lf(data)), (f, s))
                self.assertEqual(drop_tuid(disk[s]), drop_tuid(lf(data)), (f, s))
                want = {"\\" + {"S": "Seen", "F": "Flagged", "R": "Answered",
                                "D": "Draft", "T": "Deleted"}[c]
                        for c in lflags if c in "SFRDT"}
                self.assertEqual(flags - {"\\Recent"}, want, (f, s))

    def seed(self):
        """INBOX with five messages (one with From_ lines in the body, one
        multipart), Archive with one, Work with two. Returns the subjects."""
        t = {k: token(k) for k in ("i1", "i2", "i3", "i4", "i5", "a1",
                                   "w1", "w2")}
        inbox = [msg(t["i1"]), msg(t["i2"], "From here\n>From there\n.\n"),
                 msg(t["i3"]), msg(t["i4"], "x" * 3000 + "\n"),
                 msg(t["i5"], "", "MIME-Version: 1.0\nContent-Type: multipart/"
                     "mixed; boundary=B\n") + "--B\n\npart\n--B--\n"]
        self.server.set_mbox("alice", mbox_text(inbox))
        self.put_folder("Archive", [msg(t["a1"])])
        self.put_folder("Work", [msg(t["w1"]), msg(t["w2"])])
        return t


class Mbsync(MbsyncBase):

    def pull(self, t, ssl):
        self.mbsync(ssl)
        self.assertTrue({"INBOX", "Archive", "Work"} <= self.md.folders(),
                        self.md.folders())
        self.assertEqual(sorted(self.md.msgs("INBOX")),
                         sorted(t[k] for k in ("i1", "i2", "i3", "i4", "i5")))
        self.assertEqual(sorted(self.md.msgs("Work")), sorted([t["w1"], t["w2"]]))
        # byte for byte what the mbox holds (mboxrd quoting undone)
        body = self.md.msgs("INBOX")[t["i2"]][2]
        self.assertIn(b"\n\nbody of %s\nFrom here\n>From there\n.\n"
                      % t["i2"].encode(), body)
        self.assert_same()

    def test_mbsync_plain_pull_flags_delete(self):
        """Pull everything, mark seen / flag / delete locally, push, and a
        third run is a no-op; over plain imap (plaintext allowed)."""
        t = self.seed()
        self.pull(t, "None")
        self.md.set_flags("INBOX", t["i1"], "S")
        self.md.set_flags("INBOX", t["i2"], "F")
        self.md.set_flags("Work", t["w2"], "FS")
        self.md.delete("INBOX", t["i3"])
        self.mbsync("None")
        view = self.view("INBOX")
        self.assertEqual(sorted(view), sorted(t[k] for k in ("i1", "i2", "i4", "i5")))
        self.assertEqual(view[t["i1"]][1] - {"\\Recent"}, {"\\Seen"})
        self.assertEqual(view[t["i2"]][1] - {"\\Recent"}, {"\\Flagged"})
        self.assertEqual(view[t["i4"]][1] - {"\\Recent"}, set())
        self.assertEqual(self.view("Work")[t["w2"]][1] - {"\\Recent"},
                         {"\\Seen", "\\Flagged"})
        # the deleted message is gone from the mbox itself
        self.assertEqual(self.disk_subjects("INBOX"),
                         sorted(t[k] for k in ("i1", "i2", "i4", "i5")))
        self.assert_same()
        self.assert_noop("None")

    def test_mbsync_starttls_server_changes_pulled(self):
        """Changes made on the server (another client) reach the Maildir:
        flags, an expunge, new mail; over STARTTLS."""
        t = self.seed()
        self.pull(t, "STARTTLS")
        m = self.server.imap()
        try:
            m.select("INBOX")
            m.store("1", "+FLAGS", "(\\Seen \\Answered)")
            m.store("5", "+FLAGS", "\\Flagged")
            m.store("4", "+FLAGS", "\\Deleted")
            self.assertEqual(m.expunge()[1], [b"4"])
        finally:
            m.logout()
        new = token("n1")
        self.smtp_deliver("alice@test.lan", msg(new))
        self.mbsync("STARTTLS")
        local = self.md.msgs("INBOX")
        self.assertEqual(sorted(local), sorted([t["i1"], t["i2"], t["i3"], t["i5"], new]))
        self.assertEqual(local[t["i1"]][1], "RS")
        self.assertEqual(local[t["i5"]][1], "F")
        self.assert_same()
        self.assert_noop("STARTTLS")

    @harness.slow
    @harness.need_feature("imap:uidplus")
    def test_mbsync_many_messages_8bit(self):
        """300 messages (up to 30 KB, From_ lines) pulled with mbsync's
        pipelining; flags on most, a fifth deleted, 8-bit messages pushed
        to INBOX and to a new folder whose name has a blank."""
        toks = [token("b%d" % i) for i in range(300)]
        self.server.set_mbox("alice", mbox_text(
            [msg(x, "From line %d\n%s\n" % (i, "y" * (i * 97 % 30000)))
             for i, x in enumerate(toks)]))
        self.mbsync("IMAPS")
        self.assertEqual(len(self.md.msgs("INBOX")), 300)
        inbox = self.md.msgs("INBOX")      # read once, not once a message
        for i, x in enumerate(toks):
            if i % 5 == 0:
                self.md.delete("INBOX", x, inbox)
            else:
                self.md.set_flags("INBOX", x, ("S", "FS", "")[i % 3], inbox)
        for i in range(20):
            self.md.add("My Stuff" if i % 2 else "INBOX", msg(
                token("u%d" % i), "From the past\n>From x\n\u00c4\u00d6\u00dc "
                "8bit\n%s\n" % ("z" * (i * 1000))).encode(), "S" if i % 3 else "")
        self.mbsync("IMAPS")
        self.assertEqual(len(self.disk("INBOX")), 250)
        self.assertEqual(len(self.disk("My Stuff")), 10)
        self.assert_same()
        self.assert_noop("IMAPS")

    # Without APPENDUID, mbsync 1.4 looks for what it appended by X-TUID and
    # rejects the (well-formed) answer: "received extraneous data in FETCH
    # response", its own bug (the header fetch runs in no fetch state).
    @harness.need_feature("imap:uidplus")
    def test_mbsync_imaps_folders_both_ways(self):
        """Move a message to another folder, add one to a folder, make a new
        folder (with a level of hierarchy) locally; push; all of it on the
        server's disk; and the other way round; over imaps."""
        t = self.seed()
        self.pull(t, "IMAPS")
        self.md.move("INBOX", t["i4"], "Archive")
        new_w = token("w3")
        self.md.add("Work", msg(new_w).encode())
        new_l = token("l1")
        self.md.add("Lists/postie", msg(new_l).encode(), "S")
        sent = self.mbsync("IMAPS")
        self.assertTrue(any(c.startswith("CREATE") for c in sent), sent)
        self.assertEqual(self.disk_subjects("INBOX"),
                         sorted(t[k] for k in ("i1", "i2", "i3", "i5")))
        self.assertEqual(self.disk_subjects("Archive"), sorted([t["a1"], t["i4"]]))
        self.assertEqual(self.disk_subjects("Work"), sorted([t["w1"], t["w2"], new_w]))
        self.assertTrue(os.path.isdir(os.path.dirname(self.folder_path("Lists/postie"))))
        self.assertEqual(self.disk_subjects("Lists/postie"), [new_l])
        self.assertIn("Lists/postie", self.folders())
        self.assertEqual(self.view("Lists/postie")[new_l][1] - {"\\Recent"}, {"\\Seen"})
        # the moved message arrived whole, mboxrd on disk
        moved = [m for m in self.disk("Archive") if subject_of(m.raw) == t["i4"]][0]
        self.assertIn(b"x" * 3000 + b"\n", moved.raw)
        self.assert_same()
        # the server side makes a folder and files a message into it
        m = self.server.imap()
        try:
            self.assertEqual(m.create("Projects/2026")[0], "OK")
            uid = str(self.view("Work", m)[t["w1"]][0])
            m.select("Work")
            if "MOVE" in m.capabilities:
                typ, data = m.uid("MOVE", uid, "Projects/2026")
            else:
                typ, data = m.uid("COPY", uid, "Projects/2026")
                m.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
                m.expunge()
            self.assertEqual(typ, "OK", data)
        finally:
            m.logout()
        self.mbsync("IMAPS")
        self.assertEqual(sorted(self.md.msgs("Projects/2026")), [t["w1"]])
        self.assertNotIn(t["w1"], self.md.msgs("Work"))
        self.assert_same()
        self.assert_noop("IMAPS")


class MbsyncIdle(MbsyncBase):

    @harness.need_feature("imap:idle")
    def test_idle_session_sees_mbsync_changes(self):
        """A session in IDLE on INBOX sees mbsync's flag changes, expunge
        and new message (APPEND) as untagged FETCH/EXPUNGE/EXISTS."""
        t = self.seed()
        self.mbsync("IMAPS")
        r = Raw(self.server.imap_port)
        try:
            r.login()
            out = r.cmd("S", "SELECT INBOX")
            self.assertIn("* 5 EXISTS", out)
            r.send("I IDLE\r\n")
            self.assertTrue(r.line().startswith("+"))
            self.md.set_flags("INBOX", t["i1"], "S")
            self.md.set_flags("INBOX", t["i2"], "F")
            self.md.delete("INBOX", t["i3"])
            self.mbsync("IMAPS")
            got = []
            while "* 3 EXPUNGE" not in got:
                got.append(r.line(timeout=IO_TIMEOUT))
            self.assertTrue(any(re.match(r"\* 1 FETCH \(.*FLAGS \(\\Seen\)", l)
                                for l in got), got)
            self.assertTrue(any(re.match(r"\* 2 FETCH \(.*FLAGS \(\\Flagged\)", l)
                                for l in got), got)
            self.assertEqual(got.count("* 3 EXPUNGE"), 1, got)
            appended = token("i6")
            self.md.add("INBOX", msg(appended).encode(), "S")
            self.mbsync("IMAPS")
            got = []
            while not any(l.endswith(" EXISTS") for l in got):
                got.append(r.line(timeout=IO_TIMEOUT))
            self.assertIn("* 5 EXISTS", got)
            r.send("DONE\r\n")
            self.assertTrue(r.until("I")[-1].startswith("I OK"))
            out = r.cmd("F", "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects = re.findall(r"^Subject: (\S+)", "\n".join(out), re.M)
            want = [t["i1"], t["i2"], t["i4"], t["i5"], appended]
            self.assertEqual(subjects, want)
        finally:
            r.close()
        self.assert_same(["INBOX"])


# ---- mutt ------------------------------------------------------------------

ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z@`]|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHM]|[\x0e\x0f]")


class Pty:
    """A program on a pseudo-terminal (100x30, vt100), read with bounded
    waits; `screen` is everything it wrote, escape sequences blanked."""

    def __init__(self, argv, env, cwd):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))

        def ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd,
                                     preexec_fn=ctty, close_fds=True)
        os.close(slave)
        self.raw = b""
        self.mark = 0
        self.eof = False

    @property
    def screen(self):
        return ESCAPES.sub(b" ", self.raw).decode("utf-8", "replace")

    def _read(self, wait):
        if self.eof:
            return False
        r, _, _ = select.select([self.master], [], [], wait)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:         # EIO: the program is gone
            data = b""
        if not data:
            self.eof = True
            return False
        self.raw += data
        if len(self.raw) > 8 << 20:
            raise AssertionError("over 8 MiB of terminal output")
        return True

    def expect(self, pattern, timeout=None):
        """Waits until the output since the last expect() matches."""
        deadline = time.monotonic() + (timeout or IO_TIMEOUT)
        rx = re.compile(pattern)
        while True:
            scr = self.screen
            m = rx.search(scr, self.mark)
            if m:
                self.mark = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise AssertionError("no %r on the terminal; last output:\n%s"
                                     % (pattern, scr[-1500:]))
            self._read(min(left, 0.2))

    def settle(self, quiet=0.4, limit=None):
        """Reads until the program has written nothing for `quiet` s."""
        deadline = time.monotonic() + (limit or IO_TIMEOUT)
        while time.monotonic() < deadline and self._read(quiet):
            pass

    def send(self, keys):
        os.write(self.master, keys.encode())

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or IO_TIMEOUT)
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError("still running; last output:\n%s"
                                 % self.screen[-1500:])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


class Mutt(MbsyncBase):
    """mutt over imaps; mbsync is the other client that must agree."""

    def setUp(self):
        super().setUp()
        need("mutt", "mutt")

    def mutt(self, *args, conf=()):
        lines = [
            "set imap_user=alice",
            'set imap_pass="%s"' % PASSWORD,
            'set folder="imaps://alice@127.0.0.1:%d/"' % self.server.imaps_port,
            'set spoolfile="+INBOX"',
            "set ssl_ca_certificates_file=%s" % ip_cert()[0],
            "set certificate_file=%s" % os.path.join(self.work, "certs"),
            'set header_cache=""', 'set message_cachedir=""',
            "set sort=mailbox-order", "set delete=yes", "set move=no",
            "set quit=yes", "set confirmcreate=yes", "set wait_key=no",
            "set beep=no", "set mark_old=no", "set imap_peek=yes",
            "set record=\"\"", "set postponed=%s" % os.path.join(self.work, "postponed"),
            "set tmpdir=%s" % self.work, "set mbox_type=mbox",
            'set status_format="POSTIE-STATUS %f msgs=%m del=%d"',
            'set index_format="IDX %C [%Z] %s"',
            "set timeout=1", "set imap_idle=yes", "set mail_check=1",
        ] + list(conf)
        rc = os.path.join(self.work, "muttrc")
        with open(rc, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = {"HOME": self.work, "TERM": "vt100", "PATH": os.environ["PATH"],
               "LANG": "C.UTF-8", "MAIL": self.server.path("mail", "alice")}
        p = Pty(["mutt", "-n", "-F", rc] + list(args), env, self.work)
        self.addCleanup(p.close)
        return p

    def jump(self, p, n):
        p.send(str(n))
        p.expect("Jump to message")
        p.send("\r")
        p.settle()

    def mutt_inbox(self, n, conf=()):
        """mutt on an INBOX of n new messages; (pty, their subjects)."""
        t = [token("m%d" % i) for i in range(1, n + 1)]
        self.server.set_mbox("alice", mbox_text([msg(x) for x in t]))
        p = self.mutt(conf=conf)
        p.expect(r"POSTIE-STATUS \S*INBOX msgs=%d" % n)
        p.settle()
        return p, t

    def test_mutt_read_flag_delete(self):
        p, t = self.mutt_inbox(4)
        self.jump(p, 1)
        p.send("\r")                    # read message 1 in the pager
        p.expect("body of " + t[0])
        p.send("q")
        p.expect(r"POSTIE-STATUS")
        self.jump(p, 2)
        p.send("F")                     # flag message 2
        p.settle()
        self.jump(p, 3)
        p.send("d")                     # delete message 3
        p.settle()
        p.send("$")                     # sync: flags out, 3 expunged
        p.expect(r"3 kept, 1 deleted")
        p.settle()
        # the sync has reached the server while mutt is still in INBOX
        view = self.view("INBOX")
        self.assertEqual(sorted(view), sorted([t[0], t[1], t[3]]))
        self.assertEqual(self.disk_subjects("INBOX"), sorted([t[0], t[1], t[3]]))
        p.send("q")
        self.assertEqual(p.wait(CLIENT_TIMEOUT), 0, p.screen[-1500:])
        view = self.view("INBOX")
        self.assertEqual(view[t[0]][1] - {"\\Recent"}, {"\\Seen"})
        self.assertEqual(view[t[1]][1] - {"\\Recent"}, {"\\Flagged"})
        self.assertEqual(view[t[3]][1] - {"\\Recent"}, set())
        # and on disk: three messages, unchanged
        for m in self.disk("INBOX"):
            s = subject_of(m.raw)
            self.assertEqual(m.raw, (msg(s)).encode())
        self.check_other_client_sees({"INBOX": {t[0]: "S", t[1]: "F", t[3]: ""}})

    def test_mutt_save_to_new_folder(self):
        p, t = self.mutt_inbox(3)
        self.jump(p, 2)
        p.send("s")                     # save to =Archive, a new folder
        p.expect("Save to mailbox")
        p.send("\x15=Archive\r")
        p.expect(r"Create Archive\?")
        p.send("y")
        p.settle()
        self.jump(p, 3)
        p.send("F")
        p.send("$")
        p.expect(r"2 kept, 1 deleted")
        p.settle()
        p.send("q")
        self.assertEqual(p.wait(CLIENT_TIMEOUT), 0, p.screen[-1500:])
        self.assertIn("Archive", self.folders())
        self.assertEqual(self.disk_subjects("INBOX"), sorted([t[0], t[2]]))
        self.assertEqual(self.disk_subjects("Archive"), [t[1]])
        self.assertEqual(self.disk("Archive")[0].raw, msg(t[1]).encode())
        self.assertEqual(self.view("INBOX")[t[2]][1] - {"\\Recent"}, {"\\Flagged"})
        self.check_other_client_sees({"INBOX": {t[0]: "", t[2]: "F"},
                                      "Archive": {t[1]: ""}})

    def test_mutt_sees_other_clients(self):
        """While mutt shows INBOX, another session flags and expunges and
        new mail is delivered: mutt's index follows (IDLE or NOOP; with
        CONDSTORE when the server has it, and a header cache)."""
        conf = ["set header_cache=%s" % os.path.join(self.work, "hcache")]
        if "imap:condstore" in harness.features():
            conf.append("set imap_condstore=yes")
        p, t = self.mutt_inbox(3, conf)
        m = self.server.imap()
        try:
            m.select("INBOX")
            m.store("1", "+FLAGS", "\\Flagged")
            m.store("2:3", "+FLAGS", "\\Deleted")
            self.assertEqual(m.expunge()[1], [b"2", b"2"])
        finally:
            m.logout()
        new = token("n")
        self.smtp_deliver("alice@test.lan", msg(new))
        p.expect(new, timeout=CLIENT_TIMEOUT)
        p.settle()
        start = p.mark = len(p.screen)
        p.send("\x0c")                  # redraw the whole screen
        p.expect(r"IDX 1 \[..!\] " + t[0])
        p.expect(r"IDX 2 \[...\] " + new)
        p.expect(r"POSTIE-STATUS \S*INBOX msgs=2 ")
        screen = p.screen[start:p.mark]
        self.assertNotIn(t[1], screen)
        self.assertNotIn(t[2], screen)
        p.send("q")
        self.assertEqual(p.wait(CLIENT_TIMEOUT), 0, p.screen[-1500:])
        view = self.view("INBOX")
        self.assertEqual(sorted(view), sorted([t[0], new]))
        self.assertEqual(view[t[0]][1] - {"\\Recent"}, {"\\Flagged"})
        # changes while mutt is away reach its header cache when it comes
        # back (with CONDSTORE: FETCH CHANGEDSINCE)
        m = self.server.imap()
        try:
            m.select("INBOX")
            m.store("1", "-FLAGS", "\\Flagged")
            m.store("2", "+FLAGS", "(\\Flagged \\Seen)")
        finally:
            m.logout()
        p = self.mutt(conf=conf)
        p.expect(r"POSTIE-STATUS \S*INBOX msgs=2 ")
        p.settle()
        p.mark = len(p.screen)
        p.send("\x0c")
        p.expect(r"IDX 1 \[[^]!]*\] " + t[0])
        p.expect(r"IDX 2 \[ .!\] " + new)
        p.send("q")
        self.assertEqual(p.wait(CLIENT_TIMEOUT), 0, p.screen[-1500:])

    def check_other_client_sees(self, want):
        """mbsync, the other client, pulls what mutt did."""
        self.mbsync("IMAPS")
        for folder, msgs in want.items():
            local = self.md.msgs(folder)
            self.assertEqual({s: f for s, (_, f, _) in local.items()}, msgs)

    def test_mutt_and_mailbox_read_the_layout(self):
        """What IMAP left on disk is plain mbox: Python's mailbox module
        and mutt (opening the files themselves) read every folder."""
        t = [token("d%d" % i) for i in range(1, 5)]
        self.server.set_mbox("alice", mbox_text(
            [msg(t[0], "From the start\n"), msg(t[1]), msg(t[2])]))
        self.put_folder("Work", [msg(t[3], ">From quoted\n")])
        m = self.server.imap()
        try:
            m.select("INBOX")
            m.store("2", "+FLAGS", "\\Deleted")
            m.expunge()
            m.store("1", "+FLAGS", "\\Seen")
            m.select("Work")
            m.store("1", "+FLAGS", "\\Flagged")
            want = {"INBOX": self.view("INBOX", m), "Work": self.view("Work", m)}
        finally:
            m.logout()
        for folder, view in want.items():
            box = mailbox.mbox(self.folder_path(folder), create=False)
            try:
                got = {}
                for mm in box:
                    data = mm.as_bytes(policy=email.policy.compat32)
                    got[subject_of(data)] = data
            finally:
                box.close()
            self.assertEqual(sorted(got), sorted(view), folder)
            for s, (_, _, data) in view.items():
                # the module reads mboxo: From_ quoting stays as written
                head_i, _, body_i = lf(data).partition(b"\n\n")
                head_m, _, body_m = got[s].partition(b"\n\n")
                self.assertEqual(body_m.rstrip(b"\n"), re.sub(
                    rb"(?m)^(>*From )", rb">\1", body_i).rstrip(b"\n"), s)
                parsed = email.parser.BytesParser().parsebytes(head_i + b"\n\n")
                self.assertEqual(parsed["Message-ID"], "<%s@example.net>" % s)
        # mutt opens the files read-only and counts the same messages
        for folder, n in (("INBOX", 2), ("Work", 1)):
            p = self.mutt("-R", "-f", self.folder_path(folder))
            p.expect(r"POSTIE-STATUS \S+ msgs=%d del=0" % n)
            p.settle()
            if folder == "Work":
                p.send("\r")
                p.expect("body of " + t[3])
                p.send("q")
                p.expect("POSTIE-STATUS")
            p.send("q")
            self.assertEqual(p.wait(CLIENT_TIMEOUT), 0, p.screen[-1500:])


if __name__ == "__main__":
    unittest.main()


def mutt_on_mbox(test, user, msgs):
    """mutt on USER's mbox file through a pty (its own muttrc and HOME in
    the server's folder), once its index shows MSGS messages."""
    work = test.server.path("muttwork")
    os.makedirs(work, exist_ok=True)
    rc = os.path.join(work, "muttrc")
    with open(rc, "w") as f:
        f.write("set mbox_type=mbox\nset mark_old=no\nset quit=yes\n"
                "set wait_key=no\nset move=no\nset beep=no\n"
                "set sort=mailbox-order\nset tmpdir=%s\nset folder=%s\n"
                'set status_format="POSTIE-STATUS msgs=%%m"\n' % (work, work))
    env = {"HOME": work, "TERM": "vt100", "PATH": os.environ["PATH"],
           "LANG": "C.UTF-8"}
    p = Pty(["mutt", "-n", "-F", rc, "-f", test.server.path("mail", user)],
            env, work)
    test.addCleanup(p.close)
    p.expect(r"POSTIE-STATUS msgs=%d" % msgs)
    p.settle()
    return p
