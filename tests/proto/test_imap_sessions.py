"""Many IMAP sessions on one mailbox (RFC 3501 7.4.1, RFC 7162): Python
imaplib sessions interleaving STORE, EXPUNGE, APPEND, FETCH and IDLE;
flags set by one session survive another's EXPUNGE, mod-sequences only
grow, EXPUNGE never fails because another session changed the mailbox,
no reply overflows a session's buffer, UIDVALIDITY changes when a folder
is deleted and created again; and a bounded random run of ten clients
checking the same invariants. Read-only commands write nothing."""
import fcntl
import imaplib
import os
import random
import re
import socket
import threading
import unittest

import harness
import test_imap
from harness import IO_TIMEOUT
from test_imap import ImapBase, Raw

FLAGS_RE = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\)")
MODSEQ_RE = re.compile(rb"UID (\d+)[^)]*MODSEQ \((\d+)\)|MODSEQ \((\d+)\)[^)]*UID (\d+)")
BAD_LOG = ("does not fit", "Stale file handle", "changed by another program",
           "output overflow")


def body(tag):
    return ("From: t@example.net\r\nSubject: %s\r\n\r\nbody %s\r\n"
            % (tag, tag)).encode()


def uid_flags(data):
    """{uid: set of flags but \\Recent} from a FETCH (UID FLAGS) answer."""
    out = {}
    for item in data:
        if isinstance(item, tuple):
            item = item[0]
        if not item:
            continue
        m = FLAGS_RE.search(item)
        if m:
            out[int(m.group(1))] = set(m.group(2).decode().split()) - {"\\Recent"}
    return out


def uid_modseqs(data):
    out = {}
    for item in data:
        if isinstance(item, tuple):
            item = item[0]
        m = MODSEQ_RE.search(item or b"")
        if m:
            if m.group(1):
                out[int(m.group(1))] = int(m.group(2))
            else:
                out[int(m.group(4))] = int(m.group(3))
    return out


def select_condstore(m):
    typ, data = m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    if typ == "OK":
        m.state = "SELECTED"
    return typ


