"""Every shell script of the repository passes shellcheck with no finding.

Shell scripts are the files under scripts/, tests/, .ci/ and deploy/ that end in .sh or start
with a sh/bash shebang. A finding that is a false positive is silenced on its own line with a
`# shellcheck disable=SCxxxx` comment that says why; there is no global exclusion. A missing
shellcheck fails the test (scripts/install-deps.sh installs it).

Usage: shellcheck_test.py REPO_ROOT
"""

import os
import shutil
import subprocess
import sys
import unittest

ROOT = None
FOLDERS = ("scripts", "tests", ".ci", "deploy")
TIMEOUT_S = 120


def is_shell_script(path):
    if path.endswith(".sh"):
        return True
    try:
        with open(path, "rb") as f:
            first = f.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and (b"bash" in first or first.rstrip().endswith(b"/sh"))


def shell_scripts():
    found = []
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "node_modules")]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if is_shell_script(path):
                    found.append(os.path.relpath(path, ROOT))
    return sorted(found)


class ShellcheckTest(unittest.TestCase):
    def test_no_findings(self):
        shellcheck = shutil.which("shellcheck")
        self.assertIsNotNone(shellcheck, "shellcheck is not installed (scripts/install-deps.sh)")
        scripts = shell_scripts()
        # The scripts this repository is known to have: a walk that finds none is broken.
        for expected in ("scripts/install-deps.sh", "scripts/start.sh", ".ci/run"):
            self.assertIn(expected, scripts)
        # -x follows `source` into scripts/lib; paths in source= directives are from the root.
        proc = subprocess.run([shellcheck, "-x", "--source-path=SCRIPTDIR", "--source-path=."]
                              + scripts, cwd=ROOT, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        self.assertEqual(proc.returncode, 0,
                         "shellcheck findings in %d scripts:\n%s" % (len(scripts), proc.stdout))


if __name__ == "__main__":
    ROOT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
