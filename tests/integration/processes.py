"""Process management for every Python test harness (tests/integration/harness.py,
tests/cluster/cluster.py, and the helpers of tests/discovery, tests/aws, tests/http, ...): the one
place that starts, waits for and stops the servers a test runs, and the one table of the bounds
those waits use.

Contract, for every process started through `ManagedProcess.spawn`:
  - it runs under `setpriv --pdeathsig KILL`, which asks the kernel for SIGKILL when the thread
    that started it dies (a test runner killed by a ctest timeout leaves no server behind), then
    execs the server, keeping the PID. Not a preexec_fn: forking a process that has gRPC threads
    (python3-etcd3 clients) and running Python in the child crashes intermittently. Processes
    are started and stopped from the main thread only, since PDEATHSIG is tied to the thread
    that forked;
  - its stdout and stderr are appended to its log file, after a "=== start #N: COMMAND" line;
  - readiness is a condition polled every POLL_INTERVAL_S within a bound, never a fixed sleep,
    and a process that exits while awaited fails the wait at once;
  - it is stopped by its PID: SIGTERM, then SIGKILL after STOP_TERM_WAIT_S; by the test's
    cleanup, and by atexit as a fallback.
"""

import atexit
import os
import random
import re
import signal
import socket
import subprocess
import time

LOOPBACK = "127.0.0.1"

# The bounds of every wait on a server process, for all harnesses (they had drifted apart).
READY_TIMEOUT_S = 30.0     # a server (or a whole cluster) answers health after its start
POLL_INTERVAL_S = 0.05     # between two polls of a condition
STOP_TERM_WAIT_S = 10.0    # after SIGTERM, before SIGKILL
STOP_KILL_WAIT_S = 5.0     # after SIGKILL
START_ATTEMPTS = 3         # starts on fresh ports after losing a port race
ETCDCTL_TIMEOUT_S = 30.0   # one etcdctl run (it has its own --command-timeout=10s)
HEALTH_PROBE_TIMEOUT_S = 5.0  # one readiness probe

SETPRIV = "/usr/bin/setpriv"

# Ports handed out by this process, so that one test never gets the same port twice.
_PICKED_PORTS = set()


def pick_free_port(host=LOOPBACK):
    """A port below 32768 that is free on `host` now.

    Below the kernel's ephemeral range (32768-60999 on Linux), so no outgoing connection of any
    process can be holding it by the time the server binds; picked at random among 12,768, so
    tests running side by side rarely pick the same one (and a test's own picks never repeat).
    """
    rng = random.Random()  # from os.urandom: processes started together pick differently
    for _ in range(200):  # bounded; a free port is found within a few tries in practice
        port = rng.randint(20000, 32767)
        if port in _PICKED_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _PICKED_PORTS.add(port)
        return port
    raise RuntimeError("no free port below 32768 on " + host + " after 200 tries")


def with_ports(text, ports):
    """`text` with each `:PORT` of `ports` (a dict, e.g. {2379: 23801, 2380: 26773}) turned into
    its replacement, in one pass: replacing one port after the other would rewrite a first
    replacement that happens to begin with the second port (:23808 -> :267738)."""
    pattern = re.compile(r":(%s)(?!\d)" % "|".join(str(p) for p in ports))
    return pattern.sub(lambda m: ":%d" % ports[int(m.group(1))], text)


def die_with_parent_prefix():
    """The command prefix that makes the kernel SIGKILL the child when this thread dies."""
    return [SETPRIV, "--pdeathsig", "KILL", "--"] if os.access(SETPRIV, os.X_OK) else []


def clean_env():
    """This process's environment without ETCD_* and ETCDCTL_* (they would configure the servers
    and clients under test behind the test's back), with etcdctl's API v3."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")
           and not k.startswith("ETCD_")}
    env["ETCDCTL_API"] = "3"
    return env


def stop_process(proc, term_wait_s=STOP_TERM_WAIT_S):
    """Stops a process the test started, by its PID: SIGTERM, then SIGKILL if it has not exited
    within `term_wait_s`. Returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(term_wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_KILL_WAIT_S)
    return proc.returncode


def kill_process(proc):
    """SIGKILL by PID, as a crash. Returns the exit status."""
    if proc.poll() is None:
        proc.kill()
    return proc.wait(STOP_KILL_WAIT_S)


