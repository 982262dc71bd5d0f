#!/usr/bin/python3
"""Power-loss test: acknowledged writes survive a power cut at any moment, or the member refuses
to start. (README.md in this folder; the model is in tools/powerloss/README.md.)

1. Record: one dolmen member on loopback, on an empty data dir, with the recorder preloaded
   (every write and sync under the data dir goes to a trace) and frequent checkpoints, so LMDB
   is synced, WAL segments are cut and released, and LMDB reuses freed pages during the run.
   WRITERS threads (python3-etcd3) put new keys, overwrite and delete their own keys, and one
   compacts now and then; each acknowledged write is noted with its value, revision and the
   CLOCK_MONOTONIC time of the answer. One more thread defragments the backend every
   DEFRAG_EVERY_S (the swap to the compacted copy while the writers go on: docs/maintenance.md,
   "The swap"). Then the member gets SIGKILL.
2. For each of CUTS cut points drawn from the trace after the first start completed (seeded;
   half of them shortly after an LMDB sync, a WAL segment release or a defragmentation's rename,
   where the danger is;
   --first-start: every record of the first start instead), tools/powerloss/reconstruct.py
   builds the disk as it could be after a power cut right after that record, a member starts on
   it (no preload), and:
     - it serves, every write acknowledged before the cut is there with its value and mod
       revision, or a later write of the same key (acknowledged or not, with a higher revision)
       replaced it; no key holds a value nobody wrote; its revision is at least the highest
       acknowledged before the cut; OR
     - it refuses to start: exits with a non-zero status (not a signal) and an error message,
       within START_TIMEOUT_S. Allowed, and counted in the summary.
   Anything else fails: a silent loss, a wrong value or revision, a revision gone back, a crash
   (signal, sanitizer report), a hang, a read error from a member that started.

Replay: a failing run keeps its recording (trace + history.json) and prints, per failing cut,
  powerloss_test.py --dolmen D --preload P --seed S --model M --recording DIR --cut N --keep
which checks that cut on that recording again, exactly (--keep also keeps the image). --seed S
alone makes the same choices on a new recording (the writers' timing varies between runs).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "powerloss"))

import etcd3  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

import harness  # noqa: E402
import reconstruct  # noqa: E402

WRITERS = 4
OPS_PER_WRITER = 700           # bound on the load; RECORD_SECONDS bounds it in time too
RECORD_SECONDS = 6.0
SNAPSHOT_COUNT = 200           # a checkpoint (LMDB sync + WAL release) every 200 entries
WAL_SEGMENT_BYTES = 65536      # the smallest allowed: segments are cut and released often
CUTS = 40
DEFRAG_EVERY_S = 0.7           # a few defragmentations per recording, writers going on
START_TIMEOUT_S = 10.0   # a start takes well under a second (a few seconds under ASan)
CLIENT_TIMEOUT_S = 5
PREFIX = b"pl/"
CHECK_PREFIX_END = b"pl0"


class Member(harness.Server):
    """A dolmen member that counts as ready once it logged READY=1 (which it does when it can
    serve a linearizable read: src/embed/member.cc): much faster to poll than etcdctl, which
    matters with one start per cut. `exit_status` is set when it exits before that."""

    exit_status = None

    def wait_ready(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.exit_status = self.proc.returncode
                self._reap()
                raise harness.ServerError("%s exited with status %s before becoming ready"
                                          % (self.label, rc))
            if "READY=1" in self.log_text().rsplit("\n=== start #", 1)[-1]:
                return
            if time.monotonic() >= deadline:
                raise harness.ServerError("%s not ready after %.0fs" % (self.label, timeout))
            time.sleep(0.02)


class RecordedServer(Member):
    """A dolmen member whose command line runs it under the recorder (env prefix, same PID
    through setpriv's and env's exec)."""

    def __init__(self, binary, preload, trace, flags):
        super().__init__("dolmen", binary, label="dolmen-recorded", extra_flags=flags)
        os.makedirs(self.data_dir)
        self.env_prefix = ["/usr/bin/env", "LD_PRELOAD=" + preload,
                           "DOLMEN_POWERLOSS_DIR=" + os.path.realpath(self.data_dir),
                           "DOLMEN_POWERLOSS_TRACE=" + trace]
        if asan_build(binary):
            # The recorder comes before libasan in the library list; ASan's check that it comes
            # first is about its own interceptors, which still run (the recorder forwards to
            # the next definition, libasan's).
            options = os.environ.get("ASAN_OPTIONS", "")
            self.env_prefix.append("ASAN_OPTIONS=" + ":".join(
                o for o in (options, "verify_asan_link_order=0") if o))

    def _command(self):
        return self.env_prefix + super()._command()


def asan_build(binary):
    try:
        out = subprocess.run(["/usr/bin/ldd", binary], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libasan" in out


class Writer(threading.Thread):
    """Puts new keys pl/w<id>/<n>, overwrites and deletes its own keys, one at a time. Every
    operation goes in `history[key]` in order as [kind, value, revision, ack_time], revision
    and ack_time None while unanswered (an error leaves it so: unknown outcome)."""

    def __init__(self, port, writer_no, seed, deadline):
        super().__init__(name="writer-%d" % writer_no, daemon=True)
        self.port = port
        self.writer_no = writer_no
        self.rng = random.Random("%d:%d" % (seed, writer_no))
        self.deadline = deadline
        self.history = {}
        self.acked = 0
        self.error = None

    def run(self):
        client = etcd3.client(host=harness.LOOPBACK, port=self.port, timeout=CLIENT_TIMEOUT_S)
        live = []
        try:
            for n in range(OPS_PER_WRITER):
                if time.monotonic() > self.deadline:
                    return
                roll = self.rng.random()
                if live and roll < 0.2:
                    key, kind = self.rng.choice(live), "put"
                elif live and roll < 0.27:
                    key, kind = live.pop(self.rng.randrange(len(live))), "delete"
                else:
                    key, kind = b"%sw%d/%05d" % (PREFIX, self.writer_no, n), "put"
                    live.append(key)
                value = b"w%d-op%d-%016x" % (self.writer_no, n, self.rng.getrandbits(64))
                value += b"." * self.rng.randrange(0, 600)  # fill LMDB pages faster
                entry = [kind, value if kind == "put" else None, None, None]
                self.history.setdefault(key, []).append(entry)
                if kind == "put":
                    revision = client.put(key, value).header.revision
                else:
                    revision = client.delete(key, return_response=True).header.revision
                entry[2], entry[3] = revision, time.monotonic()
                self.acked += 1
                if self.writer_no == 0 and n % 250 == 249 and revision > 100:
                    client.compact(revision - 100)  # frees LMDB pages for reuse
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            client.close()


class Defragmenter(threading.Thread):
    """Defragments the member's backend every DEFRAG_EVERY_S until the deadline; counts the
    defragmentations that succeeded (the test needs one, or it would check nothing new)."""

    def __init__(self, port, deadline):
        super().__init__(name="defragmenter", daemon=True)
        self.port = port
        self.deadline = deadline
        self.done = 0
        self.error = None

    def run(self):
        client = etcd3.client(host=harness.LOOPBACK, port=self.port, timeout=CLIENT_TIMEOUT_S)
        try:
            while time.monotonic() + DEFRAG_EVERY_S < self.deadline:
                time.sleep(DEFRAG_EVERY_S)  # pacing the load, not waiting for a state
                client.defragment()
                self.done += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            client.close()


def member_flags():
    return ["--snapshot-count", str(SNAPSHOT_COUNT),
            "--experimental-wal-segment-bytes", str(WAL_SEGMENT_BYTES)]


def record(args, work_dir):
    """Runs the recorded member under load; returns (trace path, histories, the monotonic
    time in ns at which the member was ready, its [client port, peer port])."""
    trace = os.path.join(work_dir, "trace")
    server = RecordedServer(args.dolmen, args.preload, trace, member_flags())
    try:
        server.start()
        ready_ns = time.monotonic_ns()  # the same clock as the trace's timestamps
        ports = [server.client_port, server.peer_port]
        deadline = time.monotonic() + args.record_seconds
        writers = [Writer(server.client_port, w, args.seed, deadline) for w in range(WRITERS)]
        defragmenter = Defragmenter(server.client_port, deadline)
        for w in writers:
            w.start()
        if not args.first_start:
            defragmenter.start()
        for w in writers + ([defragmenter] if not args.first_start else []):
            w.join(args.record_seconds + 60)
            if w.is_alive():
                raise AssertionError("%s did not finish" % w.name)
        errors = [w.error for w in writers + [defragmenter] if w.error]
        if errors:
            raise AssertionError("writers failed against the live member: %r\n%s"
                                 % (errors, server.log_text()[-5000:]))
        server.kill9()
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(server.tmp_dir, ignore_errors=True)
    history = {}
    for w in writers:
        history.update(w.history)
    if not args.first_start and defragmenter.done == 0:
        raise AssertionError("no defragmentation finished during the recording")
    print("recorded: %d writes acknowledged by %d writers, %d defragmentations; trace %d bytes"
          % (sum(w.acked for w in writers), WRITERS, defragmenter.done,
             os.path.getsize(trace)), flush=True)
    return trace, history, ready_ns, ports


HISTORY_FILE = "history.json"


def save_history(history, ready_ns, ports, work_dir):
    """Writes the writers' history next to the trace, so that a failing cut can be replayed
    exactly (--recording) without recording again."""
    rows = [[key.hex(), [[kind, value.hex() if value is not None else None, rev, ack]
                         for kind, value, rev, ack in ops]] for key, ops in history.items()]
    with open(os.path.join(work_dir, HISTORY_FILE), "w") as f:
        json.dump({"ready_ns": ready_ns, "ports": ports, "keys": rows}, f)


def load_history(work_dir):
    with open(os.path.join(work_dir, HISTORY_FILE)) as f:
        saved = json.load(f)
    return {bytes.fromhex(key): [[kind, bytes.fromhex(value) if value is not None else None,
                                  rev, ack] for kind, value, rev, ack in ops]
            for key, ops in saved["keys"]}, saved["ready_ns"], saved.get("ports")


def choose_cuts(records, seed, count, ready_ns):
    """`count` sequence numbers after the member's first start completed: half uniformly, half
    within a few hundred records after an LMDB sync (of the data file or a defragmentation's
    copy), a WAL segment release or a defragmentation's rename."""
    rng = random.Random(seed)
    first = next((r.seq for r in records if r.ts_ns >= ready_ns), records[-1].seq)
    last = records[-1].seq
    dangerous = [r.seq for r in records if r.seq >= first and (
        (r.op == reconstruct.SYNC and ("data.mdb" in r.path))
        or (r.op == reconstruct.RENAME and "data.mdb.defrag" in r.path)
        or (r.op == reconstruct.UNLINK and r.path.endswith(".wal")))]
    cuts = set()
    while len(cuts) < min(count, last - first + 1):
        if dangerous and len(cuts) % 2 == 0:
            cuts.add(min(last, rng.choice(dangerous) + rng.randrange(1, 300)))
        else:
            cuts.add(rng.randint(first, last))
    return sorted(cuts)


