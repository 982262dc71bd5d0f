"""What dolmen tells systemd through NOTIFY_SOCKET (docs/systemd.md), with a real socket.

The test binds a unix datagram socket, as systemd does for a Type=notify unit, and starts the
real dolmen with NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID set. WATCHDOG_PID must be the
server's own pid (libsystemd's sd_watchdog_enabled ignores the watchdog otherwise), so the
server is started through `sh -c 'WATCHDOG_PID=$$ ... exec dolmen'`: sh execs dolmen in place,
which keeps the pid.

  - READY=1 comes, and at once a linearizable read (etcdctl get) succeeds on that member; a
    member of a 3-member cluster started alone (no quorum) sends no READY=1 and does once a
    second member makes a quorum;
  - WATCHDOG=1 comes every WATCHDOG_USEC/2 while the driver loop runs, and stops when the loop
    is stalled (the test-only hook DOLMEN_TEST_STALL_DRIVER_AFTER_MS blocks the loop after
    READY=1; a SIGSTOP would stop the pinger as well);
  - STOPPING=1 comes on SIGTERM, and no WATCHDOG=1 after it.

Contract: loopback only, ports picked by binding port 0, every wait bounded (awaiting a
condition, never a fixed sleep), every process stopped by its pid (SIGTERM, SIGKILL after a
bound) and killed by the kernel (setpriv --pdeathsig) if this runner dies. The only fixed
windows are observations that something does *not* happen (no READY=1 without quorum, no
WATCHDOG=1 from a stalled loop), each several periods long.

Usage: notify_test.py --dolmen BINARY --etcdctl ETCDCTL
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (pick_free_port)

LOOPBACK = "127.0.0.1"
SETPRIV = "/usr/bin/setpriv"
WATCHDOG_USEC = 400000  # pings every 200 ms
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 25.0  # dolmen ends a stop itself within 20 s
ETCDCTL_TIMEOUT_S = 20.0
ARGS = argparse.Namespace(dolmen=None, etcdctl="/usr/bin/etcdctl")


def pick_ports(count):
    return [harness.pick_free_port() for _ in range(count)]


def etcdctl(endpoint, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    return subprocess.run([ARGS.etcdctl, "--endpoints=" + endpoint, "--dial-timeout=2s",
                           "--command-timeout=5s"] + list(args), capture_output=True,
                          text=True, timeout=ETCDCTL_TIMEOUT_S, env=env)


class NotifySocket:
    """The systemd side of sd_notify: a bound datagram socket and what arrived, in order."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # (monotonic time, "KEY=value")

    def close(self):
        self.sock.close()

    def _receive(self, until):
        """Takes what arrives until the monotonic time `until` (at least what is queued)."""
        while True:
            left = until - time.monotonic()
            self.sock.settimeout(max(left, 0.001))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            now = time.monotonic()
            for line in data.decode("utf-8", "replace").splitlines():
                if line:
                    self.messages.append((now, line))
            if left <= 0:
                return

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate(self.messages):
            if time.monotonic() >= deadline:
                raise AssertionError("no %s within %.0f s; got %r"
                                     % (what, timeout, [m for _, m in self.messages]))
            self._receive(min(deadline, time.monotonic() + 0.1))

    def observe(self, seconds):
        """Collects for a fixed window: only to see that something does not come."""
        self._receive(time.monotonic() + seconds)

    def count(self, message, after=None):
        return sum(1 for t, m in self.messages if m == message and (after is None or t > after))

    def time_of(self, message):
        for t, m in self.messages:
            if m == message:
                return t
        return None


