"""Watch and lease across a 3-member cluster: a watch on a follower sees every write made
through the leader, in order; a watcher resumed from its last revision + 1 after its member
restarts misses nothing; keys attached to a lease go after its TTL although the leader was
killed in between; a lease kept alive through a follower outlives its TTL, and `lease
timetolive` / `lease keep-alive --once` on a follower answer as on the leader (both forwarded to
the leader, as etcd does); `member promote` of a learner through a follower; clientv3's require-leader metadata on a member
that lost its leader."""

import queue
import re
import threading
import time

import cluster
from cluster import ClusterTestCase

WATCH_WRITES = 500          # writes checked one by one in the ordering test
RESUME_WRITES = 300         # writes made while the watched member restarts
WATCH_TIMEOUT_S = 30.0      # bound for a watcher to receive what was written
LEASE_TTL_S = 5             # the lease that must expire across a leader kill
KEEPALIVE_TTL_S = 3         # the lease kept alive through a follower
PROMOTE_TIMEOUT_S = 20.0

TTL_LINE = re.compile(r"^lease ([0-9a-f]+) granted with TTL\((\d+)s\), remaining\((-?\d+)s\)"
                      r"(?:, attached keys\(\[(.*)\]\))?$")


def follower_of(c, leader):
    return next(m for m in c.running() if m is not leader)


class Collector:
    """Receives a python3-etcd3 watch (callback style) into a queue: (revision, key, value)
    per event, or the exception that ended the stream."""

    def __init__(self):
        self.items = queue.Queue()

    def __call__(self, response_or_error):
        if isinstance(response_or_error, Exception):
            self.items.put(response_or_error)
            return
        for e in response_or_error.events:
            self.items.put((e.mod_revision, e.key.decode(), e.value.decode()))

    def take(self, count, timeout, stop_on_error=True):
        """Up to `count` events within `timeout`; stops early at a stream error (returned as
        the second value) or when the time is up."""
        got, error = [], None
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self.items.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if isinstance(item, Exception):
                error = item
                if stop_on_error:
                    break
                continue
            got.append(item)
        return got, error


