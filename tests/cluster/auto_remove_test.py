"""--auto-remove-unreachable-after (dolmen only; docs/membership.md, "Dead-member removal"): in a
3-member cluster started with the flag at 2 s, a follower killed with SIGKILL is removed by the
leader once unreachable for 2 s, and the leader's log says why; the two survivors keep serving
writes. etcd 3.4 has no such flag, so the file runs against dolmen only (`--server dolmen`).

Every member runs on loopback ports cluster.py picked and is stopped by PID; every wait polls
with a deadline.
"""

import cluster
from cluster import ClusterTestCase

FLAGS = ["--auto-remove-unreachable-after", "2s"]
REMOVE_WAIT_S = 30.0  # 2 s unreachable, an election timeout, a round, the conf change


class AutoRemoveTest(ClusterTestCase):

    def test_an_unreachable_follower_is_removed(self):
        c = self.new_cluster(3, member_args=FLAGS)
        leader = c.wait_leader()
        victim = next(m for m in c.running() if m is not leader)
        victim.kill9()

        def names():
            return sorted(m.get("name", "") for m in c.member_list_json(via=leader))
        survivors = sorted(m.name for m in c.running())
        self.assertEventually(lambda: names() == survivors, REMOVE_WAIT_S,
                              "%s removed, leaving %s" % (victim.name, survivors))
        log = leader.log_text()
        self.assertIn("dead-member removal: voter %s (" % victim.name, log)
        self.assertIn("unreachable: not heard from for", log)
        self.assertIn("the remaining voters keep a healthy quorum", log)
        rc, out, err = leader.etcdctl("put", "after-removal", "ok")
        self.assertEqual((rc, out), (0, "OK\n"), err)


if __name__ == "__main__":
    cluster.main()
