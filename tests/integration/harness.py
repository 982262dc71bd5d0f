"""Process harness for the integration tests: real servers on loopback, driven by real clients.

A `Server` is one dolmen or etcd 3.4 process with its own temporary data directory and its own
client (and, for etcd, peer) port on 127.0.0.1. Contract:
  - ports are picked by binding port 0 on 127.0.0.1; the short race between closing the probe
    socket and the server binding is accepted, and a start that fails with "address already in
    use" is retried on fresh ports (bounded);
  - readiness is polled with `etcdctl endpoint health` inside a bounded wait, never a fixed sleep;
  - stdout and stderr of the server go to a log file in its temp directory; `IntegrationTestCase`
    prints it when a test fails;
  - every process is stopped by its PID (SIGTERM, then SIGKILL after a bounded wait): by the test's
    cleanup, by atexit as a fallback, and by the kernel (setpriv --pdeathsig) if this Python
    process itself is killed, e.g. by a ctest timeout.
Servers are started and stopped from the main thread only (PDEATHSIG is tied to the thread that
forked the child). The process side of all this (and the bounds of every wait) is
processes.py's, shared with tests/cluster and the other harnesses; the names below that came
from there stay importable from here.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import processes  # noqa: E402
from processes import (  # noqa: E402,F401  (re-exported: the test files use harness.NAME)
    LOOPBACK, READY_TIMEOUT_S, STOP_TERM_WAIT_S, STOP_KILL_WAIT_S, START_ATTEMPTS,
    ETCDCTL_TIMEOUT_S, pick_free_port, poll_until, retry_while, stop_process, wait_for,
    with_ports)

READY_POLL_INTERVAL_S = processes.POLL_INTERVAL_S  # the old name

# Filled by parse_args(); module-level so every test file shares one parser.
CONFIG = argparse.Namespace(
    dolmen=None, dolmen_kind="auto", dolmen_client_flags_only=False,
    etcd="/usr/bin/etcd", etcdctl="/usr/bin/etcdctl", keep=False)


def parse_args(argv=None):
    """Parses the harness flags and returns the rest (for unittest.main)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dolmen", default=os.environ.get("DOLMEN_BIN"),
                        help="server under test; pass an etcd binary to validate the harness")
    parser.add_argument("--dolmen-kind", choices=["auto", "dolmen", "etcd"],
                        default=os.environ.get("DOLMEN_KIND", "auto"),
                        help="auto: 'etcd' if the binary is named etcd, else 'dolmen'")
    parser.add_argument("--dolmen-client-flags-only", action="store_true",
                        default=os.environ.get("DOLMEN_CLIENT_FLAGS_ONLY") == "1",
                        help="start dolmen without --listen-peer-urls, --initial-cluster etc.")
    parser.add_argument("--etcd", default="/usr/bin/etcd")
    parser.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    parser.add_argument("--keep", action="store_true", help="keep temp dirs for inspection")
    args, rest = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    if not args.dolmen:
        parser.error("--dolmen PATH (or DOLMEN_BIN) is required; use --dolmen /usr/bin/etcd "
                     "to run the suite etcd-vs-etcd")
    if args.dolmen_kind == "auto":
        args.dolmen_kind = "etcd" if os.path.basename(args.dolmen) == "etcd" else "dolmen"
    for name in ("dolmen", "etcd", "etcdctl"):
        path = getattr(args, name)
        if not os.access(path, os.X_OK):
            parser.error("--%s %s is not an executable file" % (name, path))
    vars(CONFIG).update(vars(args))
    return rest


def main():
    """Entry point for the test files: harness flags first, the rest goes to unittest."""
    rest = parse_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def readable_log(text):
    """The log with each JSON line (dolmen's and etcd's zap lines) turned into its message and
    its string fields, one per line, unescaped: what a reader sees, so that a test can look for
    a message that has quotes or newlines in it."""
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if not isinstance(entry, dict):
            out.append(line)
            continue
        out.append(str(entry.get("msg", "")))
        for key, value in entry.items():
            if key not in ("level", "ts", "caller", "msg") and isinstance(value, str):
                out.extend(value.splitlines() or [""])
    return "\n".join(out)