class ImapSessions(ImapBase):

    def setUp(self):
        super().setUp()
        self.log_mark = len(self.server.log())

    def new_log(self):
        return self.server.log()[self.log_mark:]

    def assert_clean_log(self):
        log = self.new_log()
        for bad in BAD_LOG:
            self.assertNotIn(bad, log)

    def fill(self, m, n, prefix="m"):
        for i in range(n):
            typ, data = m.append("INBOX", None, None, body("%s%d" % (prefix, i)))
            self.assertEqual(typ, "OK", data)

    def all_flags(self):
        c = self.server.imap()
        try:
            typ, _ = c.select("INBOX", readonly=True)
            self.assertEqual(typ, "OK")
            typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
            self.assertEqual(typ, "OK", data)
            return uid_flags(data)
        finally:
            c.logout()

    @harness.need_feature("imap:literal+")
    def test_pipelined_batch_after_locked_expunge(self):
        """FETCH, FETCH, STORE, EXPUNGE, APPEND in one batch while the
        mbox is locked elsewhere: the EXPUNGE waits, answers from a
        later loop pass with replies still queued, and the APPEND read
        long before must still be run and answered."""
        a = self.server.imap()
        big = ("x" * 70 + "\r\n") * 400
        try:
            for i in range(12):
                typ, data = a.append("INBOX", None, None,
                                     body("b%d" % i)[:-2] + big.encode())
                self.assertEqual(typ, "OK", data)
        finally:
            a.logout()
        mbox = self.server.path("mail", "alice")
        msg = body("late")
        batch = ("f1 FETCH 1:* (FLAGS BODY.PEEK[])\r\n"
                 "f2 FETCH 3 (UID BODY.PEEK[1])\r\n"
                 "s STORE 2 +FLAGS.SILENT (\\Deleted)\r\n"
                 "e EXPUNGE\r\n"
                 "a APPEND INBOX {%d+}\r\n" % len(msg)).encode() + msg + b"\r\n"
        for rnd in range(8):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(IO_TIMEOUT)
            sock.connect(("127.0.0.1", self.server.imap_port))
            r = Raw(None, sock=sock)
            try:
                r.login()
                self.assertTrue(r.cmd("S", "SELECT INBOX")[-1].startswith("S OK"))
                fd = os.open(mbox, os.O_RDWR)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                    r.send(batch)
                    # The answers up to the STORE come; the EXPUNGE waits.
                    got = r.until("s")
                    self.assertTrue(got[-1].startswith("s OK"), got[-3:])
                finally:
                    os.close(fd)        # the lock goes: EXPUNGE goes on
                tags = {}
                for tag in ("e", "a"):
                    ln = r.until(tag)[-1]
                    tags[tag] = ln
                self.assertTrue(tags["e"].startswith("e OK"), (rnd, tags))
                self.assertTrue(tags["a"].startswith("a OK"), (rnd, tags))
                self.assertTrue(r.cmd("n", "NOOP")[-1].startswith("n OK"))
            finally:
                r.close()
        self.assert_clean_log()

    def test_lock_waiters_go_first_come(self):
        """An EXPUNGE waits while another program locks the mbox (no NO
        [INUSE]); an APPEND that comes once the lock is free, before the
        EXPUNGE's next try, waits its turn behind it: the EXPUNGE goes
        first, so its answer tells of no new message. (imaptest stress:
        a rewrite lost the lock to a stream of appends until its wait
        ran out.)"""
        a = self.server.imap()
        try:
            self.fill(a, 3)
            a.select("INBOX")
            a.store("2", "+FLAGS", "(\\Deleted)")
        finally:
            a.logout()
        mbox = self.server.path("mail", "alice")
        ra, rb, rc = (self.raw() for _ in range(3))
        msg = body("queued")
        try:
            for r in (ra, rb, rc):
                r.login()
            self.assertTrue(ra.cmd("S", "SELECT INBOX")[-1].startswith("S OK"))
            fd = os.open(mbox, os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                ra.send(b"e EXPUNGE\r\n")
                # a round trip on a third session: the EXPUNGE was read
                # (and queued) in that pass or before
                self.assertTrue(rc.cmd("n1", "NOOP")[-1].startswith("n1 OK"))
            finally:
                os.close(fd)
            # The lock is free, the EXPUNGE not yet retried: an APPEND
            # that comes now must still wait for it, not jump the line.
            rb.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
            self.assertTrue(rb.line().startswith("+"))
            rb.send(msg + b"\r\n")
            got_e = ra.until("e")
            got_a = rb.until("a")
            self.assertTrue(got_e[-1].startswith("e OK"), got_e)
            self.assertTrue(got_a[-1].startswith("a OK"), got_a)
            self.assertEqual([ln for ln in got_e if "EXISTS" in ln], [], got_e)
            self.assertIn("* 2 EXPUNGE", got_e)
            out = ra.cmd("n", "NOOP")
            self.assertIn("* 3 EXISTS", out)
        finally:
            for r in (ra, rb, rc):
                r.close()
        self.assert_clean_log()

    @harness.need_feature("imap:uidplus")
    def test_open_waits_behind_rewrites(self):
        """STATUS and SELECT that must index new mail wait in line
        behind EXPUNGEs that replace the mbox meanwhile, and go on with
        the file they then hold (imaptest stress under ASan: "Cannot
        open the mailbox: Stale file handle" when rewrites kept landing
        while one waited)."""
        a = self.server.imap()
        try:
            self.fill(a, 4)
            a.select("INBOX")
            a.store("1:3", "+FLAGS", "(\\Deleted)")
        finally:
            a.logout()
        mbox = self.server.path("mail", "alice")
        rs = [self.raw() for _ in range(5)]
        try:
            for r in rs:
                r.login()
            for r in rs[:3]:
                self.assertTrue(r.cmd("S", "SELECT INBOX")[-1].startswith("S OK"))
            # new mail the index does not know yet: opening it needs the lock
            self.smtp_deliver("alice@test.lan", "Subject: new\n\nnew mail\n")
            fd = os.open(mbox, os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                rs[0].send(b"s1 UID EXPUNGE 1\r\n")
                self.assertTrue(rs[4].cmd("n1", "NOOP")[-1].startswith("n1 OK"))
                rs[3].send(b"t STATUS INBOX (MESSAGES)\r\n")
                rs[4].send(b"u SELECT INBOX\r\n")
                self.assertTrue(rs[2].cmd("n2", "NOOP")[-1].startswith("n2 OK"))
                rs[1].send(b"s2 UID EXPUNGE 2\r\n")
                rs[2].send(b"s3 UID EXPUNGE 3\r\n")
            finally:
                os.close(fd)
            for r, tag in ((rs[0], "s1"), (rs[1], "s2"), (rs[2], "s3"),
                           (rs[3], "t"), (rs[4], "u")):
                got = r.until(tag)
                self.assertTrue(got[-1].startswith(tag + " OK"), got)
            self.assertEqual(rs[3].cmd("t2", "STATUS INBOX (MESSAGES)")[0],
                             "* STATUS \"INBOX\" (MESSAGES 2)")
        finally:
            for r in rs:
                r.close()
        self.assertNotIn("Stale file handle", self.new_log())

    @harness.need_feature("imap:condstore")
    def test_modseq_of_a_message_expunged_elsewhere(self):
        """A message another session expunged, before this one is told:
        its MODSEQ must not fall back to the older view's (imaptest
        stress: "MODSEQ dropped")."""
        a, b = self.server.imap(), self.server.imap()
        try:
            self.fill(a, 3)
            for m in (a, b):
                self.assertEqual(select_condstore(m), "OK")
            # b's EXPUNGE replaces the index a's view reads
            b.store("3", "+FLAGS", "(\\Deleted)")
            self.assertEqual(b.expunge()[0], "OK")
            # a later change lives only in the new index; a sees it
            b.store("1", "+FLAGS", "(\\Flagged)")
            typ, data = a.uid("FETCH", "1:*", "(UID MODSEQ)")
            self.assertEqual(typ, "OK", data)
            before = uid_modseqs(data)
            # b expunges that message too; a is not told yet (FETCH)
            b.store("1", "+FLAGS", "(\\Deleted)")
            self.assertEqual(b.expunge()[0], "OK")
            typ, data = a.uid("FETCH", "1:*", "(UID MODSEQ)")
            self.assertEqual(typ, "OK", data)
            after = uid_modseqs(data)
            uid1 = min(before)
            self.assertIn(uid1, after, data)
            self.assertGreaterEqual(after[uid1], before[uid1], (before, after))
        finally:
            a.logout()
            b.logout()
        self.assert_clean_log()

    def test_many_flag_changes_pushed_on_noop(self):
        """More flag changes by another session than the pending list
        holds: NOOP still tells every one as FETCH FLAGS."""
        a = self.server.imap()
        r = Raw(self.server.imap_port)
        try:
            self.fill(a, 50)
            r.login()
            self.assertTrue(r.cmd("S", "SELECT INBOX")[-1].startswith("S OK"))
            a.select("INBOX")
            typ, data = a.store("1:50", "+FLAGS.SILENT", "(\\Flagged)")
            self.assertEqual(typ, "OK", data)
            got = set()
            for tag in ("n1", "n2"):
                for ln in r.cmd(tag, "NOOP"):
                    m = re.match(r"\* (\d+) FETCH \(.*FLAGS \(([^)]*)\)", ln)
                    if m and "\\Flagged" in m.group(2):
                        got.add(int(m.group(1)))
            self.assertEqual(got, set(range(1, 51)))
        finally:
            a.logout()
            r.close()
        self.assert_clean_log()

    def test_store_survives_other_expunge(self):
        a, b = self.server.imap(), self.server.imap()
        try:
            self.fill(a, 4)
            a.select("INBOX")
            b.select("INBOX")
            a.store("1", "+FLAGS", "\\Deleted")
            self.assertEqual(a.expunge()[0], "OK")
            # b still numbers the messages as before a's EXPUNGE
            typ, data = b.store("3", "+FLAGS", "(\\Answered)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"\\Answered", data[0])
            typ, data = b.uid("STORE", "4", "+FLAGS", "(\\Flagged)")
            self.assertEqual(typ, "OK", data)
            # a STORE on the message a expunged: nothing, and OK
            typ, data = b.store("1", "+FLAGS", "(\\Seen)")
            self.assertEqual(typ, "OK", data)
            flags = self.all_flags()
            self.assertEqual(sorted(flags), [2, 3, 4])
            self.assertIn("\\Answered", flags[3])
            self.assertIn("\\Flagged", flags[4])
            # b learns of the expunge at NOOP, then sees the same
            typ, _ = b.noop()
            self.assertEqual(typ, "OK")
            self.assertEqual(b.response("EXPUNGE")[1], [b"1"])
            b.response("FETCH")
            typ, data = b.fetch("1:*", "(UID FLAGS)")
            got = uid_flags(data)
            self.assertIn("\\Answered", got[3])
            self.assertEqual(sorted(got), [2, 3, 4])
        finally:
            a.logout()
            b.logout()
        self.assert_clean_log()

    def test_expunge_from_a_stale_view(self):
        a, b = self.server.imap(), self.server.imap()
        try:
            self.fill(a, 5)
            a.select("INBOX")
            b.select("INBOX")
            a.store("2", "+FLAGS", "\\Deleted")
            self.assertEqual(a.expunge()[0], "OK")
            # b has not synced: its message 4 is UID 4
            typ, data = b.store("4", "+FLAGS", "(\\Deleted)")
            self.assertEqual(typ, "OK", data)
            typ, data = b.expunge()
            self.assertEqual(typ, "OK", data)
            # b is told of both, in its own numbering: 2 first, then
            # UID 4 which was 4 and is 3 once 2 went
            self.assertEqual(data, [b"2", b"3"])
            # MOVE by sequence number from the stale view of a
            a.create("Other")
            typ, data = a.fetch("1:*", "(UID)")
            typ, data = a.copy("1", "Other")
            self.assertEqual(typ, "OK", data)
            self.assertEqual(sorted(self.all_flags()), [1, 3, 5])
        finally:
            a.logout()
            b.logout()
        self.assert_clean_log()

    @harness.need_feature("imap:condstore")
    def test_modseq_only_grows(self):
        a, b = self.server.imap(), self.server.imap()
        seen = {}
        highest = [0]

        def note(data):
            for uid, ms in uid_modseqs(data).items():
                self.assertGreaterEqual(ms, seen.get(uid, 0), (uid, data))
                seen[uid] = ms

        def note_hms(m):
            typ, data = m.status("INBOX", "(HIGHESTMODSEQ)")
            v = int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1))
            self.assertGreaterEqual(v, highest[0])
            highest[0] = v
        try:
            self.fill(a, 6)
            for m in (a, b):
                select_condstore(m)
            for rnd in range(3):
                typ, data = a.uid("STORE", "1:*", "+FLAGS", "(\\Seen)")
                self.assertEqual(typ, "OK", data)
                b.uid("STORE", "%d" % (rnd + 2), "+FLAGS", "(\\Deleted)")
                typ, _ = b.expunge()
                self.assertEqual(typ, "OK")
                typ, data = a.uid("STORE", "1:*", "+FLAGS", "(\\Flagged)")
                self.assertEqual(typ, "OK", data)
                note(data)
                for m in (a, b):
                    typ, data = m.uid("FETCH", "1:*", "(UID MODSEQ)")
                    self.assertEqual(typ, "OK", data)
                    note(data)
                    note_hms(m)
                    m.noop()
        finally:
            a.logout()
            b.logout()
        self.assert_clean_log()

    @harness.need_feature("imap:condstore")
    @harness.need_feature("imap:idle")
    def test_many_flag_changes_to_an_idle_session_do_not_overflow(self):
        a = self.server.imap()
        r = self.raw()
        try:
            self.fill(a, 40)
            a.select("INBOX")
            r.login()
            out = r.cmd("S", "SELECT INBOX (CONDSTORE)")
            self.assertTrue(out[-1].startswith("S OK"), out)
            # one STORE per message: more news than fit one buffer
            for i in range(1, 17):
                typ, data = a.store(str(i), "+FLAGS",
                                    "(\\Flagged \\Answered \\Draft)")
                self.assertEqual(typ, "OK", data)
            out = r.cmd("N", "NOOP")
            self.assertTrue(out[-1].startswith("N OK"), out)
            told = [l for l in out if "\\Draft" in l]
            self.assertEqual(len(told), 16, out)
            for i in range(17, 41):
                a.store(str(i), "+FLAGS", "(\\Flagged \\Answered)")
            r.send("I IDLE\r\n")
            self.assertTrue(r.line().startswith("+"))
            for i in range(1, 41):
                a.store(str(i), "+FLAGS", "(\\Seen)")
            a.store("1:5", "+FLAGS", "(\\Deleted)")
            a.expunge()
            r.send("DONE\r\n")
            out = r.until("I")
            self.assertTrue(out[-1].startswith("I OK"), out)
            out = r.cmd("F", "FETCH 1:* (UID FLAGS)")
            self.assertTrue(out[-1].startswith("F OK"), out)
            got = {}
            for l in out:
                mm = re.search(r"UID (\d+) FLAGS \(([^)]*)\)", l)
                if mm:
                    got[int(mm.group(1))] = mm.group(2).split()
            self.assertEqual(sorted(got), list(range(6, 41)))
            for uid, fl in got.items():
                self.assertIn("\\Seen", fl)
                self.assertIn("\\Flagged", fl)
        finally:
            a.logout()
            r.close()
        self.assert_clean_log()

    def test_delete_create_changes_uidvalidity(self):
        a = self.server.imap()
        try:
            vals = []
            for rnd in range(3):
                typ, data = a.create("Again")
                self.assertEqual(typ, "OK", data)
                typ, data = a.append("Again", None, None, body("again%d" % rnd))
                self.assertEqual(typ, "OK", data)
                typ, data = a.status("Again", "(UIDVALIDITY UIDNEXT)")
                m = re.search(rb"UIDVALIDITY (\d+)", data[0])
                vals.append(int(m.group(1)))
                self.assertIn(b"UIDNEXT 2", data[0])
                typ, data = a.delete("Again")
                self.assertEqual(typ, "OK", data)
            self.assertEqual(len(set(vals)), 3, vals)
        finally:
            a.logout()

    def test_read_only_commands_write_nothing(self):
        a = self.server.imap()
        idx = self.server.path("mail", ".postie", "alice.idx")
        mbox = self.server.path("mail", "alice")
        try:
            self.fill(a, 5)
            a.select("INBOX")
            a.store("2", "+FLAGS", "(\\Seen)")
            a.close()

            def snap():
                out = []
                for p in (idx, mbox):
                    st = os.stat(p)
                    out.append((p, st.st_ino, st.st_size, st.st_mtime_ns))
                out.append(sorted(os.listdir(os.path.dirname(idx))))
                out.append(os.path.exists(mbox + ".lock"))
                return out
            before = snap()
            for rnd in range(3):
                typ, data = a.status("INBOX", "(MESSAGES UNSEEN UIDNEXT RECENT)")
                self.assertEqual(typ, "OK", data)
                typ, data = a.select("INBOX", readonly=True)
                self.assertEqual(typ, "OK", data)
                typ, data = a.fetch("1:*", "(FLAGS BODY.PEEK[] BODYSTRUCTURE)")
                self.assertEqual(typ, "OK", data)
                typ, data = a.search(None, "UNSEEN")
                self.assertEqual(typ, "OK", data)
                a.close()
                self.assertEqual(snap(), before, "after round %d" % rnd)
            # a read-write look that changes nothing writes nothing either
            a.select("INBOX")
            a.fetch("1:*", "(FLAGS BODY.PEEK[HEADER])")
            a.store("2", "+FLAGS", "(\\Seen)")
            a.close()
            self.assertEqual(snap(), before)
        finally:
            a.logout()


@harness.need_feature("imap:condstore")
@harness.need_feature("imap:idle")
@harness.need_feature("imap:uidplus")
class ImapStress(ImapBase):
    """Ten clients, random operations, a bounded number of each."""

    CLIENTS = 10
    OPS = 40

    def test_random_clients_keep_invariants(self):
        setup = self.server.imap()
        for i in range(20):
            setup.append("INBOX", None, None, body("seed%d" % i))
        setup.logout()
        mark = len(self.server.log())
        lock = threading.Lock()
        added = {}              # uid -> flags some client added (never removed)
        mine = {}               # client -> UIDs it appended
        problems = []
        modseq = {}

        def check_modseqs(data):
            for uid, ms in uid_modseqs(data).items():
                with lock:
                    if ms < modseq.get(uid, 0):
                        problems.append("modseq of %d went back: %d < %d"
                                        % (uid, ms, modseq[uid]))
                    modseq[uid] = max(ms, modseq.get(uid, 0))

        def client(n):
            rnd = random.Random(1000 + n)
            m = self.server.imap()
            mine[n] = []
            try:
                typ = select_condstore(m)
                if typ != "OK":
                    problems.append("select %s" % typ)
                    return
                for op in range(self.OPS):
                    kind = rnd.choice(["store", "store", "fetch", "append",
                                       "delete", "noop", "search", "body"])
                    if kind == "store":
                        flag = rnd.choice(["\\Flagged", "\\Answered", "\\Draft",
                                           "\\Seen"])
                        uid = rnd.randint(1, 40)
                        typ, data = m.uid("STORE", str(uid), "+FLAGS", "(%s)" % flag)
                        got = uid_flags(data)
                        if typ == "OK" and uid in got and flag in got[uid]:
                            with lock:
                                added.setdefault(uid, set()).add(flag)
                    elif kind == "fetch":
                        typ, data = m.fetch("1:*", "(UID FLAGS MODSEQ)")
                        if typ == "OK":
                            check_modseqs(data)
                    elif kind == "append":
                        typ, data = m.append("INBOX", None, None,
                                             body("c%d-%d" % (n, op)))
                        mm = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                        if typ == "OK" and mm:
                            mine[n].append(int(mm.group(1)))
                    elif kind == "delete" and mine[n]:
                        uid = mine[n].pop(0)
                        typ, data = m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
                        if typ == "OK":
                            typ, data = m.expunge()
                    elif kind == "search":
                        typ, data = m.search(None, "FLAGGED")
                    elif kind == "body":
                        typ, data = m.fetch("1", "(BODY.PEEK[])")
                    else:
                        typ, data = m.noop()
                    if typ != "OK":
                        problems.append("client %d %s: %s %r" % (n, kind, typ, data))
                m.logout()
            except Exception as e:      # noqa: BLE001 - reported below
                problems.append("client %d: %r" % (n, e))

        def idler():
            r = Raw(self.server.imap_port)
            try:
                r.login()
                r.cmd("S", "SELECT INBOX")
                for k in range(5):
                    r.send("I%d IDLE\r\n" % k)
                    if not r.line().startswith("+"):
                        problems.append("idle refused")
                        return
                    try:
                        for _ in range(50):
                            r.line(timeout=0.2)
                    except Exception:   # noqa: BLE001 - quiet is fine
                        pass
                    r.send("DONE\r\n")
                    out = r.until("I%d" % k)
                    if not out[-1].startswith("I%d OK" % k):
                        problems.append("idle: %r" % out[-1])
            except Exception as e:      # noqa: BLE001
                problems.append("idler: %r" % e)
            finally:
                r.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(self.CLIENTS)]
        threads.append(threading.Thread(target=idler))
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT * 10)
        self.assertFalse(any(t.is_alive() for t in threads), "clients stuck")
        self.assertEqual(problems, [])
        self.assertIsNone(self.server.proc.poll(), "daemon died")
        # no flag a client was told it set is missing from a message
        c = self.server.imap()
        c.select("INBOX", readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        c.logout()
        final = uid_flags(data)
        lost = {uid: want - final[uid] for uid, want in added.items()
                if uid in final and want - final[uid]}
        self.assertEqual(lost, {})
        log = self.server.log()[mark:]
        for bad in BAD_LOG:
            self.assertNotIn(bad, log)


if __name__ == "__main__":
    unittest.main()
