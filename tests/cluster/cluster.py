"""Multi-process cluster harness: N members (etcd 3.4 or dolmen) on loopback, driven by etcdctl.

A `Cluster` owns a temp directory with one data dir and one log file per member. Contract:
  - every member gets its own client and peer port on 127.0.0.1, picked by binding port 0
    (tests/integration/harness.py); a start that fails with "address already in use" restarts
    the whole cluster on fresh ports (bounded), since the peer URLs are part of every member's
    --initial-cluster;
  - members are started with the seed lab's flags (http URLs; or, with unix_peers=True, etcd's
    unix://NAME:2380 peer URLs, the sockets in the cluster's temp dir): --name --data-dir
    --listen-client-urls --advertise-client-urls --listen-peer-urls --initial-advertise-peer-urls
    --initial-cluster --initial-cluster-state --initial-cluster-token, plus short
    --heartbeat-interval/--election-timeout, --snapshot-count and --strict-reconfig-check;
  - readiness and leadership are polled with etcdctl inside bounded waits, never fixed sleeps;
  - every process is stopped by its PID (SIGTERM, then SIGKILL), by the Cluster's context
    manager, by atexit as a fallback, and by the kernel (setpriv --pdeathsig) if this Python
    process dies; the temp directory is removed unless --keep;
  - `ClusterTestCase` prints every member's log when a test fails.
Processes are started and stopped from the main thread only (PDEATHSIG is tied to the thread
that forked the child); writer threads only speak gRPC. Starting, awaiting and stopping a
process, and the bounds of those waits, are tests/integration/processes.py's (one module for
every harness).
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (run_etcdctl, CONFIG.etcdctl)
import processes  # noqa: E402  (start, readiness, stop by PID; the shared bounds)

LOOPBACK = processes.LOOPBACK

# Bounds for every wait in this file: the shared ones, and two of the cluster's own.
START_TIMEOUT_S = processes.READY_TIMEOUT_S
POLL_INTERVAL_S = processes.POLL_INTERVAL_S
STOP_KILL_WAIT_S = processes.STOP_KILL_WAIT_S
START_ATTEMPTS = processes.START_ATTEMPTS
ETCDCTL_TIMEOUT_S = processes.ETCDCTL_TIMEOUT_S
# The bounded polls (use these, not a loop around time.sleep).
poll_until = processes.poll_until
retry_while = processes.retry_while
RECONFIG_TIMEOUT_S = 20.0  # etcd refuses reconfiguration until peers are connected for 5 s
PROBE_TIMEOUT_S = 5.0  # the multi-member probe: how long a lone member may take to listen


CONFIG = argparse.Namespace(
    server="etcd", binary="/usr/bin/etcd", etcdctl="/usr/bin/etcdctl", keep=False,
    heartbeat_ms=50, election_ms=500, skip_probe=False, etcd_binary="/usr/bin/etcd")


def find_dolmen():
    """build/cmd/dolmen/dolmen, else the newest build*/cmd/dolmen/dolmen, else None."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    preferred = os.path.join(root, "build", "cmd", "dolmen", "dolmen")
    if os.access(preferred, os.X_OK):
        return os.path.normpath(preferred)
    found = [p for p in glob.glob(os.path.join(root, "build*", "cmd", "dolmen", "dolmen"))
             if os.access(p, os.X_OK)]
    return os.path.normpath(max(found, key=os.path.getmtime)) if found else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--server", choices=["etcd", "dolmen"],
                        default=os.environ.get("DOLMEN_CLUSTER_SERVER", "etcd"))
    parser.add_argument("--dolmen", default=os.environ.get("DOLMEN_BIN"),
                        help="dolmen binary (default: build*/cmd/dolmen/dolmen)")
    parser.add_argument("--etcd", default="/usr/bin/etcd")
    parser.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    parser.add_argument("--heartbeat-interval", type=int, default=50, dest="heartbeat_ms")
    parser.add_argument("--election-timeout", type=int, default=500, dest="election_ms")
    parser.add_argument("--keep", action="store_true", help="keep temp dirs for inspection")
    parser.add_argument("--skip-probe", action="store_true",
                        help="run the dolmen tests even if the cluster probe says unsupported")
    args, rest = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    if args.server == "dolmen":
        args.binary = args.dolmen or find_dolmen()
        if not args.binary:
            parser.error("--server dolmen needs --dolmen PATH (none found in build*/)")
    else:
        args.binary = args.etcd
    for path in (args.binary, args.etcdctl):
        if not os.access(path, os.X_OK):
            parser.error("%s is not an executable file" % path)
    vars(CONFIG).update({k: v for k, v in vars(args).items() if k in vars(CONFIG)})
    CONFIG.binary = args.binary
    CONFIG.etcd_binary = args.etcd
    harness.CONFIG.etcdctl = args.etcdctl
    harness.CONFIG.keep = args.keep
    return rest


