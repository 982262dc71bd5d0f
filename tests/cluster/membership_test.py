"""Membership: member list of 3 and 5 members, remove + add back through a snapshot, a learner
added, refused promotion while behind, promoted once in sync, and a member with another
--initial-cluster-token that cannot join."""

import re

import cluster
from cluster import ClusterTestCase

# What a member's log says once it was brought up to date by a snapshot rather than by log
# entries. etcd 3.4 (capnslog): "etcdserver: applied incoming snapshot at index N". For dolmen a
# line that says a snapshot was applied/installed/restored/recovered, and not that it failed or
# is not supported (a snapshot that merely arrived is not a rejoin through it).
SNAPSHOT_EVIDENCE = {
    "etcd": (re.compile(r"applied incoming snapshot at index \d+"), None),
    "dolmen": (re.compile(r"(?i)snapshot.*\b(applied|installed|restored|recovered)\b|"
                          r"\b(applied|installed|restored|recovered)\b.*snapshot"),
               re.compile(r"(?i)not supported|not yet|\bfail|cannot|unable|refus|error")),
}

# What a member started with another --initial-cluster-token says about why it cannot join.
# etcd 3.4's rafthttp: "request sent was ignored (cluster ID mismatch: peer[ID]=X, local=Y)".
# For dolmen any line that says the same: a cluster id mismatch, the token, or the two cluster
# ids side by side.
TOKEN_MISMATCH = {
    "etcd": re.compile(r"cluster ID mismatch"),
    "dolmen": re.compile(r"(?i)cluster[ _-]?id mismatch|initial-cluster-token|"
                         r"cluster [0-9a-f]+\b.*\bcluster [0-9a-f]+"),
}

# etcdctl prints the ids of member add/remove/promote with "%16x" (space-padded to 16), those of
# member list and move-leader with "%x".
# How long a removed member may take to notice and exit (etcd: within a heartbeat or two).
REMOVED_EXIT_WAIT_S = 15.0

PROMOTE_NOT_IN_SYNC = ("Error: etcdserver: can only promote a learner member which is in sync "
                       "with leader")


def server_kind(c):
    """Which server's log patterns apply to cluster `c`."""
    return "etcd" if c.binary == cluster.CONFIG.etcd_binary else "dolmen"


def member_list_line(member_id, status, name, peer_url, client_url, learner):
    """One line of `etcdctl member list` (simple format), as etcdctl 3.4 prints it."""
    return "%x, %s, %s, %s, %s, %s" % (member_id, status, name, peer_url, client_url,
                                       "true" if learner else "false")