# The old private names, still used by test files of other folders.
SETPRIV = processes.SETPRIV
_die_with_parent_prefix = processes.die_with_parent_prefix
_clean_env = processes.clean_env


def run_etcdctl(endpoint, args, stdin=None, timeout=ETCDCTL_TIMEOUT_S, binary=False):
    """Runs etcdctl (API v3) against one endpoint. Returns (rc, stdout, stderr).

    stdout is bytes when binary=True (for -w protobuf), str otherwise; stderr is always str.
    `stdin` may be str or bytes. Raises subprocess.TimeoutExpired (after killing etcdctl) when
    it does not finish within `timeout` seconds.
    """
    cmd = [CONFIG.etcdctl, "--endpoints=" + endpoint, "--dial-timeout=2s",
           "--command-timeout=10s"] + list(args)
    if isinstance(stdin, str):
        stdin = stdin.encode()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_clean_env())
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, (out if binary else out.decode("utf-8", "replace")), \
        err.decode("utf-8", "replace")


class ServerError(Exception):
    pass


class Server(processes.ManagedProcess):
    """One server process (kind 'dolmen' or 'etcd') on loopback with its own data directory."""

    def __init__(self, kind, binary, name="m1", peer_flags=True, label=None, extra_flags=()):
        assert kind in ("dolmen", "etcd"), kind
        self.extra_flags = list(extra_flags)  # appended to the command line (same on both sides)
        self.kind = kind
        self.binary = binary
        self.name = name
        self.label = label or kind
        self.peer_flags = peer_flags
        # https for a TLS client URL; then etcdctl_flags (--cacert, --cert, --key) go with every
        # etcdctl this harness runs against it, readiness checks included.
        self.client_scheme = "http"
        self.etcdctl_flags = []
        self.tmp_dir = tempfile.mkdtemp(prefix="dolmen-it-%s-" % self.label)
        self.data_dir = os.path.join(self.tmp_dir, "data")
        super().__init__(os.path.join(self.tmp_dir, "server.log"), self.tmp_dir)
        self.client_port = None
        self.peer_port = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def endpoint(self):
        return "%s://%s:%d" % (self.client_scheme, LOOPBACK, self.client_port)

    @property
    def hostport(self):
        return "%s:%d" % (LOOPBACK, self.client_port)

    @property
    def peer_hostport(self):
        return "%s:%d" % (LOOPBACK, self.peer_port)

    def _command(self):
        client_url = self.endpoint
        cmd = [self.binary, "--name", self.name, "--data-dir", self.data_dir,
               "--listen-client-urls", client_url, "--advertise-client-urls", client_url]
        if self.peer_flags:
            peer_url = "http://%s:%d" % (LOOPBACK, self.peer_port)
            cmd += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                    "--initial-cluster", "%s=%s" % (self.name, peer_url)]
        return cmd + self.extra_flags

    # -- lifecycle ---------------------------------------------------------------------------

    def spawn(self):
        """Starts the process without waiting for readiness; ports are picked on first start
        and kept across restarts so clients can reconnect to the same address."""
        assert self.proc is None, "already running"
        if self.client_port is None:
            self.client_port = pick_free_port()
            self.peer_port = pick_free_port()
            while self.peer_port == self.client_port:
                self.peer_port = pick_free_port()
        self.spawn_command(self._command())

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        """Polls `etcdctl endpoint health` until it succeeds, the process exits, or timeout."""
        last = [None]

        def healthy():
            last[0] = run_etcdctl(self.endpoint, self.etcdctl_flags + ["endpoint", "health"],
                                  timeout=processes.HEALTH_PROBE_TIMEOUT_S)
            return last[0][0] == 0
        try:
            self.wait_until(healthy, "becoming ready", timeout)
        except processes.ProcessExited as e:
            raise ServerError("%s %s" % (self.label, e)) from None
        except TimeoutError:
            raise ServerError("%s not ready after %.0fs; last health check: %r"
                              % (self.label, timeout, last[0] or ("timeout", "", ""))) from None

    def start(self, timeout=READY_TIMEOUT_S):
        """spawn() + wait_ready(), retrying on fresh ports if a port was taken meanwhile."""
        for attempt in range(START_ATTEMPTS):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except ServerError:
                if attempt + 1 < START_ATTEMPTS and self.port_was_taken():
                    self.client_port = None  # pick new ports and try again
                    continue
                raise
        raise AssertionError("unreachable")

    def _reap(self):  # the old name (subclasses in other folders call it)
        self.reap()

    def restart(self, timeout=READY_TIMEOUT_S):
        """Starts again on the same data directory and ports."""
        self.stop()
        self.spawn()
        self.wait_ready(timeout)

    def remove_dir(self):
        assert self.proc is None
        if not CONFIG.keep:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    # -- clients -----------------------------------------------------------------------------

    def etcdctl(self, *args, stdin=None, timeout=ETCDCTL_TIMEOUT_S, binary=False):
        return run_etcdctl(self.endpoint, self.etcdctl_flags + list(args), stdin=stdin,
                           timeout=timeout, binary=binary)

    def header_ids(self):
        """(cluster_id, member_id) as reported in a response header; a read, so it does not
        change the revision."""
        rc, out, err = self.etcdctl("get", "dolmen-it-id-probe", "-w", "json")
        if rc != 0:
            raise ServerError("%s: id probe failed rc=%d: %s" % (self.label, rc, err))
        header = json.loads(out)["header"]
        return int(header.get("cluster_id", 0)), int(header.get("member_id", 0))