def first_start_cuts(records, ready_ns):
    """Every record of the member's first start, up to its readiness: the bootstrap."""
    return [r.seq for r in records if r.ts_ns < ready_ns]


def problems_in(history, cut_time, stored, revision):
    """What is wrong with (stored, revision) for a cut at cut_time; [] if nothing."""
    problems = []
    max_acked = 0
    for key, ops in history.items():
        acked_before = [i for i, op in enumerate(ops) if op[3] is not None and op[3] < cut_time]
        first = acked_before[-1] if acked_before else None
        if first is not None:
            max_acked = max(max_acked, ops[first][2])
        # Allowed states: that of the last write acknowledged before the cut, or of any later
        # one; with none acknowledged, also "never written".
        candidates = ops[first:] if first is not None else ops
        got = stored.get(key)
        ok = first is None and got is None
        for op in candidates:
            kind, value, rev, _ = op
            if kind == "delete":
                ok = ok or got is None
            elif got is not None and got[0] == value:
                if rev is not None:
                    ok = ok or got[1] == rev
                else:  # never acknowledged: its revision is unknown but after the last ack
                    ok = ok or first is None or got[1] > ops[first][2]
        if not ok:
            problems.append("key %r: stored %s; %s" % (key, describe(got, ops),
                                                       describe_acked(ops, first)))
    written = {key for key in history}
    for key in stored:
        if key not in written:
            problems.append("key %r stored, never written" % key)
    if revision < max_acked:
        problems.append("revision %d is below %d, acknowledged before the cut"
                        % (revision, max_acked))
    return problems


