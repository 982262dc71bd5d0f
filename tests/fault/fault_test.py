"""Real-process fault tests: a 3-member cluster in network namespaces, concurrent clients and a
watcher, one fault, then the checks. See README.md in this folder.

Every scenario:
  1. starts 3 members (fault_cluster.FaultCluster, one network namespace each), does the
     scenario's preparation (e.g. fills many revisions), opens a watcher on PREFIX from the
     current revision + 1 and starts CLIENTS clients (workload.py);
  2. once the clients have some acknowledged operations, injects the fault at a seeded moment
     and for a seeded duration, checking what must hold meanwhile (a new leader, writes going
     on through the majority), then heals it (links back, SIGCONT, killed members restarted,
     disks fast again);
  3. lets the clients go on until they have acknowledged more operations after the heal (the
     cluster is available again), stops them, waits until every member is healthy;
  4. puts an end marker, reads every key through every member (both recorded in the history),
     waits until the watcher has reached the marker's revision;
  5. checks: the history is linearizable (linearizability.py), the watch record keeps etcd's
     guarantees against it (watch_checker.py), and HashKV at the marker's revision is equal on
     all members.
A failure prints the seed and the command that replays the scenario (the fault's timing and
the clients' choices come from the seed; the servers' own timing does not, so a replay runs the
same scenario, not necessarily the same interleaving).
"""

import itertools
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fault_cluster  # noqa: E402
from fault_cluster import cluster  # noqa: E402
import linearizability as lin  # noqa: E402
import netns  # noqa: E402
import watch_checker  # noqa: E402
import workload  # noqa: E402

SEED = None  # set by main()
CLIENTS = 4
WARMUP_ACKS = 50        # acknowledged operations before the fault
AFTER_HEAL_ACKS = 50    # acknowledged operations after the heal: the cluster serves again
PROGRESS_ACKS = 10      # acknowledged operations the majority must make during a fault
WAIT_S = 20.0           # bound of every wait for progress, leaders and catch-up
END_MARKER = workload.PREFIX + "zz-end"
MIXED_ROUNDS = 4        # faults in a row in test_mixed_faults
DEFRAG_STARTED = re.compile(r"starting (to )?defragment")


def asan_build():
    return "asan" in os.path.realpath(cluster.CONFIG.binary)


def replay_command(test_id):
    args = [sys.executable, os.path.join(HERE, "fault_test.py"), "--server",
            cluster.CONFIG.server]
    if cluster.CONFIG.server == "dolmen":
        args += ["--dolmen", cluster.CONFIG.binary]
    args += ["--seed", str(SEED), test_id.split(".", 1)[1]]
    return " ".join(args)


