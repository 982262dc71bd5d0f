"""scripts/install-deps.sh against stand-ins for dpkg-query, apt-get and systemctl.

The script runs for real, with PATH leading to a folder of stand-ins the test writes and with
DOLMEN_POLICY_RC_D pointing at a policy-rc.d inside the test's own temp dir, so nothing on the
machine is installed or touched. Each case checks the exit status, what apt-get was asked, what
the user sees, and what became of policy-rc.d (one that was there is left as it was; one the
script placed is gone, and was in force while apt-get installed).

Usage: install_deps_test.py REPO_ROOT
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = None
TIMEOUT_S = 60
MISSING = "etcd-server"  # the one package the stand-in dpkg-query reports as not installed

DPKG_QUERY = """#!/bin/sh
# dpkg-query -W -f='${Status}' PKG: every package is installed but $STUB_MISSING.
for last; do :; done
if [ "$last" = "$STUB_MISSING" ]; then
  echo "dpkg-query: no packages found matching $last" >&2
  exit 1
fi
printf 'install ok installed'
"""

APT_GET = """#!/bin/sh
# Records each call, and whether policy-rc.d forbade service starts at that moment.
policy=absent
if [ -e "$DOLMEN_POLICY_RC_D" ]; then policy=$(cat "$DOLMEN_POLICY_RC_D" | tr '\\n' ' '); fi
echo "apt-get $* | policy: $policy" >> "$STUB_LOG"
echo "Reading package lists..."
if [ "$1" = install ] && [ -n "$STUB_APT_FAIL" ]; then
  echo "E: Unable to locate package $STUB_MISSING" >&2
  exit 100
fi
"""

SYSTEMCTL = """#!/bin/sh
# No system etcd runs: is-active says inactive.
exit 3
"""

SUDO = """#!/bin/sh
exec "$@"
"""

OWN_POLICY = "#!/bin/sh\n# the image's own policy\nexit 101\n"


class InstallDepsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dolmen-install-deps-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        for name, text in (("dpkg-query", DPKG_QUERY), ("apt-get", APT_GET),
                           ("systemctl", SYSTEMCTL), ("sudo", SUDO)):
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.policy = os.path.join(self.tmp, "policy-rc.d")
        self.log = os.path.join(self.tmp, "apt.log")

    def run_script(self, missing=MISSING, apt_fails=False):
        env = dict(os.environ)
        env.update(PATH=self.bin + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                   DOLMEN_POLICY_RC_D=self.policy, STUB_LOG=self.log, STUB_MISSING=missing,
                   STUB_APT_FAIL="1" if apt_fails else "")
        proc = subprocess.run([os.path.join(ROOT, "scripts", "install-deps.sh")],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                              timeout=TIMEOUT_S)
        return proc

    def apt_calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return f.read().splitlines()

    def place_own_policy(self):
        with open(self.policy, "w") as f:
            f.write(OWN_POLICY)
        os.chmod(self.policy, 0o750)
        return os.stat(self.policy)

    def assert_own_policy_untouched(self, before):
        with open(self.policy) as f:
            self.assertEqual(f.read(), OWN_POLICY)
        after = os.stat(self.policy)
        self.assertEqual(stat.S_IMODE(after.st_mode), stat.S_IMODE(before.st_mode))
        self.assertEqual(after.st_mtime_ns, before.st_mtime_ns)

    def test_nothing_missing_installs_nothing(self):
        proc = self.run_script(missing="no-such-package-is-listed")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(self.apt_calls(), [])
        self.assertFalse(os.path.exists(self.policy))

    def test_missing_package_with_an_existing_policy(self):
        # The first-run bug: the EXIT trap's false test became the script's status (1).
        before = self.place_own_policy()
        proc = self.run_script()
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("installing 1 Debian package: %s" % MISSING, proc.stdout)
        calls = self.apt_calls()
        self.assertEqual(len(calls), 2, calls)
        self.assertTrue(calls[0].startswith("apt-get update"), calls)
        self.assertTrue(calls[1].startswith("apt-get install -y -qq --no-install-recommends %s |"
                                            % MISSING), calls)
        self.assertIn("the image's own policy", calls[1])
        self.assert_own_policy_untouched(before)

    def test_missing_package_without_a_policy(self):
        proc = self.run_script()
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        calls = self.apt_calls()
        self.assertEqual(len(calls), 2, calls)
        # Service starts were forbidden while the packages went in, and the file is gone after.
        self.assertIn("policy: #!/bin/sh exit 101", calls[1])
        self.assertFalse(os.path.exists(self.policy))

    def test_apt_failure_without_a_policy(self):
        proc = self.run_script(apt_fails=True)
        self.assertEqual(proc.returncode, 100)
        self.assertIn("E: Unable to locate package %s" % MISSING, proc.stderr)
        self.assertIn("'apt-get install -y -qq --no-install-recommends %s' failed with status 100"
                      % MISSING, proc.stderr)
        self.assertFalse(os.path.exists(self.policy))

    def test_apt_failure_with_an_existing_policy(self):
        before = self.place_own_policy()
        proc = self.run_script(apt_fails=True)
        self.assertEqual(proc.returncode, 100)
        self.assertIn("E: Unable to locate package %s" % MISSING, proc.stderr)
        self.assert_own_policy_untouched(before)


if __name__ == "__main__":
    ROOT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
