#!/usr/bin/python3
"""The backend quota at small sizes, etcd 3.4 against dolmen with the same
--quota-backend-bytes: the same etcdctl sequence on both, and the same outcome.

Each case: puts of one value size until "database space exceeded"; the NOSPACE alarm is
listed and in Status; deleting and compacting is not enough (a put of the same size is
refused again once disarmed, and raises the alarm again, because etcd's dbSize keeps the
freed pages until a defragmentation); after `defrag` writes stay capped until `alarm
disarm`, then puts succeed again until the quota is reached again.

Compared after `harness.normalize`: every etcdctl answer of the sequence (exit code, stdout,
stderr). Not compared but bounded: how many puts fit. bbolt and LMDB lay data out
differently, and etcd's own count depends on timing (how many puts share one of its batch
commits: 56 to 125 puts of 100 bytes under 53248 bytes in etcd-against-etcd runs), so the
counts only have to agree within a factor of four. Before dolmen's quota counted the pages in
use, a fresh dolmen took one such put where etcd took 64.

Run: /usr/bin/python3 quota_test.py --dolmen PATH [unittest args]
"""

import sys

import harness
from harness import IntegrationTestCase

MAX_PUTS = 400  # bound on each fill loop; every case is refused well before it
FREED_WAIT_S = 5.0  # bound on the wait for a compaction's freed pages to show in Status
SPACE_EXCEEDED = "Error: etcdserver: mvcc: database space exceeded"
NOSPACE_ALARM = "memberID:<member_id> alarm:NOSPACE \n"


def cost(key, value):
    """etcd's quota cost of a put (etcdserver/quota.go)."""
    return 256 + len(key) + len(value)


