"""One Patroni node: a Patroni process managing its own PostgreSQL 15, on loopback.

Contract:
  - the node's files (Patroni's YAML config, PostgreSQL's data dir, its Unix socket and the
    pgpass file Patroni writes) live in one directory under the test's temp dir, owned by the
    unprivileged user the node runs as (PostgreSQL refuses to run as root, and CI runs as root);
  - the PostgreSQL port and the Patroni REST API port are picked by the test
    (harness.pick_free_port);
  - Patroni runs as PID 1 of a PID namespace of its own (`unshare --pid --fork --mount-proc
    --kill-child`, as in a container: Patroni then reaps and forwards signals to its child, see
    patroni/__main__.py). When that namespace's first process dies, the kernel kills every
    process left in it, so a postmaster can never outlive its node: not after SIGTERM (Patroni
    stops PostgreSQL itself first), not after SIGKILL (the whole node dies at once, as a host
    crash), and not when the test runner is killed (setpriv --pdeathsig on the namespace's
    holder and on Patroni);
  - every process is stopped by PID: SIGTERM to Patroni, SIGKILL to it (and so to the whole
    namespace) after a bounded wait; then the PostgreSQL port must be closed (no postmaster
    left).
Nodes are started and stopped from the main thread only (PDEATHSIG is tied to the thread that
forked the child).
"""

import json
import os
import pathlib
import pwd
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import harness  # tests/integration/harness.py (the caller puts it on sys.path)

LOOPBACK = harness.LOOPBACK
STOP_TERM_WAIT_S = 10.0  # Patroni's fast shutdown of PostgreSQL (about 1 s), then its own exit
STOP_KILL_WAIT_S = 5.0
HTTP_TIMEOUT_S = 2.0
PSQL_TIMEOUT_S = 10.0
CHILD_WAIT_S = 5.0


def _chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


