#!/usr/bin/python3
"""The Maintenance service through etcdctl 3.4, etcd 3.4 against dolmen: `endpoint hashkv`,
`defrag` (also `--cluster`), `snapshot save`, and the NOSPACE alarm with a small
--quota-backend-bytes (`alarm list`, `alarm disarm`), with the same flags on both servers.

Outputs are compared after `harness.normalize` (ids, endpoints, etcdctl's own timestamps). What
depends on the storage engine is not compared but asserted on each side: how many puts fit
under the quota (bbolt and LMDB grow differently), dbSize, the snapshot file's bytes.

Run: /usr/bin/python3 maintenance_test.py --dolmen PATH [unittest args]
"""

import hashlib

import harness
from harness import IntegrationTestCase

QUOTA_BYTES = 256 * 1024
VALUE = "x" * 20000  # ~13 puts fill the quota on either engine
MAX_PUTS = 100       # bound on the fill loop


class MaintenanceTest(IntegrationTestCase):

    # -- hash -------------------------------------------------------------------------------

    def test_endpoint_hashkv(self):
        servers, ids = self.start_pair()
        for args in (("put", "a", "1"), ("put", "b", "2"), ("put", "a", "3"), ("del", "b"),
                     ("put", "c", "4")):
            self.same(servers, ids, *args)
        self.same(servers, ids, "endpoint", "hashkv", out_has="<endpoint>, ")
        self.same(servers, ids, "endpoint", "hashkv", "-w", "json", out_has='"hash":')
        self.same(servers, ids, "compact", "4", out_has="compacted revision 4")
        self.same(servers, ids, "endpoint", "hashkv", "-w", "json", out_has='"compact_revision":4')
        self.same(servers, ids, "endpoint", "hashkv", "-w", "table", out_has="HASH")

    # -- defrag -----------------------------------------------------------------------------

    def test_defrag_shrinks_and_keeps_data(self):
        servers, ids = self.start_pair()

        def fill_and_delete(server):
            for i in range(40):
                rc, _, err = server.etcdctl("put", "big%02d" % i, VALUE)
                if rc != 0:
                    raise harness.ServerError("%s: put failed: %s" % (server.label, err))
            for args in (("del", "big", "--prefix"), ("put", "keep", "me")):
                if server.etcdctl(*args)[0] != 0:
                    raise harness.ServerError("%s: %s failed" % (server.label, args))
            revision = self.status(server)["header"]["revision"]
            if server.etcdctl("compact", str(revision))[0] != 0:
                raise harness.ServerError("%s: compact failed" % server.label)
            return self.status(server)["dbSize"]

        before = self.on_each(servers, fill_and_delete)
        self.same(servers, ids, "defrag", out_has="Finished defragmenting etcd member[http://<endpoint>]")
        self.same(servers, ids, "defrag", "--cluster",
                  out_has="Finished defragmenting etcd member[http://<endpoint>]")
        after = self.on_each(servers, lambda s: self.status(s)["dbSize"])
        for server, b, a in zip(servers, before, after):
            self.assertGreater(b, 40 * len(VALUE) // 2, "%s: dbSize before" % server.label)
            self.assertLess(a * 4, b, "%s: dbSize %d -> %d" % (server.label, b, a))
        self.same(servers, ids, "get", "keep", out_has="keep\nme")
        self.same(servers, ids, "get", "big", "--prefix", "-w", "json",
                  out_has='"revision":43')
        self.same(servers, ids, "put", "after", "defrag", out_has="OK")

    # -- snapshot ---------------------------------------------------------------------------

    def test_snapshot_save(self):
        servers, ids = self.start_pair()
        for i in range(20):
            self.same(servers, ids, "put", "k%02d" % i, "v%d" % i)

        def save(server):
            path = server.tmp_dir + "/saved.db"
            rc, out, _ = server.etcdctl("snapshot", "save", path)
            with open(path, "rb") as f:
                data = f.read()
            return rc, out.replace(path, "<path>"), data

        answers = self.on_each(servers, save)
        (etcd_rc, etcd_out, _), (rc, out, data) = answers
        self.assertEqual(etcd_rc, 0)
        self.assertEqual(etcd_out, "Snapshot saved at <path>\n")
        self.assertEqual((rc, out), (etcd_rc, etcd_out))
        for server, (_, _, saved) in zip(servers, answers):
            # etcd's format: the database image, then the SHA-256 of the image.
            self.assertEqual(len(saved) % 512, 32, server.label)
            self.assertEqual(hashlib.sha256(saved[:-32]).digest(), saved[-32:], server.label)
        if servers[1].kind == "dolmen":
            # An LMDB image: the meta page's magic 0xBEEFC0DE after the 16-byte page header.
            self.assertEqual(data[16:20], bytes.fromhex("dec0efbe"))
        # The server cleaned up after itself, and still works.
        self.same(servers, ids, "get", "k00", out_has="k00\nv0")

    # -- quota and alarms -------------------------------------------------------------------

    def test_nospace_alarm_list_and_disarm(self):
        servers, ids = self.start_pair(["--quota-backend-bytes", str(QUOTA_BYTES)])
        self.same(servers, ids, "alarm", "list")  # none yet

        def fill(server):
            for i in range(MAX_PUTS):
                rc, _, err = server.etcdctl("put", "k%03d" % i, VALUE)
                if rc != 0:
                    return i, harness.normalize(err, server, ids[server.label])
            return MAX_PUTS, ""

        filled = self.on_each(servers, fill)
        for server, (count, err) in zip(servers, filled):
            self.assertGreater(count, 3, server.label)
            self.assertLess(count, MAX_PUTS, "%s never hit the quota" % server.label)
        self.assertIn("Error: etcdserver: mvcc: database space exceeded", filled[0][1])
        self.assertEqual(filled[0][1], filled[1][1])

        self.same(servers, ids, "alarm", "list", out_has="memberID:<member_id> alarm:NOSPACE \n")
        # Writes that add data are refused; reads and deletes work.
        self.same(servers, ids, "put", "more", "1", rc=1)
        self.same(servers, ids, "lease", "grant", "60", rc=1)
        self.same(servers, ids, "get", "k000", "--print-value-only", out_has=VALUE)
        self.same(servers, ids, "del", "k000", out_has="1")
        statuses = self.on_each(servers, self.status)
        for server, st in zip(servers, statuses):
            self.assertIn("memberID:%d alarm:NOSPACE " % ids[server.label][1],
                          st.get("errors", []), server.label)

        # Make room: delete everything, compact, defragment; then disarm.
        def make_room(server):
            if server.etcdctl("del", "k", "--prefix")[0] != 0:
                raise harness.ServerError("%s: del failed" % server.label)
            revision = self.status(server)["header"]["revision"]
            if server.etcdctl("compact", str(revision))[0] != 0:
                raise harness.ServerError("%s: compact failed" % server.label)
            return True

        self.on_each(servers, make_room)
        self.same(servers, ids, "defrag", out_has="Finished defragmenting")
        sizes = self.on_each(servers, lambda s: self.status(s)["dbSize"])
        for server, size in zip(servers, sizes):
            self.assertLess(size, QUOTA_BYTES // 2, server.label)
        self.same(servers, ids, "put", "still", "capped", rc=1)  # until disarmed
        self.same(servers, ids, "alarm", "disarm", out_has="memberID:<member_id> alarm:NOSPACE \n")
        self.same(servers, ids, "alarm", "list")
        self.same(servers, ids, "alarm", "disarm")  # nothing left
        self.same(servers, ids, "put", "room", "again", out_has="OK")
        self.same(servers, ids, "get", "room", out_has="room\nagain")

        # Alarms persist across a restart; raise one again and restart both.
        self.on_each(servers, fill)
        self.same(servers, ids, "alarm", "list", out_has="alarm:NOSPACE")
        for server in servers:  # each its own one-member cluster
            server.restart()
        self.same(servers, ids, "alarm", "list", out_has="memberID:<member_id> alarm:NOSPACE \n")
        self.same(servers, ids, "put", "more", "1", rc=1)


if __name__ == "__main__":
    harness.main()