def main():
    """Entry point of the test files: harness flags first, the rest goes to unittest. For
    dolmen, fails at once (status 1, the reason printed) when the binary does not serve a
    multi-member cluster, e.g. because it crashed during the probe."""
    rest = parse_args()
    print("cluster tests: server=%s binary=%s heartbeat=%dms election=%dms"
          % (CONFIG.server, CONFIG.binary, CONFIG.heartbeat_ms, CONFIG.election_ms), flush=True)
    if CONFIG.server == "dolmen" and not CONFIG.skip_probe:
        supported, why = probe_multi_member(CONFIG.binary)
        print("cluster probe: %s" % why, flush=True)
        if not supported:
            print("FAIL: %s does not serve a multi-member cluster: %s" % (CONFIG.binary, why),
                  flush=True)
            sys.exit(1)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def run_etcdctl(endpoints, args, timeout=ETCDCTL_TIMEOUT_S, stdin=None):
    """etcdctl (API v3) against a comma-separated endpoint list. Returns (rc, stdout, stderr)."""
    return harness.run_etcdctl(endpoints, args, timeout=timeout, stdin=stdin)


def b64(text):
    """Decodes a base64 field of etcdctl's -w json output."""
    import base64
    return base64.b64decode(text).decode()


# -- probe -------------------------------------------------------------------------------------

def _listening(port):
    """True if something accepts TCP connections on 127.0.0.1:port."""
    import socket
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def probe_multi_member(binary):
    """Starts one process of `binary` with a two-member --initial-cluster whose second member
    never answers. Returns (supported, why):
      - the process exits (e.g. dolmen refusing a multi-member cluster it cannot serve): no;
      - it serves and `member list` shows only itself (it ignored --initial-cluster): no;
      - it never listens on its --listen-peer-urls (no peer transport, so no other member can
        ever reach it): no;
      - it listens on its peer URL and `member list` shows both members, or it does not answer
        `member list` yet (what etcd does: no quorum, no leader, no client service): yes.
    """
    tmp = tempfile.mkdtemp(prefix="dolmen-cluster-probe-")
    member = Member("probe1", binary, tmp)
    ghost_peer = "http://%s:%d" % (LOOPBACK, _pick_ports(1, {member.client_port,
                                                             member.peer_port})[0])
    member.configure(initial_cluster="probe1=%s,probe2=%s" % (member.peer_url, ghost_peer),
                     state="new", token="dolmen-cluster-probe", snapshot_count=10000)
    members_listed = None
    try:
        member.spawn()
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while True:
            if member.proc.poll() is not None:
                rc = member.proc.returncode
                member.reap()
                tail = member.log_text().strip().splitlines()[-3:]
                return False, "exited with status %s: %s" % (rc, " | ".join(tail))
            peer_listening = _listening(member.peer_port)
            if members_listed is None:
                try:
                    rc, out, _ = run_etcdctl(member.endpoint, ["member", "list", "-w", "json"],
                                             timeout=max(0.5, min(2.0, deadline -
                                                                  time.monotonic())))
                    members = json.loads(out).get("members", []) if rc == 0 else []
                    # Until it publishes, the member does not listen on its client port, and
                    # a test running beside this one may have picked the same free port: only
                    # an answer that lists this member's peer URL is this member's.
                    if any(member.peer_url in m.get("peerURLs", []) for m in members):
                        members_listed = len(members)
                except subprocess.TimeoutExpired:
                    pass  # not serving clients: e.g. etcd waiting for a quorum to publish
            if members_listed is not None and members_listed < 2:
                return False, ("it serves alone: member list shows %d member for a 2-member "
                               "--initial-cluster" % members_listed)
            if peer_listening and members_listed is not None:
                return True, ("member list shows %d members and it listens on its peer URL"
                              % members_listed)
            if time.monotonic() >= deadline:
                if not peer_listening:
                    return False, ("it accepts a 2-member --initial-cluster (member list: %s) "
                                   "but nothing listens on its --listen-peer-urls %s after %.0fs"
                                   % ("no answer" if members_listed is None else
                                      "%d members" % members_listed, member.peer_url,
                                      PROBE_TIMEOUT_S))
                return True, ("it listens on its peer URL and is still waiting for its peer "
                              "after %.0fs (no member list)" % PROBE_TIMEOUT_S)
            time.sleep(0.2)
    finally:
        member.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# -- one member --------------------------------------------------------------------------------