class Scenario:
    """What one test run has: the network, the cluster, the seeded rng, the clients."""

    def __init__(self, test, name):
        self.test = test
        self.name = name
        self.rng = random.Random("%s/%s" % (SEED, name))
        self.net = None
        self.cluster = None
        self.recorder = workload.Recorder()
        self.workload = None
        self.watcher = None
        self.victim = None  # the member the fault will hit, if chosen before the clients start
        self.expect_resumption = False  # the watcher's member is killed: its stream must end
        self.notes = []

    def note(self, text):
        line = "[%s] %s" % (self.name, text)
        self.notes.append(line)
        print(line, flush=True)

    @property
    def addresses(self):
        return ["%s:%d" % (m.ip, m.client_port) for m in self.cluster.members]

    def acks(self):
        return self.workload.acknowledged()

    def wait_acks(self, more, what, timeout=WAIT_S):
        """Waits until the clients have `more` acknowledged operations beyond now."""
        target = self.acks() + more
        deadline = time.monotonic() + timeout
        while self.acks() < target:
            if time.monotonic() >= deadline:
                self.test.fail("%s: %d of %d more acknowledged operations within %.0fs"
                               % (what, self.acks() - target + more, more, timeout))
            time.sleep(0.05)

    def hold(self, seconds):
        """Keeps a fault in place for `seconds` (the fault's length: not a synchronisation)."""
        time.sleep(seconds)

    def current_revision(self):
        """The store revision, from a linearizable read through any member that answers (in
        turn, not from the seeded rng: retries must not shift the scenario's choices)."""
        deadline = time.monotonic() + WAIT_S
        for attempt in itertools.count():
            ep = workload.Endpoint(self.addresses[attempt % len(self.addresses)])
            try:
                op = workload.do_get(ep, workload.Recorder(), -1, END_MARKER, timeout=2)
            finally:
                ep.close()
            if op.result is not None:
                return op.result["header_rev"]
            if time.monotonic() >= deadline:
                self.test.fail("no revision from any member within %.0fs" % WAIT_S)

    def fill(self, count, prefix="/fill/", keys=200, threads=8, value_size=8):
        """Puts `count` values spread over `keys` keys outside the clients' prefix (many
        revisions for a compaction, a log long enough for a snapshot). Bounded: each put has a
        deadline, failures are retried on the next member up to `count` more times."""
        done = [0]
        failures = [0]
        lock = threading.Lock()

        def work(t):
            eps = [workload.Endpoint(a) for a in self.addresses]
            try:
                i, j = t, t
                while i < count and failures[0] < count:
                    ep = eps[j % len(eps)]
                    op = workload.do_put(ep, workload.Recorder(), -1,
                                         "%s%04d" % (prefix, i % keys),
                                         ("f%d-" % i).ljust(value_size, "x"), timeout=5)
                    if op.unknown:
                        with lock:
                            failures[0] += 1
                        j += 1
                        continue
                    with lock:
                        done[0] += 1
                    i += threads
            finally:
                for ep in eps:
                    ep.close()

        started = time.monotonic()
        ts = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.test.assertFalse(any(t.is_alive() for t in ts), "fill did not finish in 120 s")
        self.test.assertGreaterEqual(done[0], count, "fill: %d of %d puts acknowledged"
                                     % (done[0], count))
        self.note("filled %d revisions in %.1fs" % (count, time.monotonic() - started))

    def heal_all(self):
        for m in self.cluster.members:
            self.net.heal(m.index)
            if m.stopped:
                m.sigcont()
            m.set_sync_delay_ms(0)
            if not m.running:
                m.spawn()


