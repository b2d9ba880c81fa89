"""The board service files: the daemon starts under the privileges the
systemd unit (board/systemd/postie.service) leaves it."""
import os
import pwd
import re
import unittest
from unittest import mock

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "board", "systemd", "postie.service")


def unit_settings():
    """CapabilityBoundingSet (lower case, without CAP_) and UMask."""
    caps, umask = None, "0022"
    with open(UNIT) as f:
        for line in f:
            m = re.match(r"CapabilityBoundingSet=(.*)", line)
            if m:
                caps = [c.lower().replace("cap_", "") for c in m.group(1).split()]
            m = re.match(r"UMask=(\d+)", line)
            if m:
                umask = m.group(1)
    return caps, umask


class SystemdUnit(harness.TestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root to start under a capability set")
        if not os.path.exists("/usr/bin/setpriv"):
            self.skipTest("no setpriv")
        self.srv = None

    def tearDown(self):
        if self.srv is not None:
            self.srv.stop()
            self.srv.cleanup()
        super().tearDown()

    def start_as_unit(self, make_spool):
        """Starts postie (run_as nobody) as the unit does: its bounding
        set, no inheritable capabilities, no new privileges, its umask."""
        caps, umask = unit_settings()
        self.assertTrue(caps, "no CapabilityBoundingSet in the unit")
        nobody = pwd.getpwnam("nobody")
        self.srv = harness.Server(extra="run_as nobody\n")
        os.chmod(self.srv.dir, 0o755)
        os.chown(self.srv.path("mail"), nobody.pw_uid, nobody.pw_gid)
        if make_spool:      # the unit's ExecStartPre (install -d -m 0700)
            os.mkdir(self.srv.path("spool"), 0o700)
            os.chown(self.srv.path("spool"), nobody.pw_uid, nobody.pw_gid)
        wrap = ["/usr/bin/setpriv", "--bounding-set",
                "-all," + ",".join("+" + c for c in caps),
                "--inh-caps=-all", "--no-new-privs", "--",
                "/bin/sh", "-c", 'umask %s; exec "$@"' % umask, "sh"]
        with mock.patch.object(harness, "QEMU", wrap + harness.QEMU):
            self.srv.start()
        self.assertEqual(os.stat(self.srv.path("spool")).st_mode & 0o7777, 0o711)
        self.assertEqual(os.stat(self.srv.path("spool")).st_uid, nobody.pw_uid)
        if "sendmail" in harness.features():
            self.assertEqual(os.stat(self.srv.path("spool", "maildrop")).st_mode
                             & 0o7777, 0o1733)
        self.assertEqual(self.srv.stop(), 0, self.srv.log()[-1500:])

    def test_starts_with_the_spool_made_by_exec_start_pre(self):
        self.start_as_unit(make_spool=True)

    def test_starts_and_makes_a_missing_spool(self):
        self.start_as_unit(make_spool=False)


if __name__ == "__main__":
    unittest.main()
