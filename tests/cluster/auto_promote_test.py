"""--auto-promote-learners (dolmen only; etcd-io/etcd#15107, docs/membership.md): in a 3-member
cluster started with the flag, a learner added with `etcdctl member add --learner` and started
becomes a voting member with no operator, within a bounded wait, and the leader's log says why;
without the flag the same learner, caught up, stays a learner. etcd 3.4 has no such flag, so
the file runs against dolmen only (`--server dolmen`).

Every member runs on loopback ports cluster.py picked and is stopped by PID; every wait polls
with a deadline. The one fixed wait is the observation without the flag: the learner must still
be a learner after more than the promotion window (5 s) plus a check interval.
"""

import time

import cluster
from cluster import ClusterTestCase

FLAG = "--auto-promote-learners"
PROMOTE_WAIT_S = 30.0  # the learner catches up, then stays in sync for the 5 s window
OBSERVE_S = 8.0  # longer than the 5 s window and a 1 s check interval


def learner_flags(c, name):
    members = c.member_list_json()
    return {m.get("name", ""): bool(m.get("isLearner")) for m in members}.get(name)


class AutoPromoteTest(ClusterTestCase):

    def add_learner(self, c, extra):
        leader = c.wait_leader()
        written = cluster.load([leader], "auto/", 100)
        learner, _ = c.add_member("l4", learner=True)
        learner.extra_args = list(extra)
        learner.spawn()
        self.assertEventually(
            lambda: learner.running and
            cluster.read_prefix(learner, "auto/", serializable=True) == written,
            20, "the learner has all %d keys" % len(written))
        return leader, learner

    def test_learner_is_promoted_without_an_operator(self):
        c = self.new_cluster(3, member_args=[FLAG])
        leader, learner = self.add_learner(c, [FLAG])
        self.assertEventually(lambda: learner_flags(c, "l4") is False, PROMOTE_WAIT_S,
                              "l4 is a voting member")
        leader = c.wait_leader()
        log = leader.log_text()
        self.assertIn("auto-promote-learners: promoting learner l4", log)
        self.assertIn("in sync with the leader for", log)
        self.assertIn("auto-promote-learners: promoted learner l4", log)
        # A voter serves linearizable reads and takes writes.
        rc, out, err = learner.etcdctl("put", "after-promotion", "ok")
        self.assertEqual((rc, out), (0, "OK\n"), err)
        rc, out, err = learner.etcdctl("get", "after-promotion", "--print-value-only")
        self.assertEqual((rc, out), (0, "ok\n"), err)

    def test_without_the_flag_a_learner_stays_a_learner(self):
        c = self.new_cluster(3)
        leader, learner = self.add_learner(c, [])
        deadline = time.monotonic() + OBSERVE_S
        while time.monotonic() < deadline:
            self.assertIs(learner_flags(c, "l4"), True, "l4 was promoted without the flag")
            time.sleep(0.5)  # the time is the subject: no promotion within OBSERVE_S
        self.assertNotIn("auto-promote-learners", leader.log_text())


if __name__ == "__main__":
    cluster.main()