class FaultTest(cluster.ClusterTestCase):
    maxDiff = None

    def run_scenario(self, name, fault, snapshot_count=10000, prepare=None):
        print("\n== %s: seed %s; replay: %s" % (name, SEED, replay_command(self.id())),
              flush=True)
        sc = Scenario(self, name)
        started = time.monotonic()
        try:
            self._run(sc, fault, snapshot_count, prepare)
        except BaseException:
            print("\nFAILED %s with seed %s\n%s\nreplay: %s\n"
                  % (name, SEED, "\n".join(sc.notes), replay_command(self.id())),
                  file=sys.stderr, flush=True)
            traceback.print_exc()
            raise
        finally:
            for obj in (sc.workload, sc.watcher):
                if obj is not None:
                    try:
                        obj.stop()
                    except Exception as e:
                        print("stop: %r" % (e,), file=sys.stderr)
            if sc.cluster is not None:
                for m in sc.cluster.members:
                    m.stop()
            if sc.net is not None:
                sc.net.close()
        print("== %s passed in %.1fs" % (name, time.monotonic() - started), flush=True)

    def _run(self, sc, fault, snapshot_count, prepare):
        try:
            sc.net = netns.Network(3)
            sc.net.create()
        except netns.NetnsError as e:
            self.fail("cannot build the test network (root, iproute2 and network namespaces "
                      "are needed): %s" % e)
        sc.cluster = fault_cluster.FaultCluster(sc.net, snapshot_count=snapshot_count)
        self._clusters.append(sc.cluster)
        sc.cluster.start()
        if prepare is not None:
            prepare(sc)
        start_rev = sc.current_revision() + 1
        # The watcher starts on the member the fault will hit (when the scenario chose it), so
        # that it is cut off and must resume elsewhere from its last revision + 1.
        first = sc.victim.index if sc.victim is not None else sc.rng.randrange(3)
        sc.watcher = workload.Watcher(sc.addresses, workload.PREFIX, start_rev, first=first)
        sc.watcher.start()
        sc.workload = workload.Workload(sc.addresses, "%s/%s" % (SEED, sc.name), CLIENTS,
                                        sc.recorder)
        sc.workload.start()
        sc.wait_acks(WARMUP_ACKS, "before the fault")

        fault(sc)
        sc.heal_all()
        sc.note("healed at %d acknowledged operations" % sc.acks())

        sc.wait_acks(AFTER_HEAL_ACKS, "after the heal", timeout=30)
        sc.workload.stop()
        sc.cluster.wait_healthy(timeout=30)
        leader = sc.cluster.wait_leader(timeout=WAIT_S)
        self._final_reads(sc, leader)
        history = sc.recorder.snapshot()
        end = next(op for op in reversed(history) if op.key == END_MARKER and op.kind == "put")
        end_rev = end.result["rev"]
        # The clients have stopped: the watch stream goes idle, so the members must now send
        # periodic progress notifications (every 500 ms); wait for one at or past the marker.
        deadline = time.monotonic() + WAIT_S
        while sc.watcher.progress_at_least() < end_rev and sc.watcher.failure is None:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        sc.watcher.stop()
        self.assertGreaterEqual(sc.watcher.progress_at_least(), end_rev,
                                "no progress notification at or past the end marker's revision "
                                "%d within %.0fs of the clients' stop (watcher at %d)"
                                % (end_rev, WAIT_S, sc.watcher.reached()))
        sc.note("history: %s; watcher: %d records, resumptions %r"
                % (lin.summarize(history), len(sc.watcher.records),
                   [(a, r, w) for _, a, r, w in sc.watcher.resumptions]))

        self.assertIsNone(sc.watcher.failure, "the watch was canceled")
        if sc.expect_resumption:
            self.assertTrue(sc.watcher.resumptions, "the watcher's member was killed but its "
                            "stream never ended: it was not cut off")
        res = lin.check(history)
        sc.note("linearizability: %s %s" % (res.outcome, res.reason))
        if not res.ok:
            path = os.path.join(tempfile.gettempdir(), "dolmen-fault-history-%s-%s.json"
                                % (SEED, sc.name))
            lin.save(history, path)
            sc.note("history saved to %s (check it again: %s %s %s)"
                    % (path, sys.executable, os.path.join(HERE, "linearizability.py"), path))
        self.assertEqual(res.outcome, lin.OK, "history not linearizable:\n" + res.explain())
        self._checker_rejects_a_stale_read(sc, history)
        try:
            summary = watch_checker.check(sc.watcher.records, history, workload.PREFIX,
                                          sc.watcher.start_rev, end_rev)
        except watch_checker.WatchViolation as e:
            self.fail("watch guarantee broken: %s" % e)
        sc.note("watch: %s" % summary)
        hashes = sc.cluster.wait_hashkv_equal(end_rev)
        sc.note("HashKV at %d equal on all members: %r" % (end_rev, hashes))

    def _checker_rejects_a_stale_read(self, sc, history):
        """The checker is not vacuous on this real history: the same history plus one read,
        after the last acknowledged write of a key, of the value that write replaced, must be
        rejected."""
        puts = [op for op in history if op.kind == "put" and not op.unknown
                and op.key in workload.KEYS]
        last = max(puts, key=lambda op: op.result["rev"])
        older = [op for op in puts if op.key == last.key and op.result["rev"] < last.result["rev"]]
        self.assertTrue(older, "no key was written twice: the history is too thin to check")
        stale = max(older, key=lambda op: op.result["rev"])
        end = max(op.ret for op in history if not op.unknown)
        forged = lin.Op(999, "get", last.key, end + 1, end + 2, None,
                        {"value": stale.value, "mod_rev": stale.result["rev"],
                         "header_rev": max(op.revision() for op in history if not op.unknown)})
        res = lin.check(history + [forged])
        self.assertEqual(res.outcome, lin.ILLEGAL, "the checker accepted a forged stale read of "
                         "%r: %s" % (last.key, res.explain()))

    def _final_reads(self, sc, leader):
        ep = workload.Endpoint("%s:%d" % (leader.ip, leader.client_port))
        try:
            op = workload.do_put(ep, sc.recorder, 100, END_MARKER, "end-%s" % SEED, timeout=5)
            self.assertFalse(op.unknown, "the end marker put through the leader failed")
        finally:
            ep.close()
        for i, address in enumerate(sc.addresses):
            ep = workload.Endpoint(address)
            try:
                for key in workload.KEYS:
                    op = workload.do_get(ep, sc.recorder, 101 + i, key, timeout=5)
                    self.assertIsNotNone(op.result, "final read of %s on %s failed"
                                         % (key, address))
            finally:
                ep.close()

    @staticmethod
    def _choose_leader(sc):
        sc.victim = sc.cluster.wait_leader(timeout=WAIT_S)

    @staticmethod
    def _choose_follower(sc):
        sc.victim = sc.rng.choice(sc.cluster.others(sc.cluster.wait_leader(timeout=WAIT_S)))

    @staticmethod
    def _choose_any(sc):
        sc.victim = sc.rng.choice(sc.cluster.members)
        leader = sc.cluster.wait_leader(timeout=WAIT_S)
        sc.note("victim %s (%s)" % (sc.victim.name,
                                    "the leader" if sc.victim is leader else "a follower"))

    # -- network partitions --------------------------------------------------------------------

    def test_partition_leader(self):
        def fault(sc):
            c = sc.cluster
            old = c.wait_leader(timeout=WAIT_S)
            sc.net.isolate(old.index)
            sc.note("isolated the leader %s" % old.name)
            new = c.wait_leader(members=c.others(old), timeout=WAIT_S, not_this=old)
            sc.note("new leader %s" % new.name)
            sc.wait_acks(PROGRESS_ACKS, "the majority during the leader's partition")
            sc.hold(sc.rng.uniform(0.5, 2.0))
            sc.net.heal(old.index)
            agreed = c.wait_leader(timeout=WAIT_S)
            sc.note("after the heal all agree on leader %s" % agreed.name)
        self.run_scenario("partition_leader", fault, prepare=self._choose_leader)

    def test_partition_follower(self):
        def fault(sc):
            c = sc.cluster
            leader = c.wait_leader(timeout=WAIT_S)
            follower = sc.victim if sc.victim is not leader else sc.rng.choice(c.others(leader))
            sc.net.isolate(follower.index)
            sc.note("isolated the follower %s" % follower.name)
            sc.wait_acks(PROGRESS_ACKS, "the majority during the follower's partition")
            sc.hold(sc.rng.uniform(1.0, 3.0))
            sc.net.heal(follower.index)
            agreed = c.wait_leader(timeout=WAIT_S)
            sc.note("after the heal all agree on leader %s" % agreed.name)
        self.run_scenario("partition_follower", fault, prepare=self._choose_follower)

    # -- SIGSTOP -------------------------------------------------------------------------------

    def test_sigstop_leader(self):
        def fault(sc):
            c = sc.cluster
            old = c.wait_leader(timeout=WAIT_S)
            term = old.status()["raftTerm"]
            old.sigstop()
            sc.note("SIGSTOP %s (leader, term %d)" % (old.name, term))
            new = c.wait_leader(members=c.others(old), timeout=WAIT_S, not_this=old)
            sc.note("new leader %s" % new.name)
            sc.wait_acks(PROGRESS_ACKS, "the majority while the leader is stopped")
            sc.hold(sc.rng.uniform(0.5, 2.0))
            old.sigcont()
            agreed = c.wait_leader(timeout=WAIT_S)
            new_term = old.status()["raftTerm"]
            sc.note("SIGCONT; all agree on leader %s, term %d" % (agreed.name, new_term))
            self.assertGreater(new_term, term, "the old leader did not move to the new term")
        self.run_scenario("sigstop_leader", fault, prepare=self._choose_leader)

    # -- kill -9 during background work --------------------------------------------------------

    def _kill_restart(self, sc, member, what):
        sc.expect_resumption = sc.expect_resumption or member is sc.victim
        member.kill9()
        sc.note("kill -9 %s %s" % (member.name, what))
        others = sc.cluster.others(member)
        sc.cluster.wait_leader(members=others, timeout=WAIT_S)
        sc.wait_acks(PROGRESS_ACKS, "the survivors after the kill")
        member.spawn()
        sc.cluster.wait_healthy(timeout=30)
        sc.note("%s restarted and healthy" % member.name)

    def test_kill9_during_checkpoint(self):
        # --snapshot-count 20: with the clients' write rate a checkpoint (snapshot of the
        # applied state, log truncation) starts every few tens of milliseconds.
        def fault(sc):
            sc.hold(sc.rng.uniform(0.0, 1.0))
            self._kill_restart(sc, sc.victim, "(checkpoints every 20 entries)")
        self.run_scenario("kill9_checkpoint", fault, snapshot_count=20, prepare=self._choose_any)

    def test_kill9_during_compaction(self):
        fill = 1500 if asan_build() else 4000

        def prepare(sc):
            sc.fill(fill)
            self._choose_any(sc)

        def fault(sc):
            victim = sc.victim
            rev = sc.current_revision()
            # The watcher (on the victim) must be past the compaction before its stream is cut,
            # or it could only resume below the compacted revision (etcd cancels such a watch).
            deadline = time.monotonic() + WAIT_S
            while sc.watcher.reached() < rev:
                self.assertLess(time.monotonic(), deadline, "the watcher did not reach %d" % rev)
                time.sleep(0.01)
            # Compact through another member so the request itself survives the kill.
            via = sc.cluster.others(victim)[0]
            proc = subprocess.Popen(
                [cluster.CONFIG.etcdctl, "--endpoints", via.endpoint, "compact", str(rev),
                 "--physical"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=dict(os.environ, ETCDCTL_API="3"))
            # etcdctl starts and sends the request within ~0.1 s; a compaction of a few
            # thousand revisions takes milliseconds to tens of milliseconds: kill somewhere in
            # that window (approximate, seeded).
            sc.hold(sc.rng.uniform(0.02, 0.15))
            self._kill_restart(sc, victim, "around compact %d (%d revisions filled)"
                               % (rev, fill))
            out, _ = proc.communicate(timeout=WAIT_S)
            sc.note("compact during the kill: status %d %s"
                    % (proc.returncode, out.decode().strip()[-200:]))
            # A compaction proposed while the leader dies may time out without an answer (also
            # in etcd): like a client's unknown write, it may or may not have happened. Asking
            # again settles it: it succeeds, or says the revision is already compacted.
            rc, out, err = via.etcdctl("compact", str(rev))
            self.assertTrue(rc == 0 or "required revision has been compacted" in err,
                            "compact %d again: status %d %s %s" % (rev, rc, out, err))
            for m in sc.cluster.members:
                rc, out, err = m.etcdctl("get", "/fill/0000", "--rev", str(rev - 1),
                                         "--consistency=s")
                self.assertIn("required revision has been compacted", err,
                              "%s still serves revision %d after compact %d (status %d: %s)"
                              % (m.name, rev - 1, rev, rc, out))
            sc.note("every member refuses revision %d: compacted" % (rev - 1))
        self.run_scenario("kill9_compaction", fault, prepare=prepare)

    def test_kill9_during_defrag(self):
        fill = 1000 if asan_build() else 3000

        def prepare(sc):
            # 1 KiB values over 1000 keys: a database of a few MB, whose defragmentation (a
            # copy of every page into a new file, then a rename) takes tens of milliseconds.
            sc.fill(fill, keys=1000, value_size=1024)
            self._choose_any(sc)

        def fault(sc):
            victim = sc.victim
            log_before = len(victim.last_start_log())
            proc = subprocess.Popen(
                [cluster.CONFIG.etcdctl, "--endpoints", victim.endpoint, "defrag"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=dict(os.environ, ETCDCTL_API="3"))
            # Both servers log "starting (to) defragment" when it begins: kill -9 at a seeded
            # moment just after that line.
            deadline = time.monotonic() + WAIT_S
            while not DEFRAG_STARTED.search(victim.last_start_log()[log_before:]):
                self.assertLess(time.monotonic(), deadline,
                                "%s never logged the start of the defragmentation" % victim.name)
                time.sleep(0.002)
            sc.hold(sc.rng.uniform(0.0, 0.02))
            self._kill_restart(sc, victim, "during defrag")
            out, _ = proc.communicate(timeout=WAIT_S)
            sc.note("defrag of the killed member: status %d %s"
                    % (proc.returncode, out.decode().strip()[:200]))
        self.run_scenario("kill9_defrag", fault, prepare=prepare)

    def test_kill9_during_snapshot_install(self):
        # etcd keeps 5000 entries behind a snapshot for slow followers; with --snapshot-count
        # 100, 5600 writes while a follower is down leave it behind the leader's log, so it
        # can only catch up through a snapshot (as tests/cluster/membership_test.py does).
        fill = 5600

        def fault(sc):
            c = sc.cluster
            leader = c.wait_leader(timeout=WAIT_S)
            follower = sc.victim if sc.victim is not leader else sc.rng.choice(c.others(leader))
            sc.expect_resumption = follower is sc.victim
            follower.kill9()
            sc.note("kill -9 %s, then %d writes" % (follower.name, fill))
            sc.fill(fill)
            snap_dir = os.path.join(follower.data_dir, "member", "snap")
            before = set(os.listdir(snap_dir)) if os.path.isdir(snap_dir) else set()
            follower.spawn()
            # The leader's snapshot arrives as a new file in member/snap (dolmen's image,
            # etcd's <index>.snap.db): kill -9 at a seeded moment just after it appears, while
            # the member receives or installs it.
            arrived = None
            deadline = time.monotonic() + WAIT_S
            while arrived is None and time.monotonic() < deadline:
                new = set(os.listdir(snap_dir)) - before if os.path.isdir(snap_dir) else set()
                arrived = sorted(new)[0] if new else None
                if arrived is None:
                    time.sleep(0.002)
            self.assertIsNotNone(arrived, "no snapshot arrived at %s within %.0fs"
                                 % (follower.name, WAIT_S))
            sc.hold(sc.rng.uniform(0.0, 0.03))
            follower.kill9()
            lines = [line for line in cluster.log_lines_after_start(follower)
                     if "snapshot" in line.lower()]
            sc.note("kill -9 %s again just after %s appeared; its snapshot log lines: %r"
                    % (follower.name, arrived, lines[-3:]))
            follower.spawn()
            c.wait_healthy(timeout=30)
        self.run_scenario("kill9_snapshot_install", fault, snapshot_count=100,
                          prepare=self._choose_follower)

    # -- slow disks ----------------------------------------------------------------------------

    def _slow_disk(self, sc, member, role):
        if cluster.CONFIG.server != "dolmen":
            self.fail("the slow-disk hook (DOLMEN_TEST_SLOW_SYNC_FILE) is dolmen's; etcd has "
                      "none, so this scenario runs against dolmen only")
        delay = sc.rng.choice([1000, 2000, 3000])
        member.set_sync_delay_ms(delay)
        # The hook logs each new delay at the member's next fdatasync: without that line the
        # binary has no hook and the scenario would test nothing.
        line = "fdatasync delayed by %d ms" % delay
        deadline = time.monotonic() + WAIT_S
        while line not in member.last_start_log():
            self.assertLess(time.monotonic(), deadline, "%s never logged %r: the binary lacks "
                            "the DOLMEN_TEST_SLOW_SYNC_FILE hook" % (member.name, line))
            time.sleep(0.01)
        sc.note("every fdatasync of %s (%s) now takes %d ms more" % (member.name, role, delay))
        sc.wait_acks(PROGRESS_ACKS, "writes with a slow %s disk" % role,
                     timeout=WAIT_S + delay / 1000.0)
        sc.hold(sc.rng.uniform(1.0, 3.0))
        member.set_sync_delay_ms(0)
        agreed = sc.cluster.wait_leader(timeout=WAIT_S)
        sc.note("disk fast again; all agree on leader %s" % agreed.name)

    def test_slow_disk_follower(self):
        def fault(sc):
            leader = sc.cluster.wait_leader(timeout=WAIT_S)
            follower = sc.victim if sc.victim is not leader else sc.rng.choice(
                sc.cluster.others(leader))
            self._slow_disk(sc, follower, "follower")
        self.run_scenario("slow_disk_follower", fault, prepare=self._choose_follower)

    def test_slow_disk_leader(self):
        def fault(sc):
            self._slow_disk(sc, sc.cluster.wait_leader(timeout=WAIT_S), "leader")
        self.run_scenario("slow_disk_leader", fault, prepare=self._choose_leader)

    # -- several faults in a row ---------------------------------------------------------------

    def test_mixed_faults(self):
        """Several seeded faults in a row on seeded members, each healed before the next: finds
        what one fault at a time does not (a member rejoining after another was cut off)."""
        kinds = ["isolate", "kill9", "sigstop"]
        if cluster.CONFIG.server == "dolmen":
            kinds.append("slow_disk")

        def fault(sc):
            c = sc.cluster
            for round_no in range(MIXED_ROUNDS):
                kind = sc.rng.choice(kinds)
                victim = sc.rng.choice(c.members)
                hold = sc.rng.uniform(0.3, 1.5)
                sc.note("round %d: %s %s for %.1fs" % (round_no, kind, victim.name, hold))
                if kind == "isolate":
                    sc.net.isolate(victim.index)
                elif kind == "kill9":
                    sc.expect_resumption = sc.expect_resumption or victim is sc.victim
                    victim.kill9()
                elif kind == "sigstop":
                    victim.sigstop()
                else:
                    victim.set_sync_delay_ms(sc.rng.choice([500, 1000, 2000]))
                sc.hold(hold)
                sc.wait_acks(PROGRESS_ACKS, "round %d (%s %s): the others"
                             % (round_no, kind, victim.name), timeout=WAIT_S + 2)
                sc.heal_all()
                c.wait_healthy(timeout=30)
        self.run_scenario("mixed_faults", fault, snapshot_count=200, prepare=self._choose_any)


def main():
    global SEED
    argv = sys.argv[1:]
    if "--seed" in argv:
        i = argv.index("--seed")
        SEED = int(argv[i + 1])
        del argv[i:i + 2]
    else:
        SEED = random.SystemRandom().randrange(1, 2 ** 31)
    rest = cluster.parse_args(argv)
    cluster.CONFIG.binary = os.path.abspath(cluster.CONFIG.binary)  # members run in their dirs
    print("fault tests: server=%s binary=%s seed=%d" % (cluster.CONFIG.server,
                                                        cluster.CONFIG.binary, SEED), flush=True)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