def _pick_ports(count, taken):
    ports = []
    for _ in range(count * 20):  # bounded: collisions with `taken` are rare
        port = harness.pick_free_port()
        if port not in taken and port not in ports:
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("could not pick %d distinct free ports" % count)


class Member(processes.ManagedProcess):
    """One server process. Ports are picked once and kept across restarts.

    With `unix_peer_dir`, its peer URL is etcd's unix form, unix://NAME:2380: a unix-domain
    socket named "NAME:2380" in the process's working directory, which is then `unix_peer_dir`
    (shared by the members of a cluster, so that every member finds every socket by the same
    relative name). Its client URL stays on 127.0.0.1."""

    UNIX_PEER_PORT = 2380  # only a part of the socket's name

    def __init__(self, name, binary, root_dir, taken_ports=(), unix_peer_dir=None):
        self.name = name
        self.binary = binary
        self.dir = os.path.join(root_dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.unix_peer_dir = unix_peer_dir
        super().__init__(os.path.join(self.dir, "server.log"), unix_peer_dir or self.dir)
        self.data_dir = os.path.join(self.dir, "data")
        self.client_port, self.peer_port = _pick_ports(2, set(taken_ports))
        self.flags = {}
        self.extra_args = []  # more server flags, after the harness's own

    @property
    def endpoint(self):
        return "http://%s:%d" % (LOOPBACK, self.client_port)

    @property
    def peer_url(self):
        if self.unix_peer_dir is not None:
            return "unix://%s:%d" % (self.name, self.UNIX_PEER_PORT)
        return "http://%s:%d" % (LOOPBACK, self.peer_port)

    @property
    def peer_socket_path(self):
        """The file of a unix peer URL's socket (None for http)."""
        if self.unix_peer_dir is None:
            return None
        return os.path.join(self.unix_peer_dir, "%s:%d" % (self.name, self.UNIX_PEER_PORT))

    def configure(self, initial_cluster, state, token, snapshot_count):
        self.flags = dict(initial_cluster=initial_cluster, state=state, token=token,
                          snapshot_count=snapshot_count)

    def command(self):
        f = self.flags
        return [self.binary,
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.endpoint,
                "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f["initial_cluster"],
                "--initial-cluster-state", f["state"],
                "--initial-cluster-token", f["token"],
                "--heartbeat-interval", str(CONFIG.heartbeat_ms),
                "--election-timeout", str(CONFIG.election_ms),
                "--snapshot-count", str(f["snapshot_count"]),
                "--strict-reconfig-check"] + list(self.extra_args)

    def spawn(self):
        """Starts the process (main thread only) without waiting for readiness."""
        self.spawn_command(self.command())

    def restart(self):
        """Stops it by PID if it runs, then starts it again on the same flags, ports and data
        dir (without waiting for readiness: use Cluster.wait_healthy)."""
        self.stop()
        self.spawn()

    def wipe_data(self):
        assert self.proc is None
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def etcdctl(self, *args, timeout=ETCDCTL_TIMEOUT_S, stdin=None):
        return run_etcdctl(self.endpoint, args, timeout=timeout, stdin=stdin)

    def status(self):
        """`endpoint status -w json` of this member alone: the Status dict, or None."""
        rc, out, _ = self.etcdctl("endpoint", "status", "-w", "json", timeout=5)
        if rc != 0:
            return None
        rows = json.loads(out)
        return rows[0]["Status"] if rows else None


class ClusterError(Exception):
    pass


# -- a cluster ---------------------------------------------------------------------------------

class Cluster:
    """N members of one server kind. Use as a context manager (or through ClusterTestCase):
    leaving it stops every member by PID and removes the temp dir."""

    def __init__(self, size, token="dolmen-cluster-test", snapshot_count=10000, prefix="m",
                 binary=None, unix_peers=False, member_args=()):
        self.binary = binary or CONFIG.binary
        self.member_args = list(member_args)  # extra server flags for every member
        self.token = token
        self.snapshot_count = snapshot_count
        self.dir = tempfile.mkdtemp(prefix="dolmen-cluster-%s-" % CONFIG.server)
        # unix://NAME:2380 peer URLs, their sockets in self.dir (every member's working dir).
        self.unix_peers = unix_peers
        self.members = []
        self.last_add_output = None  # etcdctl's stdout of the last `member add`
        self._names = ["%s%d" % (prefix, i + 1) for i in range(size)]

    # context manager ---------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs(sys.stderr)
        self.close()
        return False

    def close(self):
        for member in self.members:
            member.stop()
        if not CONFIG.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self, out, tail_chars=15000):
        for m in self.members:
            out.write("\n----- %s log (%s, client %s, peer %s) -----\n%s\n----- end %s log -----\n"
                      % (m.name, m.log_path, m.endpoint, m.peer_url, m.log_text()[-tail_chars:],
                         m.name))
        out.flush()

    # addresses ---------------------------------------------------------------------------------

    def taken_ports(self):
        return {p for m in self.members for p in (m.client_port, m.peer_port)}

    def initial_cluster(self, members=None):
        return ",".join("%s=%s" % (m.name, m.peer_url) for m in (members or self.members))

    def running(self):
        return [m for m in self.members if m.running]

    def endpoints(self, members=None):
        return ",".join(m.endpoint for m in (members or self.running()))

    def member(self, name):
        return next(m for m in self.members if m.name == name)

    # start / wait ------------------------------------------------------------------------------

    def start(self, timeout=START_TIMEOUT_S):
        """Starts all members with --initial-cluster-state new and waits until all are healthy.
        If a member lost a port race, everything is restarted on fresh ports (bounded)."""
        for attempt in range(START_ATTEMPTS):
            self.members = []
            for name in self._names:
                self.members.append(Member(name, self.binary, self.dir, self.taken_ports(),
                                           self.dir if self.unix_peers else None))
            for m in self.members:
                m.wipe_data()
                m.extra_args = list(self.member_args)
                m.configure(self.initial_cluster(), "new", self.token, self.snapshot_count)
            for m in self.members:
                m.spawn()
            try:
                self.wait_healthy(timeout=timeout)
                return self
            except ClusterError:
                if attempt + 1 < START_ATTEMPTS and any(
                        "address already in use" in m.last_start_log().lower() for m in self.members):
                    for m in self.members:
                        m.stop()
                    continue
                raise
        raise AssertionError("unreachable")

    def wait_healthy(self, members=None, timeout=START_TIMEOUT_S):
        """Polls `etcdctl endpoint health` over `members` (default: all running) until every
        one answers healthy; fails early if one of them exits."""
        members = members or self.running()
        deadline = time.monotonic() + timeout
        last = None
        while True:
            for m in members:
                if m.proc is None or m.proc.poll() is not None:
                    rc = m.proc.returncode if m.proc is not None else None
                    m.reap()
                    raise ClusterError("%s exited with status %s while waiting for health"
                                       % (m.name, rc))
            try:
                last = run_etcdctl(self.endpoints(members), ["endpoint", "health"], timeout=10)
                if last[0] == 0:
                    return
            except subprocess.TimeoutExpired:
                last = ("timeout", "", "")
            if time.monotonic() >= deadline:
                raise ClusterError("not healthy after %.0fs: %r" % (timeout, last))
            time.sleep(POLL_INTERVAL_S)

    def statuses(self, members=None):
        """{member: Status dict or None} from `endpoint status -w json`, one call per member
        (a dead member must not hide the others' answers)."""
        return {m: m.status() for m in (members or self.running())}

    def leader(self, members=None):
        """The member that all `members` (default: running) name as leader, or None if they do
        not agree or the leader is not among them."""
        members = members or self.running()
        st = self.statuses(members)
        if any(s is None for s in st.values()):
            return None
        # -w json leaves out zero fields: no "leader" means the member knows of no leader.
        leaders = {s.get("leader", 0) for s in st.values()}
        if len(leaders) != 1 or 0 in leaders:
            return None
        leader_id = leaders.pop()
        return next((m for m, s in st.items() if s["header"]["member_id"] == leader_id), None)

    def wait_leader(self, members=None, timeout=START_TIMEOUT_S, not_this=None):
        """Polls until the members agree on a leader (other than `not_this`); returns it."""
        leader = processes.retry_while(lambda: self.leader(members),
                                       lambda leader: leader is None or leader is not_this,
                                       timeout)
        if leader is None or leader is not_this:
            raise ClusterError("no agreed leader after %.1fs: %r"
                               % (timeout, self.statuses(members)))
        return leader

    def member_id(self, member):
        """The id the cluster knows `member` by, from `member list -w json` (by peer URL, since
        an added member that has not started yet has no name)."""
        for entry in self.member_list_json():
            if member.peer_url in entry.get("peerURLs", []):
                return entry["ID"]
        raise ClusterError("%s (%s) is not in the member list" % (member.name, member.peer_url))

    def member_list_json(self, via=None):
        via = via or self.running()[0]
        rc, out, err = via.etcdctl("member", "list", "-w", "json")
        if rc != 0:
            raise ClusterError("member list via %s failed: %s" % (via.name, err))
        return json.loads(out)["members"]

    def etcdctl(self, *args, via=None, timeout=ETCDCTL_TIMEOUT_S):
        """etcdctl against one member (default: the first running one)."""
        return (via or self.running()[0]).etcdctl(*args, timeout=timeout)

    # membership --------------------------------------------------------------------------------

    def _reconfigure(self, args, via, timeout=RECONFIG_TIMEOUT_S):
        """Runs a member add/remove/promote command, retrying while etcd answers that the
        cluster is not ready for it yet (peers connected for less than 5 s). Returns the last
        (rc, out, err)."""
        return processes.retry_while(
            lambda: via.etcdctl(*args),
            lambda r: r[0] != 0 and ("unhealthy cluster" in r[2] or
                                     "not enough started members" in r[2]),
            timeout, 0.2)

    def add_member(self, name, learner=False, via=None, reuse=None):
        """`member add` (with --learner if asked) for a new Member on fresh ports, or for the
        stopped Member `reuse` (same name, ports and directory: a removed member added back).
        Returns (member, initial_cluster) where initial_cluster is etcdctl's
        ETCD_INITIAL_CLUSTER. The member's data dir is emptied and it is configured with
        --initial-cluster-state existing, but not started."""
        via = via or self.wait_leader()
        if reuse is not None:
            assert reuse.proc is None and reuse.name == name
            member = reuse
        else:
            member = Member(name, self.binary, self.dir, self.taken_ports(),
                            self.dir if self.unix_peers else None)
        args = ["member", "add", name, "--peer-urls=" + member.peer_url]
        if learner:
            args.append("--learner")
        rc, out, err = self._reconfigure(args, via)
        if rc != 0:
            raise ClusterError("member add %s failed rc=%d: %s" % (name, rc, err))
        self.last_add_output = out
        found = re.search(r'^ETCD_INITIAL_CLUSTER="([^"]*)"$', out, re.M)
        if not found:
            raise ClusterError("member add printed no ETCD_INITIAL_CLUSTER: %r" % out)
        member.wipe_data()
        member.configure(found.group(1), "existing", self.token, self.snapshot_count)
        if member not in self.members:
            self.members.append(member)
        return member, found.group(1)

    def remove_member(self, member, via=None):
        """`member remove <id>` through `via` (default: the leader); the process is not touched.
        Returns (rc, out, err)."""
        member_id = self.member_id(member)
        via = via or self.wait_leader([m for m in self.running() if m is not member] or None)
        return self._reconfigure(["member", "remove", "%x" % member_id], via)


