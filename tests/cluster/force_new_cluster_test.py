"""--force-new-cluster (docs/membership.md): recovering one surviving member of three.

A 3-member cluster gets KEYS keys; two members are stopped by PID; the survivor cannot write
(no quorum). Restarted on its data dir with --force-new-cluster it leads a one-member cluster
(same cluster id): `member list` shows only itself, every key written before is there, new
writes succeed, and its log carries the warning. One of the removed members, restarted on its
old data dir, is refused and stops (it logs that it was removed). Restarted again without the
flag the survivor stays alone.
Then a new member is added with `member add`, joins with an empty data dir and has every key.
Run against etcd 3.4 as the reference (same steps, same outcome)."""

import json

import cluster
from cluster import ClusterTestCase

KEYS = 50
NO_QUORUM_TIMEOUT = "--command-timeout=3s"
REMOVED_EXIT_WAIT_S = 30.0
REMOVED_LOG = "the member has been permanently removed from the cluster"
# What each server logs when it forces the new cluster.
WARNING = {"dolmen": "WARNING: --force-new-cluster: forcing this member into a one-member cluster",
           "etcd": "forcing restart of member"}


class ForceNewClusterTest(ClusterTestCase):

    def keys(self, member, serializable=False):
        args = ["get", "fk/", "--prefix", "-w", "json"]
        if serializable:
            args.append("--consistency=s")
        rc, out, err = member.etcdctl(*args)
        self.assertEqual(rc, 0, err)
        kvs = json.loads(out).get("kvs", [])
        return len(kvs)

    def cluster_id(self, member):
        rc, out, err = member.etcdctl("endpoint", "status", "-w", "json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)[0]["Status"]["header"]["cluster_id"]

    def test_survivor_of_lost_quorum_becomes_a_one_member_cluster(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        for i in range(KEYS):
            rc, _, err = leader.etcdctl("put", "fk/%03d" % i, "v%d" % i)
            self.assertEqual(rc, 0, err)
        survivor = next(m for m in c.members if m is not leader)
        survivor_id = c.member_id(survivor)
        cluster_id = self.cluster_id(survivor)
        self.assertEventually(lambda: self.keys(survivor, serializable=True) == KEYS, 10,
                              "%s has every key" % survivor.name)

        # Quorum lost: the two others stop (by PID); the survivor cannot write.
        for m in c.members:
            if m is not survivor:
                m.stop()
        rc, _, err = survivor.etcdctl(NO_QUORUM_TIMEOUT, "put", "fk/lost", "x")
        self.assertNotEqual(rc, 0, "a write without quorum succeeded")

        # Restart it with --force-new-cluster.
        survivor.extra_args.append("--force-new-cluster")
        survivor.restart()
        c.wait_healthy([survivor])
        self.assertIs(c.wait_leader([survivor]), survivor)
        self.assertIn(WARNING[cluster.CONFIG.server], survivor.last_start_log())
        members = c.member_list_json(via=survivor)
        self.assertEqual([m["ID"] for m in members], [survivor_id])
        self.assertEqual(self.cluster_id(survivor), cluster_id)
        self.assertEqual(self.keys(survivor), KEYS)
        rc, out, err = survivor.etcdctl("put", "fk/after", "yes")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)

        # A removed member restarted on its old data dir is refused by the survivor and stops.
        removed = next(m for m in c.members if m is not survivor)
        removed.spawn()
        status = removed.wait_exit(REMOVED_EXIT_WAIT_S)
        self.assertIsNotNone(status, "%s still runs after its removal" % removed.name)
        self.assertIn(REMOVED_LOG, removed.last_start_log())
        self.assertEqual(len(c.member_list_json(via=survivor)), 1)

        # Without the flag from now on: still alone, with its data.
        survivor.extra_args.remove("--force-new-cluster")
        survivor.restart()
        c.wait_healthy([survivor])
        self.assertEqual(len(c.member_list_json(via=survivor)), 1)
        self.assertEqual(self.keys(survivor), KEYS + 1)

        # A new member joins the one-member cluster and gets every key.
        newcomer, _ = c.add_member("n1", via=survivor)
        newcomer.spawn()
        c.wait_healthy([survivor, newcomer])
        self.assertEventually(lambda: self.keys(newcomer, serializable=True) == KEYS + 1, 20,
                              "the new member has every key")
        self.assertEqual(len(c.member_list_json(via=newcomer)), 2)
        rc, _, err = newcomer.etcdctl("put", "fk/two", "members")
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    cluster.main()