class MembershipTest(ClusterTestCase):

    def expected_member_list(self, c, learners=(), unstarted=()):
        """The exact `member list` output for the cluster's current members, sorted by id as
        etcd sorts them; ids are the ones each member reports in its own response header."""
        rows = []
        for m in c.members:
            if m.proc is None and m not in unstarted:
                continue
            if m in unstarted:
                rows.append((c.member_id(m), "unstarted", "", m.peer_url, "", m in learners))
            else:
                rows.append((m.status()["header"]["member_id"], "started", m.name, m.peer_url,
                             m.endpoint, m in learners))
        return "".join(member_list_line(*r) + "\n" for r in sorted(rows))

    def check_member_list(self, size):
        c = self.new_cluster(size)
        expected = self.expected_member_list(c)
        self.assertEqual(len(expected.splitlines()), size)
        for via in c.members:
            rc, out, err = via.etcdctl("member", "list")
            self.assertEqual((rc, err), (0, ""), via.name)
            self.assertEqual(out, expected, "member list via %s" % via.name)
        # -w json names the same ids, and every member agrees on the cluster id.
        ids = {m.status()["header"]["member_id"] for m in c.members}
        self.assertEqual({e["ID"] for e in c.member_list_json()}, ids)
        self.assertEqual(len({m.status()["header"]["cluster_id"] for m in c.members}), 1)

    def test_member_list_3(self):
        self.check_member_list(3)

    def test_member_list_5(self):
        self.check_member_list(5)

    def test_remove_then_add_back_through_snapshot(self):
        self._remove_then_add_back_through_snapshot()

    def _remove_then_add_back_through_snapshot(self):
        # etcd compacts its raft log at each snapshot, keeping the last 5000 entries for slow
        # followers; with --snapshot-count 100, 5600 writes leave a log that starts after
        # index 500, so a member with an empty data dir can only catch up by a snapshot.
        c = self.new_cluster(3, snapshot_count=100)
        leader = c.wait_leader()
        victim = next(m for m in c.members if m is not leader)
        victim_id = c.member_id(victim)
        cluster.load([leader], "before/", 100)

        self.assertNotEqual(victim.stop(), -9, "stopped by SIGTERM, not SIGKILL")
        rc, out, err = c.remove_member(victim)
        self.assertEqual(rc, 0, err)
        cluster_id = leader.status()["header"]["cluster_id"]
        self.assertEqual(out, "Member %16x removed from cluster %16x\n" % (victim_id, cluster_id))
        self.assertEqual(leader.etcdctl("member", "list")[1], self.expected_member_list(c))

        written = cluster.load([m for m in c.running()], "load/", 5600)
        if server_kind(c) == "etcd":
            self.assertRegex(leader.log_text(), r"compacted raft log at [1-9]\d*",
                             "precondition: the leader's log was compacted")

        member, initial_cluster = c.add_member(victim.name, reuse=victim)
        self.assertEqual(sorted(initial_cluster.split(",")),
                         sorted("%s=%s" % (m.name, m.peer_url) for m in c.members))
        new_id = c.member_id(member)
        self.assertNotEqual(new_id, victim_id, "a member added again gets a new id")
        self.assertEqual(leader.etcdctl("member", "list")[1],
                         self.expected_member_list(c, unstarted=[member]))

        member.spawn()
        self._check_rejoined(c, leader, member, new_id, written)

    def _check_rejoined(self, c, leader, member, new_id, written):
        c.wait_healthy([member])
        # Caught up: it serves every key locally (serializable), and linearizably.
        self.assertEventually(
            lambda: cluster.read_prefix(member, "load/", serializable=True) == written,
            20, "%s has all %d keys locally" % (member.name, len(written)))
        self.assertEqual(cluster.read_prefix(member, "load/"), written)
        lines = cluster.log_lines_after_start(member)
        evidence, negation = SNAPSHOT_EVIDENCE[server_kind(c)]
        self.assertTrue(any(evidence.search(line) and not (negation and negation.search(line))
                            for line in lines),
                        "%s log shows no snapshot applied (%s); its snapshot lines: %r"
                        % (member.name, evidence.pattern,
                           [line for line in lines if "snapshot" in line.lower()][:5]))
        self.assertEqual(leader.etcdctl("member", "list")[1], self.expected_member_list(c))
        self.assertEqual(member.status()["header"]["member_id"], new_id)

    def test_removed_member_exits_cleanly(self):
        # etcd logs that the member was permanently removed and exits 0: a removal is the
        # cluster's decision, not a crash for systemd or a container runtime to act on.
        c = self.new_cluster(3)
        leader = c.wait_leader()
        victim = next(m for m in c.members if m is not leader)
        rc, _, err = c.remove_member(victim)
        self.assertEqual(rc, 0, err)
        status = victim.wait_exit(REMOVED_EXIT_WAIT_S)
        self.assertIsNotNone(status, "%s still runs %.0fs after its removal"
                             % (victim.name, REMOVED_EXIT_WAIT_S))
        self.assertEqual(status, 0, victim.last_start_log()[-3000:])
        log = victim.last_start_log()
        self.assertIn("the member has been permanently removed from the cluster", log)
        self.assertNotIn("fatal", log.lower())
        # The other two go on.
        c.members.remove(victim)
        rc, _, err = leader.etcdctl("put", "after-removal", "1")
        self.assertEqual((rc, err), (0, ""))

    def test_learner_catches_up_and_is_promoted(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        written = cluster.load([leader], "learn/", 300)
        learner, _ = c.add_member("l4", learner=True)
        learner_id = c.member_id(learner)
        cluster_id = leader.status()["header"]["cluster_id"]
        self.assertEqual(c.last_add_output,
                         'Member %16x added to cluster %16x\n\n'
                         'ETCD_NAME="l4"\n'
                         'ETCD_INITIAL_CLUSTER="%s"\n'
                         'ETCD_INITIAL_ADVERTISE_PEER_URLS="%s"\n'
                         'ETCD_INITIAL_CLUSTER_STATE="existing"\n'
                         % (learner_id, cluster_id, learner.flags["initial_cluster"],
                            learner.peer_url))
        self.assertEqual(leader.etcdctl("member", "list")[1],
                         self.expected_member_list(c, learners=[learner], unstarted=[learner]))

        # Not started, so not in sync: etcd refuses the promotion.
        rc, out, err = leader.etcdctl("member", "promote", "%x" % learner_id)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err.splitlines()[-1], PROMOTE_NOT_IN_SYNC)

        learner.spawn()
        # A learner serves serializable reads only; poll until it has every key locally.
        self.assertEventually(
            lambda: learner.running and
            cluster.read_prefix(learner, "learn/", serializable=True) == written,
            20, "learner has all %d keys" % len(written))
        status = learner.status()
        self.assertTrue(status.get("isLearner"), status)
        rc, out, err = learner.etcdctl("get", "learn/000000")
        self.assertEqual(rc, 1)
        self.assertEqual(err.splitlines()[-1], "Error: etcdserver: rpc not supported for learner")
        self.assertEqual(leader.etcdctl("member", "list")[1],
                         self.expected_member_list(c, learners=[learner]))

        # In sync now; the leader may still need a heartbeat round to know it, so poll.
        rc, out, err = cluster.retry_while(
            lambda: leader.etcdctl("member", "promote", "%x" % learner_id),
            lambda r: r[0] != 0 and PROMOTE_NOT_IN_SYNC in r[2], 15, 0.2)
        self.assertEqual((rc, out, err),
                         (0, "Member %16x promoted in cluster %16x\n" % (learner_id, cluster_id), ""))
        self.assertEqual(leader.etcdctl("member", "list")[1], self.expected_member_list(c))
        c.wait_healthy()  # now a voter: linearizable reads through it work
        self.assertEqual(cluster.read_prefix(learner, "learn/"), written)
        self.assertFalse(learner.status().get("isLearner", False))

    def test_other_token_cannot_join(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        before = leader.etcdctl("member", "list")[1]
        # x4 believes it founds a new 4-member cluster with the three running members, under
        # another token: it derives other member ids and another cluster id.
        stranger = cluster.Member("x4", c.binary, c.dir, c.taken_ports())
        stranger.configure(c.initial_cluster(c.members + [stranger]), "new", "another-token",
                           c.snapshot_count)
        c.members.append(stranger)
        stranger.spawn()

        pattern = TOKEN_MISMATCH[server_kind(c)]

        def says_why():
            return [line for line in cluster.log_lines_after_start(stranger)
                    if pattern.search(line)][:1]
        why = self.assertEventually(says_why, 15, "x4 logs why it cannot join")
        print("x4 says: %s" % why[0])
        # It never serves: it has no leader (still running, like etcd) or it gave up (exited
        # non-zero); either way never a healthy member.
        rc = stranger.wait_exit(1)
        self.assertNotEqual(rc, 0)
        if rc is None:
            health = cluster.run_etcdctl(stranger.endpoint,
                                         ["endpoint", "health", "--command-timeout=2s"],
                                         timeout=10)
            self.assertNotEqual(health[0], 0, health)

        # The cluster is unaffected: same members, healthy, writable from every member.
        for m in c.members[:3]:
            self.assertEqual(m.etcdctl("member", "list")[1], before, m.name)
        c.wait_healthy(c.members[:3], timeout=10)
        for m in c.members[:3]:
            rc, out, err = m.etcdctl("put", "after-stranger-" + m.name, "ok")
            self.assertEqual((rc, out), (0, "OK\n"), err)
        self.assertIs(c.leader(c.members[:3]), leader, "leadership was not disturbed")


if __name__ == "__main__":
    cluster.main()