# -- test case ---------------------------------------------------------------------------------

class ClusterTestCase(unittest.TestCase):
    """Owns the clusters a test creates: stops them (also on failure), prints every member's
    log if the test failed, removes their temp dirs."""

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self._clusters = []
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            for c in self._clusters:
                for m in c.members:
                    m.stop()
                if failed:
                    c.dump_logs(sys.stderr)
                c.close()

    def new_cluster(self, size, start=True, **kwargs):
        cluster = Cluster(size, **kwargs)
        self._clusters.append(cluster)
        if start:
            cluster.start()
        return cluster

    def assertEventually(self, predicate, timeout, what, interval=0.1):
        """Polls predicate() (bounded by `timeout`) until it returns a truthy value; fails with
        `what` and the last value otherwise. Returns the truthy value."""
        value = processes.poll_until(predicate, timeout, interval)
        if not value:
            self.fail("%s: not within %.1fs (last: %r)" % (what, timeout, value))
        return value


# -- clients and workloads ---------------------------------------------------------------------

def client(member, timeout=5):
    """A python3-etcd3 client for one member (gRPC; each call bounded by `timeout` seconds)."""
    import etcd3  # system python only (python3-etcd3)
    return etcd3.client(host=LOOPBACK, port=member.client_port, timeout=timeout)