def poll_until(condition, timeout, interval=POLL_INTERVAL_S):
    """Polls condition() every `interval` until it returns a truthy value or `timeout` seconds
    have passed; returns its last value (falsy on timeout), for callers that assert on it with
    their own message or use the last answer. condition() may raise to fail at once (a process
    that exited). The one bounded poll of the Python harnesses: use it (or wait_for) rather
    than a loop of your own around time.sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def retry_while(call, retry, timeout, interval=POLL_INTERVAL_S):
    """Calls call() until retry(its result) is false or `timeout` seconds have passed (a
    bounded poll_until); returns the last result, for the caller to assert on. For a command
    answered "not yet" for a while (a member promote before the learner is in sync)."""
    last = []

    def settled():
        last[:] = [call()]
        return not retry(last[0])

    poll_until(settled, timeout, interval)
    return last[0]


def wait_for(condition, what, timeout=15.0, interval=POLL_INTERVAL_S):
    """Polls condition() every `interval` until it returns a truthy value (returned); raises
    AssertionError naming `what` after `timeout` seconds."""
    value = poll_until(condition, timeout, interval)
    if not value:
        raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
    return value


class ProcessExited(Exception):
    """The awaited process exited before its condition held."""


_LIVE = set()


class ManagedProcess:
    """One server process with a log file: spawned, awaited and stopped by the rules above.
    Subclasses supply the command line and keep their own addresses and flags."""

    def __init__(self, log_path, cwd):
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None
        self.starts = 0

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def spawn_command(self, cmd, prefix=(), env=None):
        """Starts `cmd` (after `prefix`, e.g. `ip netns exec NS`) without waiting; main thread
        only. Appends "=== start #N: COMMAND" and then the process's output to the log."""
        assert self.proc is None, "already running: %s" % self.log_path
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("\n=== start #%d: %s\n" % (self.starts, " ".join(cmd))).encode())
            log.flush()
            self.proc = subprocess.Popen(die_with_parent_prefix() + list(prefix) + list(cmd),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.cwd,
                                         env=clean_env() if env is None else env)
        _LIVE.add(self)

    def reap(self):
        _LIVE.discard(self)
        self.proc = None

    def wait_until(self, condition, what, timeout=READY_TIMEOUT_S):
        """Polls condition() until it returns a truthy value (returned); raises ProcessExited
        at once if the process exits, TimeoutError naming `what` and the last value after
        `timeout`. condition may raise subprocess.TimeoutExpired (a probe that hung): that
        counts as not yet."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc is None or self.proc.poll() is not None:
                rc = self.proc.returncode if self.proc is not None else None
                self.reap()
                raise ProcessExited("exited with status %s before %s" % (rc, what))
            try:
                last = condition()
                if last:
                    return last
            except subprocess.TimeoutExpired:
                last = "probe timed out"
            if time.monotonic() >= deadline:
                raise TimeoutError("not %s after %.0fs; last: %r" % (what, timeout, last))
            time.sleep(POLL_INTERVAL_S)

    def stop(self, term_wait_s=STOP_TERM_WAIT_S):
        """SIGTERM by PID, SIGKILL if it has not exited within `term_wait_s`. Returns the exit
        status (None if it was not running)."""
        if self.proc is None:
            return None
        status = stop_process(self.proc, term_wait_s)
        self.reap()
        return status

    def kill9(self):
        """SIGKILL by PID, as a crash; its files stay as the crash left them."""
        assert self.proc is not None, "not running: %s" % self.log_path
        status = kill_process(self.proc)
        self.reap()
        return status

    def wait_exit(self, timeout):
        """Returns the exit status if the process exits within `timeout`, else None."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.reap()
        return rc

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "<no log: %s>" % e

    def last_start_log(self):
        """The log of the last start, from its "=== start" line's command on."""
        return self.log_text().rsplit("\n=== start #", 1)[-1]

    def port_was_taken(self):
        """True if the last start exited because a port was in use (the pick_free_port race)."""
        return self.proc is None and "address already in use" in self.last_start_log().lower()


@atexit.register
def _stop_all():
    for p in list(_LIVE):
        p.stop()