def describe(got, ops):
    """A stored (value, mod_revision), compared with the values written to its key."""
    if got is None:
        return "nothing"
    value, revision = got
    text = "mod_revision %d, value of %d bytes" % (revision, len(value))
    for op in ops:
        if op[1] is not None and len(op[1]) == len(value) and op[1] != value:
            at = next(i for i in range(len(value)) if value[i] != op[1][i])
            text += " (differs from the value written at revision %s from byte %d: %r...)" % (
                op[2], at, value[at:at + 16])
            break
        if op[1] == value:
            text += " (the value written at revision %s)" % op[2]
            break
    else:
        text += " never written to this key: %r..." % value[:32]
    return text


def describe_acked(ops, first):
    if first is None:
        return "no write acknowledged before the cut"
    kind, _, revision, _ = ops[first]
    return "the last write acknowledged before the cut: %s at revision %d" % (kind, revision)


def read_state(port):
    client = etcd3.client(host=harness.LOOPBACK, port=port, timeout=10)
    try:
        request = etcdrpc.RangeRequest(key=PREFIX, range_end=CHECK_PREFIX_END)
        response = client.kvstub.Range(request, client.timeout)
        return ({kv.key: (kv.value, kv.mod_revision) for kv in response.kvs},
                response.header.revision)
    finally:
        client.close()


