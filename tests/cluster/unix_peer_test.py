"""unix:// peer URLs, as etcd takes them: `--listen-peer-urls unix://NAME:PORT` (the same in
--initial-advertise-peer-urls and --initial-cluster) listens on, and the other members dial, the
unix-domain socket named "NAME:PORT" in the member's working directory.

  - three members on unix peer URLs (sockets in one temp dir, every member's working dir; client
    URLs on 127.0.0.1) form a cluster, a put on one is read on the others, `member list` shows
    the unix peer URLs; a member killed with SIGKILL leaves its socket file behind, and started
    again it replaces that stale file and catches up; a member added with `member add
    --peer-urls unix://m4:2380` joins through its peers' sockets; SIGTERM removes every socket
    file;
  - one member of dolmen and one of etcd 3.4 with the same flags: the same ids, the same
    `member list`, the socket while they run and none after SIGTERM, the same exit status;
    both refuse a path-style URL (unix:///abs/path) with etcd's message, and refuse unixs://
    without TLS.

Every wait is bounded; every process is stopped by its PID.
"""

import json
import os
import shutil
import stat
import subprocess
import tempfile

import cluster
import harness
from cluster import ClusterTestCase

EXIT_WAIT_S = 10.0


def is_socket(path):
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def member_list(member):
    rc, out, err = member.etcdctl("member", "list", "-w", "json")
    if rc != 0:
        raise cluster.ClusterError("member list via %s: %s" % (member.name, err))
    return json.loads(out)


def run_to_exit(binary, args, cwd, timeout=EXIT_WAIT_S):
    """Runs a server that is expected to refuse its flags; returns (status, output). A process
    still running after `timeout` is killed by its PID and reported with status None."""
    proc = subprocess.Popen(harness._die_with_parent_prefix() + [binary] + args, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=harness._clean_env())
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace")