def load(members, prefix, count, threads=8, value_size=16):
    """Puts keys prefix%06d (i in 0..count) spread over `members` by `threads` writer threads.
    Returns {key: value} of every write, all acknowledged (raises on the first error)."""
    import threading
    written = {}
    errors = []
    lock = threading.Lock()

    def work(t):
        try:
            c = client(members[t % len(members)], timeout=10)
            try:
                for i in range(t, count, threads):
                    key = "%s%06d" % (prefix, i)
                    value = ("v%d-" % i).ljust(value_size, "x")
                    c.put(key, value)
                    with lock:
                        written[key] = value
            finally:
                c.close()
        except Exception as e:  # reported in the main thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)  # bounded; each call is bounded by the client timeout too
    if errors or any(w.is_alive() for w in workers):
        raise ClusterError("load on %s failed: %r" % ([m.name for m in members], errors[:3]))
    return written


def read_prefix(member, prefix, serializable=False):
    """{key: value} under `prefix` read from one member with etcdctl (linearizable unless
    `serializable`), keys and values decoded."""
    import base64
    args = ["get", prefix, "--prefix", "-w", "json"]
    if serializable:
        args.append("--consistency=s")
    rc, out, err = member.etcdctl(*args)
    if rc != 0:
        raise ClusterError("get --prefix %s on %s failed: %s" % (prefix, member.name, err))
    kvs = json.loads(out).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in kvs}


def log_lines_after_start(member):
    """The member's log lines of its last start, without our `=== start` line (which holds the
    command line, flags and all)."""
    return member.last_start_log().splitlines()[1:]