class WatchLeaseTest(ClusterTestCase):

    # -- watch ---------------------------------------------------------------------------------

    def test_watch_on_follower_sees_every_leader_write_in_order(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        follower = follower_of(c, leader)
        watcher = cluster.client(follower)
        writer = cluster.client(leader)
        collector = Collector()
        watch_id = watcher.add_watch_prefix_callback("order/", collector)
        try:
            written = []  # (revision, key, value) in acknowledgement order
            deadline = time.monotonic() + 60
            for i in range(WATCH_WRITES):
                self.assertLess(time.monotonic(), deadline, "writes too slow")
                key, value = "order/%04d" % (i % 50), "v%d" % i  # overwrites too
                resp = writer.put(key, value)
                written.append((resp.header.revision, key, value))
            seen, error = collector.take(WATCH_WRITES, WATCH_TIMEOUT_S)
            self.assertIsNone(error)
            self.assertEqual(len(seen), WATCH_WRITES, "events seen on the follower")
            # Every revision exactly once, in order, with its key and value.
            self.assertEqual(seen, written)
            revisions = [r for r, _, _ in seen]
            self.assertEqual(revisions, sorted(set(revisions)))
            # Nothing more arrives (no duplicates after the last one).
            extra, _ = collector.take(1, 0.5)
            self.assertEqual(extra, [])
        finally:
            watcher.cancel_watch(watch_id)
            watcher.close()
            writer.close()

    def test_watch_resumed_after_member_restart_misses_nothing(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        watched = follower_of(c, leader)
        written = []
        write_error = []
        stop = threading.Event()

        def write():
            w = cluster.client(leader, timeout=10)
            try:
                for i in range(RESUME_WRITES):
                    if stop.is_set():
                        return
                    resp = w.put("resume/%04d" % i, "v%d" % i)
                    written.append((resp.header.revision, "resume/%04d" % i, "v%d" % i))
            except Exception as e:  # reported by the main thread
                write_error.append(e)
            finally:
                w.close()

        first_client = cluster.client(watched)
        collector = Collector()
        first_client.add_watch_prefix_callback("resume/", collector)
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            before, error = collector.take(RESUME_WRITES // 3, WATCH_TIMEOUT_S)
            self.assertIsNone(error)
            self.assertEqual(len(before), RESUME_WRITES // 3)
            # The watched member dies (the writes go on through the leader), then comes back.
            watched.kill9()
            first_client.close()
            # Whatever the old stream delivered before it broke still counts as seen.
            late, _ = collector.take(RESUME_WRITES, 1.0, stop_on_error=False)
            before += late
            watched.spawn()
            c.wait_healthy([watched])
            last = before[-1][0]
            second_client = cluster.client(watched)
            resumed = Collector()
            second_client.add_watch_prefix_callback("resume/", resumed, start_revision=last + 1)
            writer.join(60)
            self.assertFalse(writer.is_alive(), "writer did not finish")
            self.assertEqual(write_error, [])
            self.assertEqual(len(written), RESUME_WRITES)
            after, error = resumed.take(RESUME_WRITES - len(before), WATCH_TIMEOUT_S)
            self.assertIsNone(error)
            second_client.close()
            self.assertEqual(before + after, written)
        finally:
            stop.set()
            writer.join(30)

    # -- leases --------------------------------------------------------------------------------

    def test_lease_keys_deleted_after_ttl_across_leader_kill(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        follower = follower_of(c, leader)
        granted_at = time.monotonic()
        rc, out, err = follower.etcdctl("lease", "grant", str(LEASE_TTL_S))
        self.assertEqual(rc, 0, err)
        lease = re.match(r"^lease ([0-9a-f]+) granted with TTL\((\d+)s\)$", out.strip())
        self.assertIsNotNone(lease, out)
        self.assertEqual(int(lease.group(2)), LEASE_TTL_S)
        lease_id = lease.group(1)
        for k in ("ttl/a", "ttl/b"):
            rc, _, err = follower.etcdctl("put", k, "v", "--lease=" + lease_id)
            self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(cluster.read_prefix(follower, "ttl/")), ["ttl/a", "ttl/b"])
        leader.kill9()
        survivors = c.running()
        c.wait_leader(survivors)
        # Gone on every survivor, never before the TTL (etcd extends a lease on a new leader
        # rather than cut it short), and within TTL + a few election timeouts.
        self.assertEventually(
            lambda: all(cluster.read_prefix(m, "ttl/") == {} for m in survivors),
            LEASE_TTL_S + 15, "leased keys deleted on the survivors", interval=0.2)
        self.assertGreaterEqual(time.monotonic() - granted_at, LEASE_TTL_S - 1)
        for m in survivors:
            rc, out, err = m.etcdctl("lease", "timetolive", lease_id)
            self.assertEqual((rc, out, err), (0, "lease %s already expired\n" % lease_id, ""))

    def test_lease_kept_alive_through_follower(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        follower = follower_of(c, leader)
        via_follower = cluster.client(follower)
        try:
            lease = via_follower.lease(KEEPALIVE_TTL_S)
            via_follower.put("ka/key", "v", lease=lease)
            granted_at = time.monotonic()
            # Renew through the follower for more than twice the TTL (bounded count).
            for _ in range(4 * KEEPALIVE_TTL_S):
                answers = list(via_follower.refresh_lease(lease.id))
                self.assertEqual([a.TTL for a in answers], [KEEPALIVE_TTL_S])
                time.sleep(0.5)  # the client's renew period, not a synchronisation
            self.assertGreater(time.monotonic() - granted_at, 2 * KEEPALIVE_TTL_S)
            self.assertEqual(cluster.read_prefix(leader, "ka/"), {"ka/key": "v"})
            # keep-alive --once and timetolive through the follower answer as on the leader.
            hex_id = "%016x" % lease.id  # etcdctl prints lease ids with %016x
            for m in (follower, leader):
                rc, out, err = m.etcdctl("lease", "keep-alive", "--once", hex_id)
                self.assertEqual((rc, out, err),
                                 (0, "lease %s keepalived with TTL(%d)\n"
                                  % (hex_id, KEEPALIVE_TTL_S), ""))
            answers = {}
            for m in (follower, leader):
                rc, out, err = m.etcdctl("lease", "timetolive", "--keys", hex_id)
                self.assertEqual((rc, err), (0, ""))
                line = TTL_LINE.match(out.strip())
                self.assertIsNotNone(line, out)
                self.assertEqual(line.group(1), hex_id)
                self.assertEqual(int(line.group(2)), KEEPALIVE_TTL_S)
                self.assertIn(int(line.group(3)), range(0, KEEPALIVE_TTL_S + 1))
                answers[m] = line.group(4)
            self.assertEqual(answers[follower], "ka/key")
            self.assertEqual(answers[leader], "ka/key")
            # Once nobody renews it, the lease expires and takes its key.
            self.assertEventually(lambda: cluster.read_prefix(follower, "ka/") == {},
                                  KEEPALIVE_TTL_S + 10, "key gone after the renewals stopped",
                                  interval=0.2)
            # A lease that is gone: the same answers on a follower and on the leader.
            outs = {m: (m.etcdctl("lease", "timetolive", hex_id),
                        m.etcdctl("lease", "keep-alive", "--once", hex_id)) for m in
                    (follower, leader)}
            self.assertEqual(outs[follower][0], (0, "lease %s already expired\n" % hex_id, ""))
            self.assertEqual(outs[follower][0], outs[leader][0])
            self.assertNotEqual(outs[follower][1][0], 0)
            self.assertEqual(outs[follower][1][2].splitlines()[-1],
                             "Error: etcdserver: requested lease not found")
            self.assertEqual(outs[follower][1], outs[leader][1])
        finally:
            via_follower.close()

    # -- require leader ------------------------------------------------------------------------

    def test_require_leader_without_a_leader(self):
        """clientv3's WithRequireLeader (metadata hasleader=true): an open watch stream ends
        with "etcdserver: no leader" once the member has lost its leader; new streams and unary
        calls that require a leader are refused; without the metadata they are served."""
        import grpc
        from etcd3 import etcdrpc
        c = self.new_cluster(3)
        leader = c.wait_leader()
        survivor = follower_of(c, leader)
        channel = grpc.insecure_channel("%s:%d" % (cluster.LOOPBACK, survivor.client_port))
        require = [("hasleader", "true")]
        watch = etcdrpc.WatchStub(channel)
        create = etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"rl/"))
        stop = threading.Event()

        def requests():  # one create, then hold the stream open until the test ends
            yield create
            stop.wait(60)

        try:
            stream = watch.Watch(requests(), metadata=require, timeout=60)
            first = next(stream)
            self.assertTrue(first.created)
            for m in c.running():
                if m is not survivor:
                    m.kill9()
            started = time.monotonic()
            with self.assertRaises(grpc.RpcError) as ended:
                for _ in stream:
                    pass
            self.assertEqual(ended.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(ended.exception.details(), "etcdserver: no leader")
            self.assertLess(time.monotonic() - started, 30)

            def refused(call):
                try:
                    call()
                except grpc.RpcError as e:
                    return (e.code(), e.details())
                return None

            no_leader = (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
            self.assertEqual(refused(lambda: next(watch.Watch(iter([create]), metadata=require,
                                                              timeout=10))), no_leader)
            keep_alive = etcdrpc.LeaseStub(channel).LeaseKeepAlive
            self.assertEqual(refused(lambda: next(keep_alive(
                iter([etcdrpc.LeaseKeepAliveRequest(ID=1)]), metadata=require, timeout=10))),
                no_leader)
            kv = etcdrpc.KVStub(channel)
            serializable = etcdrpc.RangeRequest(key=b"rl/", serializable=True)
            self.assertEqual(refused(lambda: kv.Range(serializable, metadata=require,
                                                      timeout=10)), no_leader)
            # Without the metadata the member still serves what it can alone.
            self.assertEqual(kv.Range(serializable, timeout=10).count, 0)
            plain = watch.Watch(iter([create]), timeout=10)
            self.assertTrue(next(plain).created)
            plain.cancel()
        finally:
            stop.set()
            channel.close()

    # -- membership ----------------------------------------------------------------------------

    def test_promote_learner_through_follower(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        follower = follower_of(c, leader)
        cluster_id = leader.status()["header"]["cluster_id"]
        written = cluster.load([leader], "promote/", 50, threads=2)
        learner, _ = c.add_member("l4", learner=True)
        learner_id = c.member_id(learner)
        # Not running: the leader says it is not in sync, and the follower passes that on.
        rc, out, err = follower.etcdctl("member", "promote", "%x" % learner_id)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err.splitlines()[-1],
                         "Error: etcdserver: can only promote a learner member which is in "
                         "sync with leader")
        # A voter cannot be promoted, through a follower either.
        rc, out, err = follower.etcdctl("member", "promote", "%x" % c.member_id(leader))
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err.splitlines()[-1],
                         "Error: etcdserver: can only promote a learner member")
        learner.spawn()
        self.assertEventually(
            lambda: learner.running and
            cluster.read_prefix(learner, "promote/", serializable=True) == written,
            20, "learner has every key")
        rc, out, err = cluster.retry_while(
            lambda: follower.etcdctl("member", "promote", "%x" % learner_id),
            lambda r: r[0] != 0 and "in sync with leader" in r[2], PROMOTE_TIMEOUT_S, 0.2)
        self.assertEqual((rc, out, err),
                         (0, "Member %16x promoted in cluster %16x\n" % (learner_id, cluster_id),
                          ""))
        entries = {e["ID"]: e for e in c.member_list_json(via=follower)}
        self.assertFalse(entries[learner_id].get("isLearner", False))
        self.assertEqual(cluster.read_prefix(learner, "promote/"), written)


if __name__ == "__main__":
    cluster.main()