class UnixPeerTest(ClusterTestCase):

    def test_three_members_on_unix_peer_urls(self):
        c = self.new_cluster(3, unix_peers=True)
        for m in c.members:
            self.assertEqual(m.peer_url, "unix://%s:2380" % m.name)
            self.assertTrue(is_socket(m.peer_socket_path), m.peer_socket_path)
        leader = c.wait_leader()

        # A write on one member is read, linearizably, on the others.
        writer = c.members[0]
        rc, out, err = writer.etcdctl("put", "over-unix", "hello", "-w", "json")
        self.assertEqual(rc, 0, err)
        revision = json.loads(out)["header"]["revision"]
        for reader in c.members[1:]:
            rc, out, err = reader.etcdctl("get", "over-unix", "-w", "json")
            self.assertEqual(rc, 0, err)
            kvs = json.loads(out).get("kvs", [])
            self.assertEqual([(cluster.b64(kv["value"]), kv["mod_revision"]) for kv in kvs],
                             [("hello", revision)], reader.name)

        # member list shows the unix peer URLs, in etcd's format.
        listed = member_list(c.members[2])["members"]
        self.assertEqual(sorted((e["name"], e["peerURLs"], e["clientURLs"]) for e in listed),
                         [(m.name, [m.peer_url], [m.endpoint]) for m in c.members])
        rc, out, err = c.members[1].etcdctl("member", "list")
        self.assertEqual(rc, 0, err)
        expected = sorted("%x, started, %s, %s, %s, false" % (e["ID"], e["name"], e["peerURLs"][0],
                                                              e["clientURLs"][0]) for e in listed)
        self.assertEqual(sorted(out.splitlines()), expected)

        # SIGKILL leaves the socket file; started again, the member takes it over (nobody
        # listens on it any more) and catches up.
        victim = next(m for m in c.members if m is not leader)
        victim.kill9()
        self.assertTrue(is_socket(victim.peer_socket_path), "SIGKILL removed the socket file?")
        rc, out, err = leader.etcdctl("put", "while-down", "v2")
        self.assertEqual(rc, 0, err)
        victim.spawn()
        c.wait_healthy()
        self.assertEqual(cluster.read_prefix(victim, "while-down"), {"while-down": "v2"})

        # A fourth member added on a unix peer URL joins through it: asks a peer for the
        # cluster (--initial-cluster-state existing), then catches up.
        joiner, initial_cluster = c.add_member("m4")
        self.assertIn("m4=unix://m4:2380", initial_cluster)
        joiner.spawn()
        c.wait_healthy()
        self.assertEqual(cluster.read_prefix(joiner, "over-unix"), {"over-unix": "hello"})
        self.assertTrue(is_socket(joiner.peer_socket_path))
        self.assertIn(["unix://m4:2380"], [e["peerURLs"] for e in member_list(joiner)["members"]])

        # SIGTERM removes the socket files.
        for m in c.members:
            m.stop()
            self.assertFalse(os.path.lexists(m.peer_socket_path), m.peer_socket_path)

    def one_member(self, binary):
        return self.new_cluster(1, unix_peers=True, binary=binary, token="dolmen-unix-one")

    def test_one_member_dolmen_and_etcd_alike(self):
        # etcd first: the reference. Each in its own temp dir, so both sockets are "m1:2380".
        servers = {"etcd": self.one_member(cluster.CONFIG.etcd_binary),
                   "server": self.one_member(cluster.CONFIG.binary)}
        seen = {}
        for label, c in servers.items():
            m = c.members[0]
            self.assertTrue(is_socket(m.peer_socket_path), "%s: %s" % (label, m.peer_socket_path))
            listed = member_list(m)
            rc, out, err = m.etcdctl("put", "k", "v", "-w", "json")
            self.assertEqual(rc, 0, err)
            revision = json.loads(out)["header"]["revision"]
            rc, text, err = m.etcdctl("member", "list")
            self.assertEqual(rc, 0, err)
            seen[label] = dict(
                cluster_id=listed["header"]["cluster_id"],
                members=[(e["ID"], e["name"], e["peerURLs"], e["clientURLs"] == [m.endpoint])
                         for e in listed["members"]],
                member_list=text.replace(m.endpoint, "<client>"),
                revision=revision)
        self.assertEqual(seen["etcd"]["members"][0][1:],
                         ("m1", ["unix://m1:2380"], True))
        self.assertEqual(seen["server"], seen["etcd"])

        statuses = {}
        for label, c in servers.items():
            m = c.members[0]
            statuses[label] = m.stop()
            self.assertFalse(os.path.lexists(m.peer_socket_path),
                             "%s left its socket file after SIGTERM" % label)
        self.assertEqual(statuses["server"], statuses["etcd"])

    def test_refusals_alike(self):
        tmp = tempfile.mkdtemp(prefix="dolmen-unix-refusals-")
        try:
            client = "http://%s:%d" % (cluster.LOOPBACK, harness.pick_free_port())
            path_style = "unix://" + os.path.join(tmp, "m1")  # unix:///tmp/.../m1

            def flags(url):
                return ["--name", "m1", "--data-dir", os.path.join(tmp, "m1.data"),
                        "--listen-client-urls", client, "--advertise-client-urls", client,
                        "--listen-peer-urls", url, "--initial-advertise-peer-urls", url,
                        "--initial-cluster", "m1=" + url]

            for label, binary in (("etcd", cluster.CONFIG.etcd_binary),
                                  ("server", cluster.CONFIG.binary)):
                status, out = run_to_exit(binary, flags(path_style), tmp)
                self.assertNotIn(status, (None, 0), "%s took %s:\n%s" % (label, path_style, out))
                self.assertIn('URL address does not have the form "host:port": ' + path_style,
                              out, label)
                # TLS for unixs:// is not configured: refused, not served in the clear.
                status, out = run_to_exit(binary, flags("unixs://m1:2380"), tmp)
                self.assertNotIn(status, (None, 0), "%s took unixs://:\n%s" % (label, out))
                self.assertFalse(os.path.lexists(os.path.join(tmp, "m1:2380")), label)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    cluster.main()