def dolmen_server(name="m1", extra_flags=()):
    return Server(CONFIG.dolmen_kind, CONFIG.dolmen, name=name,
                  peer_flags=CONFIG.dolmen_kind == "etcd" or not CONFIG.dolmen_client_flags_only,
                  label="dolmen" if CONFIG.dolmen_kind == "dolmen" else "dolmen-as-etcd",
                  extra_flags=extra_flags)


def etcd_server(name="m1", extra_flags=()):
    return Server("etcd", CONFIG.etcd, name=name, label="etcd", extra_flags=extra_flags)


class IntegrationTestCase(unittest.TestCase):
    """Owns the servers a test starts: stops them (cleanup, also on failure), prints their logs
    if the test failed, then removes their temp directories."""

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self._servers = []
        try:
            return super().run(result)
        finally:
            for server in self._servers:
                server.stop()  # normally already done by the cleanup
            if len(result.failures) + len(result.errors) > before:
                # The failure first: CI shows the head and tail of long outputs, and unittest
                # prints its tracebacks only after every test of the file ran.
                for _, trace in (result.failures + result.errors)[before:]:
                    sys.stderr.write("\n----- failure of %s -----\n%s" % (self.id(), trace))
                for server in self._servers:
                    sys.stderr.write("\n----- %s log (%s, client %s) -----\n%s\n----- end %s log"
                                     " -----\n" % (server.label, server.tmp_dir, server.endpoint
                                                   if server.client_port else "-",
                                                   server.log_text()[-20000:], server.label))
            for server in self._servers:
                server.remove_dir()

    def on_each(self, servers, fn, timeout_s=None):
        """fn(server) for every server at once, one thread each (so a step that waits on one
        server never delays the other's); returns the results in server order. An exception on
        either side fails the test once both finished; a side still running after `timeout_s`
        (default: 40 etcdctl timeouts) fails it too."""
        timeout_s = ETCDCTL_TIMEOUT_S * 40 if timeout_s is None else timeout_s
        results, errors = [None] * len(servers), {}

        def side(i):
            try:
                results[i] = fn(servers[i])
            except Exception as e:  # noqa: BLE001 - reported in the main thread
                errors[servers[i].label] = e

        threads = [threading.Thread(target=side, args=(i,)) for i in range(len(servers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout_s)
            self.assertFalse(t.is_alive(), "a side did not finish in time")
        if errors:
            raise AssertionError("harness error: %r" % errors)
        return results

    def start_pair(self, extra_flags=()):
        """Starts etcd and dolmen with the same extra flags. Returns ([etcd, dolmen], ids) with
        ids mapping each label to its header ids, as `same` takes them."""
        servers = self.start_servers(etcd_server(extra_flags=extra_flags),
                                     dolmen_server(extra_flags=extra_flags))
        return servers, {s.label: s.header_ids() for s in servers}

    def same(self, servers, ids, *args, rc=0, out_has=None):
        """Runs one etcdctl command on (etcd, dolmen) at once; etcd's answer must have exit code
        `rc` (and `out_has` in its stdout or stderr), and dolmen's must equal it after
        `normalize`. `ids` maps each server's label to its header ids. Returns etcd's normalised
        stdout."""
        def run(server):
            code, out, err = server.etcdctl(*args)
            return (code, normalize(out, server, ids[server.label]),
                    normalize(err, server, ids[server.label]))
        want, got = self.on_each(servers, run)
        self.assertEqual(want[0], rc, "etcd: etcdctl %s -> %r" % (" ".join(args), want))
        if out_has is not None:
            self.assertIn(out_has, want[1] + want[2], "etcd: etcdctl %s" % " ".join(args))
        self.assertEqual(want, got, "etcdctl %s: etcd vs %s" % (" ".join(args), servers[1].label))
        return want[1]

    @staticmethod
    def status(server):
        """The Status object of `etcdctl endpoint status -w json` for one server."""
        rc, out, err = server.etcdctl("endpoint", "status", "-w", "json")
        if rc != 0:
            raise ServerError("%s: endpoint status failed: %s" % (server.label, err))
        return json.loads(out)[0]["Status"]

    def new_server(self, server):
        """Registers a not yet started server with this test."""
        self._servers.append(server)
        self.addCleanup(server.stop)
        return server

    def start_servers(self, *servers):
        """Spawns all servers first, then waits for each, so their startups overlap."""
        for server in servers:
            self.new_server(server)
        for server in servers:
            server.spawn()
        for server in servers:
            try:
                server.wait_ready()
            except ServerError:
                if not server.port_was_taken():
                    raise
                server.client_port = None
                server.start()  # bounded retry on fresh ports
        return servers


# -- output normalisation used by the comparison tests ---------------------------------------

# etcdctl's client-side retry logger writes one JSON line to stderr per failed attempt, e.g.
# {"level":"warn","ts":"...","caller":"...","msg":"retrying of unary invoker failed",
#  "target":"endpoint://client-<uuid>/127.0.0.1:PORT","attempt":0,"error":"rpc error: ..."}
# "ts" (wall clock) and the client uuid are generated by etcdctl, not by the server.
_TS_RE = re.compile(r'"ts":("[^"]*"|[0-9.e+]+)')  # zap writes it as text or as epoch seconds
_CLIENT_UUID_RE = re.compile(r"endpoint://client-[0-9a-f-]{36}/")


def normalize(text, server, ids):
    """Replaces what legitimately differs between two runs of the same scenario:
    the server's cluster_id and member_id (decimal and hex forms), the test-picked endpoint
    and peer addresses, and etcdctl's own log timestamps and client uuid. Nothing else."""
    cluster_id, member_id = ids
    text = text.replace(server.hostport, "<endpoint>")
    if server.peer_flags:
        text = text.replace(server.peer_hostport, "<peer>")
    text = _TS_RE.sub('"ts":"<ts>"', text)
    text = _CLIENT_UUID_RE.sub("endpoint://client-<uuid>/", text)
    for value, name in ((cluster_id, "<cluster_id>"), (member_id, "<member_id>")):
        if value == 0:
            continue  # an id of 0 is left visible: etcd never reports 0 in a top-level header
        text = re.sub(r"(?<![0-9])%d(?![0-9])" % value, name, text)
        for form in ("%x" % value, "%016x" % value):
            text = re.sub(r"(?<![0-9a-fA-F])%s(?![0-9a-fA-F])" % form, name, text)
    return text
