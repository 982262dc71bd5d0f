"""Leadership: kill -9 of the leader during concurrent writes (new leader within a few election
timeouts, writes resume, no acknowledged write lost, the old leader catches up after a restart),
and `etcdctl move-leader`."""

import json
import threading
import time

import cluster
from cluster import ClusterTestCase

# "A few election timeouts": followers wait one randomized election timeout (1x-2x) after the
# last heartbeat, then need one vote round; on 2 busy cores 8x leaves room for scheduling. That
# is dolmen's bound. etcd 3.4, the reference, splits its votes for several rounds when the
# machine is busy (in CI: terms 2 to 10, a leader after 5.35 s at a 500 ms election timeout),
# so its run checks the election within 30x, and everything else the same.
NEW_LEADER_BOUND_ELECTIONS = {"dolmen": 8, "etcd": 30}
WRITES_BEFORE_KILL = 30       # per writer
WRITES_AFTER_ELECTION = 30    # per writer on a surviving member
WRITER_MAX_ATTEMPTS = 20000   # hard bound on each writer's loop
WRITER_TIMEOUT_S = 60.0


class Writer(threading.Thread):
    """Puts distinct keys w/<member>/<n>/<i> through one member until told to stop. A put that
    returned is acknowledged; one that raised has an unknown outcome (it may or may not have
    been committed). Records the monotonic time of every acknowledgement."""

    def __init__(self, member, n):
        super().__init__(daemon=True)
        self.member = member
        self.prefix = "w/%s/%d/" % (member.name, n)
        self.acked = {}        # key -> value
        self.ack_times = []
        self.unknown = set()   # keys whose put raised
        self.stop_event = threading.Event()

    def run(self):
        c = cluster.client(self.member, timeout=2)
        deadline = time.monotonic() + WRITER_TIMEOUT_S
        try:
            for i in range(WRITER_MAX_ATTEMPTS):
                if self.stop_event.is_set() or time.monotonic() > deadline:
                    return
                key, value = "%s%06d" % (self.prefix, i), "v%d" % i
                try:
                    c.put(key, value)
                except Exception:
                    self.unknown.add(key)
                    self.stop_event.wait(0.05)  # a dead member refuses at once: do not spin
                    continue
                self.acked[key] = value
                self.ack_times.append(time.monotonic())
        finally:
            c.close()

    def acks_after(self, t):
        return sum(1 for a in list(self.ack_times) if a > t)


class FailoverTest(ClusterTestCase):

    def test_kill_leader_during_writes(self):
        c = self.new_cluster(3)
        old_leader = c.wait_leader()
        survivors = [m for m in c.members if m is not old_leader]
        writers = [Writer(m, n) for m in c.members for n in range(2)]
        for w in writers:
            w.start()
        try:
            self.assertEventually(
                lambda: all(len(w.ack_times) >= WRITES_BEFORE_KILL for w in writers), 20,
                "every writer acknowledged %d writes before the kill" % WRITES_BEFORE_KILL)

            killed_at = time.monotonic()
            old_leader.kill9()
            new_leader = c.wait_leader(survivors, timeout=30, not_this=old_leader)
            took = time.monotonic() - killed_at
            elections = NEW_LEADER_BOUND_ELECTIONS[cluster.CONFIG.server]
            bound = elections * cluster.CONFIG.election_ms / 1000.0
            print("new leader %s %.2fs after kill -9 of %s (bound %.1fs)"
                  % (new_leader.name, took, old_leader.name, bound))
            self.assertIn(new_leader, survivors)
            self.assertLessEqual(took, bound, "new leader within %d election timeouts"
                                 % elections)

            elected_at = time.monotonic()
            survivor_writers = [w for w in writers if w.member is not old_leader]
            self.assertEventually(
                lambda: all(w.acks_after(elected_at) >= WRITES_AFTER_ELECTION
                            for w in survivor_writers), 20,
                "writes resumed on every surviving member")
        finally:
            for w in writers:
                w.stop_event.set()
            for w in writers:
                w.join(10)
        self.assertFalse(any(w.is_alive() for w in writers), "writers stopped")

        acked = {k: v for w in writers for k, v in w.acked.items()}
        unknown = {k for w in writers for k in w.unknown}
        print("%d acknowledged writes, %d with unknown outcome" % (len(acked), len(unknown)))
        # No acknowledged write lost, on any surviving member (linearizable reads).
        for m in survivors:
            state = cluster.read_prefix(m, "w/")
            lost = sorted(k for k in acked if state.get(k) != acked[k])
            self.assertEqual(lost, [], "acknowledged writes missing on %s" % m.name)
            self.assertEqual(set(state) - set(acked) - unknown, set(),
                             "keys nobody wrote on %s" % m.name)
        final = cluster.read_prefix(new_leader, "w/")

        # The old leader restarts on its data dir and catches up with everything.
        old_leader.restart()
        c.wait_healthy([old_leader])
        self.assertEventually(
            lambda: cluster.read_prefix(old_leader, "w/", serializable=True) == final, 20,
            "%s caught up (%d keys)" % (old_leader.name, len(final)))
        statuses = c.statuses()
        self.assertEqual(len({s["header"]["revision"] for s in statuses.values()}), 1, statuses)
        self.assertIsNotNone(c.wait_leader(timeout=10))

    def test_move_leader(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        for round_ in range(2):  # move it twice, so it is not a lucky election
            target = next(m for m in c.members if m is not leader)
            target_id = c.member_id(target)
            leader_id = c.member_id(leader)
            # etcdctl sends MoveLeader to whichever of --endpoints is the leader.
            rc, out, err = cluster.run_etcdctl(c.endpoints(), ["move-leader", "%x" % target_id])
            self.assertEqual((rc, out, err),
                             (0, "Leadership transferred from %x to %x\n" % (leader_id, target_id),
                              ""), "round %d" % round_)

            def all_name_target():
                rc, out, _ = cluster.run_etcdctl(c.endpoints(), ["endpoint", "status",
                                                                 "--cluster", "-w", "json"])
                if rc != 0:
                    return None
                leaders = {row["Status"].get("leader", 0) for row in json.loads(out)}
                return leaders == {target_id} and leaders
            self.assertEventually(all_name_target, 10, "every member names %s leader"
                                  % target.name)
            self.assertIs(c.leader(), target)
            leader = target

        # Asked of a member that is not the leader, etcd refuses.
        follower = next(m for m in c.members if m is not leader)
        rc, out, err = cluster.run_etcdctl(follower.endpoint,
                                           ["move-leader", "%x" % c.member_id(follower)])
        self.assertEqual((rc, out, err.splitlines()[-1:]),
                         (128, "", ["Error: no leader endpoint given at [%s]" % follower.endpoint]))


if __name__ == "__main__":
    cluster.main()