def start_on_ports(server, ports):
    """Starts `server` on the recorded member's ports: the same peer URL means the same flags,
    hence the same member and cluster ids, as after a real power cut. (A recording without
    ports, from an older run, gets fresh ones.)"""
    if not ports:
        server.start(timeout=START_TIMEOUT_S)
        return
    server.client_port, server.peer_port = ports
    server.spawn()
    server.wait_ready(START_TIMEOUT_S)


def check_cut(args, records, history, cut, lossless, ports):
    """Returns ("ok" | "refused", detail) or raises AssertionError with what went wrong."""
    cut_record = next(r for r in records if r.seq >= cut)
    cut_time = cut_record.ts_ns / 1e9
    server = Member("dolmen", args.dolmen, label="cut-%d" % cut, extra_flags=member_flags())
    try:
        stats = reconstruct.reconstruct(records, cut, args.seed, server.data_dir,
                                        lossless=lossless, model=args.model)
        detail = "image %s" % stats
        try:
            start_on_ports(server, ports)
        except harness.ServerError as e:
            log = server.log_text()
            last_start = log.rsplit("\n=== start #", 1)[-1]
            if ports and "address already in use" in last_start.lower():
                raise AssertionError("cut %d: a port of the recorded member (%s) was taken by "
                                     "another process meanwhile; run again" % (cut, ports))
            status = server.exit_status
            if status is None:
                raise AssertionError("cut %d: the member hung at start: %s\n%s"
                                     % (cut, e, last_start[-3000:]))
            if status <= 0 or "Sanitizer" in last_start or "CHECK failed" in last_start:
                raise AssertionError("cut %d: the member crashed at start (status %d)\n%s"
                                     % (cut, status, last_start[-3000:]))
            message = [line for line in last_start.splitlines()[1:] if line.strip()]
            if not message:
                raise AssertionError("cut %d: the member exited %d without a message"
                                     % (cut, status))
            return "refused", "%s; exit %d: %s" % (detail, status, message[-1][:300])
        try:
            stored, revision = read_state(server.client_port)
        except Exception as e:  # noqa: BLE001
            raise AssertionError("cut %d: the member started but reading failed: %s\n%s"
                                 % (cut, e, server.log_text()[-3000:]))
        problems = problems_in(history, cut_time, stored, revision)
        if problems:
            raise AssertionError("cut %d: %d problem(s), e.g.:\n  %s\n%s"
                                 % (cut, len(problems), "\n  ".join(problems[:10]), detail))
        status = server.stop()
        if status not in (0, -signal.SIGTERM):
            raise AssertionError("cut %d: the member exited %s on SIGTERM\n%s"
                                 % (cut, status, server.log_text()[-3000:]))
        return "ok", "%s; %d keys, revision %d" % (detail, len(stored), revision)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(server.tmp_dir, ignore_errors=True)
        else:
            print("  kept image of cut %d in %s" % (cut, server.data_dir))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dolmen", required=True)
    parser.add_argument("--preload", required=True, help="libdolmen_powerloss_preload.so")
    parser.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("DOLMEN_POWERLOSS_SEED",
                                                                       "0")))
    parser.add_argument("--cut", type=int, action="append",
                        help="check only this cut point (repeatable)")
    parser.add_argument("--cuts", type=int, default=CUTS, help="number of cut points")
    parser.add_argument("--first-start", action="store_true",
                        help="cut at every record of the member's first start (bootstrap) "
                        "instead of --cuts points after it")
    parser.add_argument("--record-seconds", type=float, default=RECORD_SECONDS)
    parser.add_argument("--keep", action="store_true", help="keep the trace and the images")
    parser.add_argument("--recording", metavar="DIR",
                        help="check cuts of a kept recording (trace + history.json) instead of "
                        "recording a new one: replays a failing cut exactly")
    parser.add_argument("--model", choices=("sectors", "writes"), default="sectors",
                        help="how unsynced writes reach the disk (tools/powerloss/README.md)")
    parser.add_argument("--lossless", action="store_true",
                        help="control experiment: images keep every operation up to the cut "
                        "(a kill -9, not a power cut); every cut must then pass")
    args = parser.parse_args()
    for path in (args.dolmen, args.etcdctl):
        if not os.access(path, os.X_OK):
            parser.error("%s is not an executable file" % path)
    if not os.path.isfile(args.preload):
        parser.error("--preload %s does not exist" % args.preload)
    args.dolmen, args.preload = os.path.abspath(args.dolmen), os.path.abspath(args.preload)
    if not args.seed:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    harness.CONFIG.etcdctl = args.etcdctl
    harness.CONFIG.keep = args.keep
    if args.first_start:
        args.record_seconds = min(args.record_seconds, 1.0)  # only the start is looked at
    if asan_build(args.dolmen) and args.cut is None and args.cuts == CUTS:
        args.cuts = CUTS // 3  # each start costs several times more under ASan
    replay = "%s --dolmen %s --preload %s --seed %d --model %s%s" % (
        os.path.abspath(__file__), args.dolmen, args.preload, args.seed, args.model,
        " --first-start" if args.first_start else "")
    print("powerloss_test seed %d (replay: %s)" % (args.seed, replay), flush=True)

    work_dir = args.recording or tempfile.mkdtemp(prefix="dolmen-powerloss-")
    failed = keep_recording = False
    try:
        if args.recording:
            trace = os.path.join(work_dir, "trace")
            history, ready_ns, ports = load_history(work_dir)
        else:
            trace, history, ready_ns, ports = record(args, work_dir)
            save_history(history, ready_ns, ports, work_dir)
        records = reconstruct.read_trace(trace)
        if args.cut:
            cuts = args.cut
        elif args.first_start:
            cuts = first_start_cuts(records, ready_ns)
        else:
            cuts = choose_cuts(records, args.seed, args.cuts, ready_ns)
        print("trace: %d records; cuts %s" % (len(records), cuts), flush=True)
        outcomes = {"ok": 0, "refused": 0}
        failures = []
        # The first start is also checked as kill -9 leaves it (lossless): whether a power-cut
        # image keeps a given rename is up to the seed, what a crash leaves is not.
        checks = [(cut, args.lossless) for cut in cuts]
        if args.first_start and not args.lossless:
            checks = [(cut, lossless) for cut in cuts for lossless in (True, False)]
        for cut, lossless in checks:
            flags = " --lossless" if lossless else ""
            try:
                outcome, detail = check_cut(args, records, history, cut, lossless, ports)
            except AssertionError as e:
                failures.append("%d%s" % (cut, flags))
                keep_recording = True
                print("FAIL%s %s\n  replay this cut on this recording: %s --recording %s "
                      "--cut %d%s --keep" % (flags, e, replay, work_dir, cut, flags), flush=True)
                continue
            outcomes[outcome] += 1
            print("cut %d%s: %s (%s)" % (cut, flags, outcome, detail), flush=True)
        print("summary: %d cuts, %d ok, %d refused to start, %d failed%s"
              % (len(checks), outcomes["ok"], outcomes["refused"], len(failures),
                 " (cuts %s)" % ", ".join(failures) if failures else ""), flush=True)
        failed = bool(failures)
    except AssertionError as e:
        print("FAIL %s\n  replay: %s" % (e, replay), flush=True)
        failed = True
    finally:
        if args.keep or keep_recording or args.recording:
            print("recording (trace, history.json) kept in %s" % work_dir)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
