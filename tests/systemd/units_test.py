"""deploy/systemd's unit files pass `systemd-analyze verify` with no finding, and say what
docs/systemd.md promises (Type=notify, the watchdog, Restart=always, ...).

`systemd-analyze verify` also checks that each Exec*= command is an executable file.
/usr/local/bin/dolmen (the install path) does not exist on a build machine, so the test verifies
a copy of dolmen.service in a temp dir in which that one path, and nothing else, is replaced by
the dolmen binary just built. dolmen-container.service runs /usr/bin/podman, which
scripts/install-deps.sh installs, and is verified unchanged. A copy rather than --root=DIR:
verify under a root needs a whole systemd tree there (sysinit.target, ...). Everything else in
the unit is verified as shipped; verify's warnings (unknown keys, bad values) go to its output,
not its exit status, so any output fails the test too.

A missing systemd-analyze fails the test (scripts/install-deps.sh installs `systemd`).

Usage: units_test.py REPO_ROOT DOLMEN_BINARY
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = None
DOLMEN = None
TIMEOUT_S = 60


def read(name):
    with open(os.path.join(ROOT, "deploy", "systemd", name)) as f:
        return f.read()


def settings(text):
    """KEY -> [values] of a unit file (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", text)
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


class UnitsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dolmen-units-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def verify(self, name, replace_from, replace_to):
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze is missing (scripts/install-deps.sh)")
        text = read(name)
        self.assertGreater(text.count(replace_from), 0, replace_from)
        copy = os.path.join(self.tmp, name)
        with open(copy, "w") as f:
            f.write(text.replace(replace_from, replace_to))
        proc = subprocess.run([analyze, "verify", "--man=no", copy], capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        self.assertEqual((proc.returncode, proc.stdout + proc.stderr), (0, ""),
                         "systemd-analyze verify %s" % name)

    def test_host_unit_verifies(self):
        self.verify("dolmen.service", "/usr/local/bin/dolmen", os.path.abspath(DOLMEN))

    def test_container_unit_verifies(self):
        # podman is a dependency now (scripts/install-deps.sh; the container test runs the
        # image with it): the unit is verified as shipped, against the real /usr/bin/podman.
        self.assertTrue(os.access("/usr/bin/podman", os.X_OK),
                        "/usr/bin/podman is missing: run scripts/install-deps.sh")
        self.verify("dolmen-container.service", "/usr/bin/podman", "/usr/bin/podman")

    def test_host_unit_settings(self):
        s = settings(read("dolmen.service"))
        for key, value in [("Type", "notify"), ("NotifyAccess", "main"), ("Restart", "always"),
                           ("User", "dolmen"), ("StateDirectory", "dolmen"),
                           ("ExecStart", "/usr/local/bin/dolmen"),
                           ("EnvironmentFile", "-/etc/dolmen/dolmen.env"),
                           ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("ReadWritePaths", "/var/lib/dolmen")]:
            self.assertIn(value, s.get(key, []), key)
        for key in ("WatchdogSec", "TimeoutStartSec", "LimitNOFILE"):
            self.assertIn(key, s)

    def test_container_unit_runs_the_image_as_the_lab(self):
        s = settings(read("dolmen-container.service"))
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["Restart"], ["always"])
        start = s["ExecStart"][0]
        for part in ("/usr/bin/podman run", "--net host", "${DATA_DIR}:/etcd-data",
                     "--sdnotify=container", "/usr/local/bin/etcd", "--data-dir=/etcd-data"):
            self.assertIn(part, start)
        self.assertIn("IMAGE=localhost/dolmen:latest", s["Environment"])

    def test_env_file_sets_only_flags_dolmen_knows(self):
        usage = subprocess.run([DOLMEN, "--help"], capture_output=True, text=True,
                               timeout=TIMEOUT_S).stdout
        flags = set(re.findall(r"^  --([a-z0-9-]+)", usage, re.M))
        self.assertIn("initial-cluster", flags)
        names = []
        for line in read("dolmen.env").splitlines():
            line = line.lstrip("#").strip()
            m = re.match(r"^(ETCD_[A-Z0-9_]+)=", line)
            if m:
                names.append(m.group(1))
        self.assertIn("ETCD_INITIAL_CLUSTER", names)
        for name in names:
            self.assertIn(name[len("ETCD_"):].lower().replace("_", "-"), flags, name)


if __name__ == "__main__":
    ROOT, DOLMEN = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