class PatroniNode:
    """A Patroni node named `name` of cluster `scope`, its DCS the etcd v3 endpoints `hosts`
    (host:port strings) reached through the JSON gateway, timings from `timing` (ttl,
    loop_wait, retry_timeout in seconds)."""

    def __init__(self, name, scope, root_dir, hosts, timing, patroni_bin, pg_bin_dir, user,
                 log_level="INFO"):
        self.name = name
        self.log_level = log_level
        self.scope = scope
        self.patroni_bin = patroni_bin
        self.pg_bin_dir = pg_bin_dir
        self.user = pwd.getpwnam(user)
        self.dir = os.path.join(root_dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "patroni.yml")
        self.log_path = os.path.join(self.dir, "patroni.log")
        self.data_dir = os.path.join(self.dir, "data")
        self.pg_port = harness.pick_free_port()
        self.api_port = harness.pick_free_port()
        self.proc = None  # the namespace's holder (unshare)
        self.patroni_pid = None  # Patroni, PID 1 of the namespace, seen from here
        self.starts = 0
        self._write_config(hosts, timing)
        _chown_tree(self.dir, self.user.pw_uid, self.user.pw_gid)

    # -- configuration -----------------------------------------------------------------------

    def _write_config(self, hosts, timing):
        """Patroni's YAML configuration, written as JSON (a subset of YAML)."""
        trust = ["local all all trust", "host all all 127.0.0.1/32 trust",
                 "host replication all 127.0.0.1/32 trust"]
        config = {
            "scope": self.scope,
            "namespace": "/service/",
            "name": self.name,
            "log": {"level": self.log_level,
                    # etcd3's DCS client logs each watch event it gets at DEBUG (the test
                    # reads them: patroni_test.py, watch_saw)
                    "loggers": {"patroni.dcs.etcd3": "DEBUG"}},
            "restapi": {"listen": "%s:%d" % (LOOPBACK, self.api_port),
                        "connect_address": "%s:%d" % (LOOPBACK, self.api_port)},
            "etcd3": {"hosts": list(hosts), "protocol": "http"},
            "bootstrap": {
                "dcs": {
                    "ttl": timing["ttl"], "loop_wait": timing["loop_wait"],
                    "retry_timeout": timing["retry_timeout"],
                    "maximum_lag_on_failover": 1048576,
                    "postgresql": {
                        "use_pg_rewind": True, "use_slots": True,
                        # Small and unsynced: a test cluster on a shared 2-core machine; what
                        # is under test is Patroni's DCS traffic, not PostgreSQL's durability.
                        "parameters": {"max_connections": 20, "max_wal_senders": 5,
                                       "max_replication_slots": 5, "fsync": "off",
                                       "synchronous_commit": "off",
                                       "shared_buffers": "16MB"},
                    },
                },
                "initdb": [{"encoding": "UTF8"}, "no-sync"],
            },
            "postgresql": {
                "listen": "%s:%d" % (LOOPBACK, self.pg_port),
                "connect_address": "%s:%d" % (LOOPBACK, self.pg_port),
                "data_dir": self.data_dir,
                "bin_dir": self.pg_bin_dir,
                "pgpass": os.path.join(self.dir, "pgpass"),
                "pg_hba": trust,
                # the replica's pg_basebackup asks for an immediate checkpoint, not a spread one
                "basebackup": [{"checkpoint": "fast"}],
                "authentication": {
                    "superuser": {"username": "postgres", "password": "patroni-test"},
                    "replication": {"username": "replicator", "password": "patroni-test"},
                    "rewind": {"username": "rewinder", "password": "patroni-test"},
                },
                "parameters": {"unix_socket_directories": self.dir},
            },
            "watchdog": {"mode": "off"},
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)

    # -- lifecycle ---------------------------------------------------------------------------

    def command(self):
        as_user = ["/usr/bin/setpriv", "--reuid=%d" % self.user.pw_uid,
                   "--regid=%d" % self.user.pw_gid, "--init-groups",
                   # after the uid change, which clears a parent-death signal set before it
                   "--pdeathsig", "KILL", "--"]
        namespace = ["/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--"]
        return (harness._die_with_parent_prefix() + namespace + as_user
                + [self.patroni_bin, self.config_path])

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PATRONI_"))}
        env.update(HOME=self.dir, USER=self.user.pw_name, LOGNAME=self.user.pw_name,
                   PYTHONUNBUFFERED="1")
        return env

    def start(self):
        """Starts the node (main thread only) without waiting for it to become anything."""
        assert self.proc is None, "%s already running" % self.name
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("\n=== start #%d: %s\n" % (self.starts, " ".join(self.command())))
                      .encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=self.env())
        self.patroni_pid = self._namespace_init_pid()

    def _namespace_init_pid(self):
        """The PID (in our namespace) of unshare's only child: Patroni after setpriv's exec."""
        children_path = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)
        deadline = time.monotonic() + CHILD_WAIT_S
        while True:
            try:
                with open(children_path) as f:
                    children = f.read().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                raise AssertionError("%s: no namespace child of unshare (status %s); log:\n%s"
                                     % (self.name, self.proc.poll(), self.log_text()[-3000:]))
            time.sleep(0.01)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self):
        """SIGTERM to Patroni, by PID: it stops PostgreSQL (fast), removes its leader key if it
        holds it, then exits."""
        if self.running:
            try:
                os.kill(self.patroni_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_stopped(self):
        """Waits up to STOP_TERM_WAIT_S for the node to exit, then SIGKILLs Patroni, the
        namespace's PID 1 (Patroni can miss a SIGTERM that lands while it bootstraps). Returns
        the holder's exit status."""
        if self.proc is None:
            return None
        try:
            self.proc.wait(STOP_TERM_WAIT_S)
        except subprocess.TimeoutExpired:
            return self.kill9()
        return self._reap()

    def kill9(self):
        """SIGKILL to Patroni, the namespace's PID 1: the kernel kills its PostgreSQL with it,
        as if the node's host crashed. unshare exits once that PID 1 is reaped, and the kernel
        reaps it only after every other process of the namespace is gone, so nothing of the
        node is left when this returns. (Killing unshare instead would leave that to its
        parent-death signal, later.)"""
        assert self.running, "%s is not running" % self.name
        try:
            os.kill(self.patroni_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(STOP_KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # --kill-child: the namespace dies with it
            self.proc.wait(STOP_KILL_WAIT_S)
        return self._reap()

    def _reap(self):
        status = self.proc.returncode
        self.proc = None
        self.patroni_pid = None
        if self.pg_port_open():
            raise AssertionError("%s: PostgreSQL still accepts connections on port %d after "
                                 "its node stopped" % (self.name, self.pg_port))
        return status

    def log_text(self):
        """Patroni's log (PostgreSQL's is in it: Patroni passes its output on)."""
        try:
            return pathlib.Path(self.log_path).read_bytes().decode("utf-8", "replace")
        except OSError as e:
            return "<no log: %s>" % e

    # -- probes ------------------------------------------------------------------------------

    def pg_port_open(self):
        try:
            with socket.create_connection((LOOPBACK, self.pg_port), timeout=0.5):
                return True
        except OSError:
            return False

    def rest_status(self, path):
        """HTTP status of GET `path` on Patroni's REST API (None if it does not answer)."""
        try:
            with urllib.request.urlopen("http://%s:%d%s" % (LOOPBACK, self.api_port, path),
                                        timeout=HTTP_TIMEOUT_S) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, ValueError):
            return None

    def rest_json(self, path):
        """The JSON body of GET `path` (Patroni answers JSON with 200 and 503 alike)."""
        try:
            with urllib.request.urlopen("http://%s:%d%s" % (LOOPBACK, self.api_port, path),
                                        timeout=HTTP_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"null")
        except (OSError, ValueError):
            return None

    def psql(self, sql):
        """Runs `sql` as the superuser over TCP; returns (rc, stdout, stderr)."""
        cmd = [os.path.join(self.pg_bin_dir, "psql"), "-h", LOOPBACK, "-p", str(self.pg_port),
               "-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
               "-c", sql]
        env = dict(self.env(), PGCONNECT_TIMEOUT="2")
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=PSQL_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            return None, "", "psql timed out"
        return (proc.returncode, proc.stdout.decode("utf-8", "replace").strip(),
                proc.stderr.decode("utf-8", "replace").strip())
