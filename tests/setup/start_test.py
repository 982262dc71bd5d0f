"""scripts/start.sh: its phase lines, a failing phase's output, and a port that is already taken.

start.sh and scripts/lib run from a copy of the repository's scripts in a temp dir, next to
stand-ins for install-deps.sh, build.sh and the dolmen binary, so the test sees exactly what a
user would see without installing or compiling anything. The taken-port cases hold a port on
127.0.0.1 in this process and expect start.sh to name it and this process, and to start nothing.

Usage: start_test.py REPO_ROOT
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (pick_free_port)

ROOT = None
TIMEOUT_S = 60

INSTALL_DEPS = "#!/bin/sh\necho 'install-deps: installing 1 Debian package: etcd-server'\n"

BUILD_OK = """#!/bin/sh
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/build/cmd/dolmen"
printf '#!/bin/sh\\necho "dolmen ran with: $*"\\n' > "$root/build/cmd/dolmen/dolmen"
chmod +x "$root/build/cmd/dolmen/dolmen"
echo "build.sh $*"
"""

BUILD_FAILS = """#!/bin/sh
for i in $(seq 1 100); do echo "compiler line $i"; done
echo "src/x.cc:1: error: the reason the build failed" >&2
exit 7
"""


def free_port():
    return harness.pick_free_port()


class StartTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="dolmen-start-")
        self.addCleanup(shutil.rmtree, self.root, True)
        scripts = os.path.join(self.root, "scripts")
        shutil.copytree(os.path.join(ROOT, "scripts", "lib"), os.path.join(scripts, "lib"))
        shutil.copy(os.path.join(ROOT, "scripts", "start.sh"), scripts)
        self.write("scripts/install-deps.sh", INSTALL_DEPS)
        self.write("scripts/build.sh", BUILD_OK)

    def write(self, relative, text):
        path = os.path.join(self.root, relative)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)

    def start(self, client_port, peer_port, *args):
        env = dict(os.environ, DOLMEN_CLIENT_PORT=str(client_port),
                   DOLMEN_PEER_PORT=str(peer_port))
        return subprocess.run([os.path.join(self.root, "scripts", "start.sh")] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                              cwd=self.root, timeout=TIMEOUT_S)

    def test_phases_then_the_server_with_the_address(self):
        client, peer = free_port(), free_port()
        proc = self.start(client, peer, "--log-level", "info")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0], "install-deps: installing 1 Debian package: etcd-server")
        self.assertEqual(lines[1], "start: building dolmen (the first build takes about 10 "
                                   "minutes on 2 cores)")
        self.assertIn("start: serving clients on http://127.0.0.1:%d (peers on "
                      "http://127.0.0.1:%d)" % (client, peer), lines[2])
        self.assertEqual(lines[3], "start: try it: ETCDCTL_API=3 etcdctl "
                                   "--endpoints=http://127.0.0.1:%d put greeting hello" % client)
        # The build's own output stays in its log; the server gets the addresses and the extras.
        self.assertNotIn("build.sh", proc.stdout)
        self.assertEqual(lines[4], "dolmen ran with: --listen-client-urls http://127.0.0.1:%d "
                                   "--advertise-client-urls http://127.0.0.1:%d "
                                   "--listen-peer-urls http://127.0.0.1:%d "
                                   "--initial-advertise-peer-urls http://127.0.0.1:%d "
                                   "--initial-cluster default=http://127.0.0.1:%d "
                                   "--log-level info" % (client, client, peer, peer, peer))
        self.assertEqual(len(lines), 5, lines)

    def test_failed_build_shows_its_last_lines(self):
        self.write("scripts/build.sh", BUILD_FAILS)
        proc = self.start(free_port(), free_port())
        self.assertEqual(proc.returncode, 7)
        self.assertIn("failed with status 7", proc.stderr)
        self.assertIn("src/x.cc:1: error: the reason the build failed", proc.stderr)
        self.assertIn("compiler line 100", proc.stderr)
        self.assertNotIn("compiler line 1\n", proc.stderr)  # only the last lines
        self.assertNotIn("serving clients", proc.stdout)

    def held_port_case(self, which):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", free_port()))
            holder.listen()
            held = holder.getsockname()[1]
            other = free_port()
            ports = (held, other) if which == "client" else (other, held)
            proc = self.start(*ports)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")  # nothing installed, built or started
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("port %d on 127.0.0.1 is already in use by python3 (pid %d)"
                      % (held, os.getpid()), lines[0])
        self.assertFalse(os.path.exists(os.path.join(self.root, "build")))

    def test_client_port_taken(self):
        self.held_port_case("client")

    def test_peer_port_taken(self):
        self.held_port_case("peer")


if __name__ == "__main__":
    ROOT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