class Member:
    def __init__(self, root, name, notify_path, extra_env=None):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.client_port, self.peer_port = pick_ports(2)
        self.notify = NotifySocket(notify_path)
        self.extra_env = extra_env or {}
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    @property
    def endpoint(self):
        return "http://%s:%d" % (LOOPBACK, self.client_port)

    @property
    def peer_url(self):
        return "http://%s:%d" % (LOOPBACK, self.peer_port)

    def start(self, initial_cluster):
        cmd = [ARGS.dolmen, "--name", self.name, "--data-dir", os.path.join(self.dir, "data"),
               "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
               "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls",
               self.peer_url, "--initial-cluster", initial_cluster,
               "--initial-cluster-state", "new", "--initial-cluster-token", "notify-test",
               "--heartbeat-interval", "50", "--election-timeout", "500"]
        wrapper = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"]
        prefix = [SETPRIV, "--pdeathsig", "KILL", "--"] if os.access(SETPRIV, os.X_OK) else []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
        env.update(NOTIFY_SOCKET=self.notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(prefix + wrapper + cmd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=env)

    def log_text(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout):
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                raise AssertionError("%s: no %r in the log within %.0f s" % (self.name, text,
                                                                             timeout))
            self.notify.observe(0.05)  # keeps collecting notifications meanwhile

    def stop(self):
        """SIGTERM by pid, SIGKILL after STOP_TIMEOUT_S; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


class NotifyTest(unittest.TestCase):
    def run(self, result=None):
        """Stops every member (also on failure), prints their logs if the test failed, and
        removes the temp dir."""
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        # A short path: sun_path holds 108 bytes.
        self.root = tempfile.mkdtemp(prefix="dolmen-notify-")
        self.members = []
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            for m in self.members:
                m.stop()
                m.notify.close()
                if failed:
                    sys.stderr.write("--- %s log\n%s\n" % (m.name, m.log_text()[-6000:]))
            shutil.rmtree(self.root, ignore_errors=True)

    def member(self, name, extra_env=None):
        m = Member(self.root, name, os.path.join(self.root, name + ".sock"), extra_env)
        self.members.append(m)
        return m

    def stop_and_check(self, m):
        m.proc.send_signal(signal.SIGTERM)
        m.notify.wait_for(lambda ms: any(x == "STOPPING=1" for _, x in ms), 10, "STOPPING=1")
        rc = m.proc.wait(STOP_TIMEOUT_S)
        self.assertEqual(rc, -signal.SIGTERM, "dies by the SIGTERM that stopped it")
        m.notify.observe(0)  # whatever is still queued
        stopping = m.notify.time_of("STOPPING=1")
        self.assertEqual(m.notify.count("WATCHDOG=1", after=stopping), 0,
                         "no WATCHDOG=1 after STOPPING=1")

    def test_ready_after_linearizable_read_watchdog_and_stopping(self):
        m = self.member("m1")
        m.start("m1=" + m.peer_url)
        m.notify.wait_for(lambda ms: any(x == "READY=1" for _, x in ms), READY_TIMEOUT_S,
                          "READY=1")
        # Once READY=1 is out, a linearizable read succeeds at the first try.
        got = etcdctl(m.endpoint, "get", "--consistency=l", "any")
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn("serving linearizable reads, READY=1", m.log_text())
        ready = m.notify.time_of("READY=1")
        m.notify.wait_for(lambda ms: m.notify.count("WATCHDOG=1", after=ready) >= 3, 10,
                          "three WATCHDOG=1 after READY=1")
        # A JSON log line (docs/logging.md): the period as Go prints a duration.
        self.assertRegex(m.log_text(), r'"msg":"systemd watchdog: WATCHDOG=1 while the driver '
                                       r'loop answers","interval":"200ms"')
        self.stop_and_check(m)

    def test_watchdog_stops_when_the_driver_loop_is_stalled(self):
        m = self.member("m1", {"DOLMEN_TEST_STALL_DRIVER_AFTER_MS": "600"})
        m.start("m1=" + m.peer_url)
        m.notify.wait_for(lambda ms: any(x == "READY=1" for _, x in ms), READY_TIMEOUT_S,
                          "READY=1")
        m.notify.wait_for(lambda ms: m.notify.count("WATCHDOG=1") >= 1, 10, "a WATCHDOG=1")
        m.wait_log("test hook: stalling the driver loop", 10)
        m.wait_log("watchdog: the driver loop has not answered a probe", 10)
        pings = m.notify.count("WATCHDOG=1")
        # Five periods: a live loop would have been pinged for about five times.
        m.notify.observe(5 * WATCHDOG_USEC / 2e6)
        self.assertEqual(m.notify.count("WATCHDOG=1"), pings, "pings after the stall")
        self.assertEqual(m.log_text().count("no more WATCHDOG=1"), 1, "logged once")
        self.stop_and_check(m)

    def test_no_ready_without_quorum(self):
        m1, m2, m3 = self.member("m1"), self.member("m2"), self.member("m3")
        cluster = ",".join("%s=%s" % (m.name, m.peer_url) for m in (m1, m2, m3))
        m1.start(cluster)
        # Alone, m1 has no quorum: no leader, no linearizable read, no READY=1 (12 election
        # timeouts), while its watchdog shows the loop alive.
        m1.notify.observe(6.0)
        self.assertIsNone(m1.proc.poll(), "m1 is still running")
        self.assertIsNone(m1.notify.time_of("READY=1"), m1.notify.messages)
        self.assertGreater(m1.notify.count("WATCHDOG=1"), 0)
        m2.start(cluster)
        for m in (m1, m2):
            m.notify.wait_for(lambda ms: any(x == "READY=1" for _, x in ms), READY_TIMEOUT_S,
                              m.name + " READY=1")
            got = etcdctl(m.endpoint, "get", "--consistency=l", "any")
            self.assertEqual(got.returncode, 0, m.name + ": " + got.stderr)
        for m in (m1, m2):
            self.stop_and_check(m)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dolmen", required=True)
    parser.add_argument("--etcdctl", default=ARGS.etcdctl)
    args, rest = parser.parse_known_args()
    ARGS.dolmen, ARGS.etcdctl = os.path.abspath(args.dolmen), args.etcdctl
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
