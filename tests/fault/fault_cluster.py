"""A 3-member cluster of tests/cluster/cluster.py whose members live in the network namespaces
of netns.Network, with the hooks the fault tests need.

Everything else is the cluster harness's: data dirs and logs in its temp dir, readiness and
leader polled by etcdctl with deadlines, stop by PID (SIGTERM, then SIGKILL), setpriv
--pdeathsig, logs dumped on failure. Added here:
  - each member listens on its namespace's address, ports 2379 (client) and 2380 (peer);
  - `--experimental-watch-progress-notify-interval` is short (both servers accept it), so the
    watch checker sees periodic progress notifications within a run;
  - for dolmen, DOLMEN_TEST_SLOW_SYNC_FILE points at a file per member (src/io/posix): writing
    a number of milliseconds into it makes every fdatasync of that member that much slower;
  - kill -9, SIGSTOP/SIGCONT by PID, `hashkv` on every member.
"""

import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import cluster  # noqa: E402  (Cluster, Member, CONFIG, run_etcdctl)

PROGRESS_NOTIFY_INTERVAL = "500ms"


class NetnsMember(cluster.Member):
    def __init__(self, name, binary, root_dir, network, index, extra_flags=()):
        super().__init__(name, binary, root_dir)
        self.network = network
        self.index = index
        self.ip = network.address(index)
        self.client_port, self.peer_port = 2379, 2380
        self.extra_flags = list(extra_flags)
        self.slow_sync_file = os.path.join(self.dir, "slow-sync-ms")
        self.stopped = False  # SIGSTOP'ed

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.ip, self.client_port)

    @property
    def peer_url(self):
        return "http://%s:%d" % (self.ip, self.peer_port)

    def command(self):
        env = []
        if cluster.CONFIG.server == "dolmen":
            env = ["env", "DOLMEN_TEST_SLOW_SYNC_FILE=" + self.slow_sync_file]
        return (self.network.exec_prefix(self.index) + env + super().command() +
                ["--experimental-watch-progress-notify-interval", PROGRESS_NOTIFY_INTERVAL] +
                self.extra_flags)

    def set_sync_delay_ms(self, ms):
        with open(self.slow_sync_file + ".tmp", "w") as f:
            f.write("%d\n" % ms)
        os.replace(self.slow_sync_file + ".tmp", self.slow_sync_file)

    def sigstop(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        if self.stopped and self.running:
            os.kill(self.pid, signal.SIGCONT)
        self.stopped = False

    def stop(self):
        self.sigcont()  # a stopped process cannot act on SIGTERM
        return super().stop()


class FaultCluster(cluster.Cluster):
    def __init__(self, network, snapshot_count=10000, extra_flags=()):
        super().__init__(network.size, token="dolmen-fault-test", snapshot_count=snapshot_count)
        self.network = network
        self.extra_flags = extra_flags

    def start(self, timeout=cluster.START_TIMEOUT_S):
        self.members = [NetnsMember("m%d" % (i + 1), self.binary, self.dir, self.network, i,
                                    self.extra_flags) for i in range(self.network.size)]
        for m in self.members:
            m.wipe_data()
            m.configure(self.initial_cluster(), "new", self.token, self.snapshot_count)
        for m in self.members:
            m.spawn()
        self.wait_healthy(timeout=timeout)
        return self

    def others(self, member):
        return [m for m in self.members if m is not member]

    def hashkv(self, revision, members=None):
        """{member name: hash} from `etcdctl endpoint hashkv --rev`, one call per member; None
        for a member that did not answer."""
        out = {}
        for m in members or self.members:
            rc, text, _ = m.etcdctl("endpoint", "hashkv", "--rev", str(revision), "-w", "json",
                                    timeout=10)
            out[m.name] = json.loads(text)[0]["HashKV"]["hash"] if rc == 0 else None
        return out

    def wait_hashkv_equal(self, revision, timeout=30):
        """Polls until every member answers HashKV at `revision` with one hash; returns it, or
        raises ClusterError with the last answers."""
        deadline = time.monotonic() + timeout
        while True:
            hashes = self.hashkv(revision)
            if None not in hashes.values() and len(set(hashes.values())) == 1:
                return hashes
            if time.monotonic() >= deadline:
                raise cluster.ClusterError("HashKV at revision %d differs or is missing after "
                                           "%.0fs: %r" % (revision, timeout, hashes))
            time.sleep(0.2)
