"""Replication: a write on one member is read linearizably on every other (3 and 5 members), and
HashKV is equal on all members after a mixed load."""

import json

import cluster
from cluster import ClusterTestCase


class ReplicationTest(ClusterTestCase):

    def check_write_then_read_everywhere(self, size):
        c = self.new_cluster(size)
        for writer in c.members:
            key, value = "from-" + writer.name, "written-on-" + writer.name
            rc, out, err = writer.etcdctl("put", key, value, "-w", "json")
            self.assertEqual(rc, 0, err)
            put_revision = json.loads(out)["header"]["revision"]
            # No waiting: a linearizable read on any other member must already see the write.
            for reader in c.members:
                if reader is writer:
                    continue
                rc, out, err = reader.etcdctl("get", key, "-w", "json")
                self.assertEqual(rc, 0, err)
                got = json.loads(out)
                self.assertEqual(len(got.get("kvs", [])), 1, "%s on %s: %s"
                                 % (key, reader.name, out))
                kv = got["kvs"][0]
                self.assertEqual(cluster.b64(kv["value"]), value, reader.name)
                self.assertEqual(kv["mod_revision"], put_revision, reader.name)
                self.assertGreaterEqual(got["header"]["revision"], put_revision, reader.name)
        # Every write is one revision, whichever member took it.
        revisions = {m.status()["header"]["revision"] for m in c.members}
        self.assertEqual(revisions, {1 + size})

    def test_write_on_one_read_on_every_other_3(self):
        self.check_write_then_read_everywhere(3)

    def test_write_on_one_read_on_every_other_5(self):
        self.check_write_then_read_everywhere(5)

    def hashkv(self, c, *extra):
        rc, out, err = c.etcdctl("endpoint", "hashkv", "--cluster", "-w", "json", *extra)
        self.assertEqual(rc, 0, err)
        rows = json.loads(out)
        self.assertEqual(sorted(r["Endpoint"] for r in rows),
                         sorted(m.endpoint for m in c.members))
        return rows

    def test_hashkv_equal_after_load(self):
        c = self.new_cluster(3)
        empty_hash = {r["HashKV"]["hash"] for r in self.hashkv(c)}
        self.assertEqual(len(empty_hash), 1)

        # Puts through every member, then overwrites, deletes, a txn, and a compaction.
        cluster.load(c.members, "hash/", 1500, threads=6)
        cluster.load(c.members[1:], "hash/", 300, threads=4, value_size=40)
        for i, m in enumerate(c.members):
            rc, out, err = m.etcdctl("del", "hash/%06d" % (10 + i))
            self.assertEqual((rc, out), (0, "1\n"), err)
        txn = ('value("hash/000500") = "%s"\n\nput hash/txn yes\ndel hash/000501\n\n'
               'put hash/txn no\n\n' % "v500-".ljust(16, "x"))
        rc, out, err = c.members[2].etcdctl("txn", stdin=txn)
        self.assertEqual((rc, out), (0, "SUCCESS\n\nOK\n\n1\n"), err)
        rc, out, err = c.etcdctl("compact", "1000", via=c.members[1])
        self.assertEqual((rc, out), (0, "compacted revision 1000\n"), err)
        rc, out, err = c.etcdctl("put", "hash/last", "end", "-w", "json", via=c.members[0])
        last_revision = json.loads(out)["header"]["revision"]
        self.assertEqual(last_revision, 1 + 1500 + 300 + 3 + 1 + 1)

        # A linearizable read on each member first: HashKV itself is a local read, and a
        # follower may not have applied the last entries yet.
        for m in c.members:
            self.assertEqual(cluster.read_prefix(m, "hash/last"), {"hash/last": "end"})
        rows = self.hashkv(c)
        hashes = {r["Endpoint"]: r["HashKV"]["hash"] for r in rows}
        self.assertEqual(len(set(hashes.values())), 1, hashes)
        self.assertNotEqual(set(hashes.values()), empty_hash, "the load changed the hash")
        self.assertEqual({r["HashKV"]["compact_revision"] for r in rows}, {1000})
        self.assertEqual({r["HashKV"]["header"]["revision"] for r in rows}, {last_revision})

        # At a fixed older revision too (--rev): equal, and different from the latest.
        old = self.hashkv(c, "--rev", "1200")
        self.assertEqual(len({r["HashKV"]["hash"] for r in old}), 1, old)
        self.assertNotEqual({r["HashKV"]["hash"] for r in old}, set(hashes.values()))


if __name__ == "__main__":
    cluster.main()