class QuotaTest(IntegrationTestCase):

    def fill(self, servers, ids, prefix, value):
        """Puts prefix0000, prefix0001... on each server until one is refused. Returns the
        number that succeeded on each; the refusals must be the same."""
        def run(server):
            for i in range(MAX_PUTS):
                rc, _, err = server.etcdctl("put", "%s%04d" % (prefix, i), value)
                if rc != 0:
                    return i, harness.normalize(err, server, ids[server.label])
            return MAX_PUTS, ""
        (want, want_err), (got, got_err) = self.on_each(servers, run)
        sys.stderr.write("\n  %s: %d puts of %d bytes fit on etcd, %d on %s\n"
                         % (self.id().rsplit(".", 1)[-1], want, len(value), got,
                            servers[1].label))
        self.assertIn(SPACE_EXCEEDED, want_err, "etcd")
        self.assertEqual(want_err, got_err, "the refusal: etcd vs %s" % servers[1].label)
        for server, count in zip(servers, (want, got)):
            self.assertGreater(count, 0, "%s took no put" % server.label)
            self.assertLess(count, MAX_PUTS, "%s never reached the quota" % server.label)
        self.assertGreaterEqual(got, want // 4 - 1, "puts that fit: etcd %d, %s %d"
                                % (want, servers[1].label, got))
        self.assertLessEqual(got, want * 4 + 1, "puts that fit: etcd %d, %s %d"
                             % (want, servers[1].label, got))
        return want, got

    def scenario(self, quota_bytes, value_bytes):
        servers, ids = self.start_pair(["--quota-backend-bytes", str(quota_bytes)])
        value = "v" * value_bytes
        self.same(servers, ids, "alarm", "list")
        etcd, subject = servers
        # A fresh dolmen leaves most of the quota free (issue 19: it once took a single put).
        # etcd's fresh size is the reference's timing, not a property: bbolt cannot reuse pages
        # an open read transaction may still see, so it was 20480 or 24576 bytes on a quiet
        # machine and 32768 (over half of 53248) once in CI. It only has to leave room.
        # In the reference run etcd stands in for dolmen, and gets etcd's bound on both sides.
        subject_is_dolmen = harness.CONFIG.dolmen_kind == "dolmen"
        self.assertLess(self.status(subject)["dbSize"],
                        quota_bytes // 2 if subject_is_dolmen else quota_bytes, subject.label)
        self.assertLess(self.status(etcd)["dbSize"], quota_bytes, etcd.label)

        self.fill(servers, ids, "a", value)
        self.same(servers, ids, "alarm", "list", out_has=NOSPACE_ALARM)
        for server, st in zip(servers, self.on_each(servers, self.status)):
            self.assertIn("memberID:%d alarm:NOSPACE " % ids[server.label][1],
                          st.get("errors", []), server.label)
            # What the quota counts is what Status reports as dbSize: it is full.
            self.assertGreaterEqual(st["dbSize"] + cost("a0000", value), quota_bytes,
                                    server.label)
            self.assertLessEqual(st["dbSizeInUse"], st["dbSize"], server.label)

        # Delete and compact (each side at its own revision: the counts may differ).
        def delete_and_compact(server):
            if server.etcdctl("del", "a", "--prefix")[0] != 0:
                raise harness.ServerError("%s: del failed" % server.label)
            revision = self.status(server)["header"]["revision"]
            if server.etcdctl("compact", str(revision))[0] != 0:
                raise harness.ServerError("%s: compact failed" % server.label)
            # etcd's sizes follow its bbolt batch commits (every 100 ms), and its compaction
            # deletes in the background: the freed pages show within a bounded wait.
            return harness.retry_while(lambda: self.status(server),
                                       lambda st: st["dbSizeInUse"] >= st["dbSize"], FREED_WAIT_S)
        for server, st in zip(servers, self.on_each(servers, delete_and_compact)):
            self.assertLess(st["dbSizeInUse"], st["dbSize"], server.label)
        # Not enough without a defragmentation: a put of the same size is refused again.
        self.same(servers, ids, "alarm", "disarm", out_has=NOSPACE_ALARM)
        self.same(servers, ids, "put", "a0000", value, rc=1, out_has=SPACE_EXCEEDED)
        self.same(servers, ids, "alarm", "list", out_has=NOSPACE_ALARM)

        before_defrag = self.on_each(servers, self.status)
        self.same(servers, ids, "defrag", out_has="Finished defragmenting")
        # The file shrank on both. For dolmen, most of the quota is free again. Not "below
        # half": dolmen's defragmentation copies while writes go on and replays onto the copy
        # what was committed meanwhile (the member's own bookkeeping included), which can
        # leave a page or two beyond a minimal copy; at 53248 bytes that is 28672 against
        # etcd's usual 20480 (etcd's own size after it follows the timing noted above).
        after_defrag = self.on_each(servers, self.status)
        for server, before, after in zip(servers, before_defrag, after_defrag):
            self.assertLess(after["dbSize"], before["dbSize"], server.label)
        if subject_is_dolmen:
            self.assertLess(after_defrag[1]["dbSize"], quota_bytes * 3 // 5, subject.label)
        self.same(servers, ids, "put", "capped", "1", rc=1, out_has=SPACE_EXCEEDED)
        self.same(servers, ids, "alarm", "disarm", out_has=NOSPACE_ALARM)
        self.same(servers, ids, "alarm", "list")

        self.fill(servers, ids, "b", value)
        self.same(servers, ids, "alarm", "list", out_has=NOSPACE_ALARM)
        self.same(servers, ids, "get", "b0000", "--print-value-only", out_has=value)

    def test_53248_bytes_100_byte_values(self):  # the size of the report (issue 19)
        self.scenario(53248, 100)

    def test_65536_bytes_1000_byte_values(self):
        self.scenario(65536, 1000)

    def test_100000_bytes_20000_byte_values(self):  # values on overflow pages
        self.scenario(100000, 20000)

    def test_1_mib_20000_byte_values(self):
        self.scenario(1 << 20, 20000)


if __name__ == "__main__":
    harness.main()
