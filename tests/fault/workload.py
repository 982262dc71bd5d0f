"""Concurrent clients and a watcher for the fault tests, recording what they saw.

Clients: `Workload` runs N threads, each with a seeded random.Random (seed, client number), that
put, get (linearizable), compare-and-swap (a txn: if the value is the one this client last saw,
put a new one) and delete keys of a small set under PREFIX through one member at a time
(python3-etcd3's generated gRPC stubs, each call with a short deadline). Values are unique:
"c<client>-<seq>". Every operation is recorded as a linearizability.Op with its call and return
times (time.monotonic); an operation that fails in any way (deadline, lost connection, no
leader) is recorded as unknown (no return) for puts and deletes, since it may have taken effect,
and the client moves to the next member. Bounded: each client stops at `stop()` or after
MAX_OPS_PER_CLIENT operations.

Watcher: one watch on PREFIX with prev_kv and progress_notify, from a start revision; records
watch_checker.WatchEvent / Progress in arrival order. A stream that ends, fails, or stays silent
for STALL_S (a partitioned or stopped member sends nothing, and a dead TCP peer is not noticed
by gRPC for minutes) is cancelled and reopened on the next member from the last revision + 1.
"""

import queue
import random
import threading
import time

import grpc
from etcd3 import etcdrpc

from linearizability import Op
from watch_checker import Progress, WatchEvent

PREFIX = "/fault/"
KEYS = ["%sk%d" % (PREFIX, i) for i in range(5)]
OP_TIMEOUT_S = 1.0
MAX_OPS_PER_CLIENT = 20000
STALL_S = 1.5  # a false alarm only costs a resumption, which is itself under test


def _b(s):
    return s.encode()


class Recorder:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def snapshot(self):
        with self.lock:
            return list(self.ops)


class Endpoint:
    """One gRPC channel to one member (host:port)."""

    def __init__(self, address):
        self.address = address
        self.channel = grpc.insecure_channel(address)
        self.kv = etcdrpc.KVStub(self.channel)
        self.watch = etcdrpc.WatchStub(self.channel)
        self.maintenance = etcdrpc.MaintenanceStub(self.channel)

    def close(self):
        self.channel.close()


def do_put(ep, recorder, client, key, value, timeout=OP_TIMEOUT_S):
    op = Op(client, "put", key, time.monotonic(), value=value)
    try:
        resp = ep.kv.Put(etcdrpc.PutRequest(key=_b(key), value=_b(value)), timeout)
        op.ret = time.monotonic()
        op.result = {"rev": resp.header.revision}
    except grpc.RpcError:
        pass  # unknown: it may have been committed
    recorder.add(op)
    return op


def do_get(ep, recorder, client, key, timeout=OP_TIMEOUT_S):
    op = Op(client, "get", key, time.monotonic())
    try:
        resp = ep.kv.Range(etcdrpc.RangeRequest(key=_b(key)), timeout)
        op.ret = time.monotonic()
        kv = resp.kvs[0] if resp.kvs else None
        op.result = {"value": kv.value.decode() if kv else None,
                     "mod_rev": kv.mod_revision if kv else 0,
                     "header_rev": resp.header.revision}
        recorder.add(op)
    except grpc.RpcError:
        pass  # a failed read tells nothing
    return op


def do_cas(ep, recorder, client, key, expect, value, timeout=OP_TIMEOUT_S):
    """A txn: if the key's value is `expect` (None: if the key does not exist), put `value`."""
    if expect is None:
        compare = etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.CREATE,
                                  key=_b(key), create_revision=0)
    else:
        compare = etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.VALUE,
                                  key=_b(key), value=_b(expect))
    request = etcdrpc.TxnRequest(compare=[compare], success=[etcdrpc.RequestOp(
        request_put=etcdrpc.PutRequest(key=_b(key), value=_b(value)))])
    op = Op(client, "cas", key, time.monotonic(), value=value, expect=expect)
    try:
        resp = ep.kv.Txn(request, timeout)
        op.ret = time.monotonic()
        op.result = {"succeeded": resp.succeeded, "header_rev": resp.header.revision}
    except grpc.RpcError:
        pass  # unknown: it may have been committed
    recorder.add(op)
    return op


def do_delete(ep, recorder, client, key, timeout=OP_TIMEOUT_S):
    op = Op(client, "delete", key, time.monotonic())
    try:
        resp = ep.kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=_b(key)), timeout)
        op.ret = time.monotonic()
        op.result = {"deleted": resp.deleted, "header_rev": resp.header.revision}
    except grpc.RpcError:
        pass
    recorder.add(op)
    return op


class Workload:
    def __init__(self, addresses, seed, clients=4, recorder=None):
        self.addresses = list(addresses)
        self.seed = seed
        self.clients = clients
        self.recorder = recorder or Recorder()
        self._stop = threading.Event()
        self._threads = []
        self.errors = []
        self.counts = [0] * clients

    def start(self):
        for c in range(self.clients):
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, timeout=10):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        if any(t.is_alive() for t in self._threads):
            raise RuntimeError("a workload client did not stop within %ds" % timeout)
        if self.errors:
            raise self.errors[0]

    def total(self):
        return sum(self.counts)

    def acknowledged(self):
        return sum(1 for op in self.recorder.snapshot() if not op.unknown)

    def _run(self, client):
        rng = random.Random("%s/%d" % (self.seed, client))
        member = client % len(self.addresses)
        eps = {}
        try:
            seq = 0
            last_seen = {}  # key -> the value this client last read or wrote (None: absent)
            while not self._stop.is_set() and seq < MAX_OPS_PER_CLIENT:
                addr = self.addresses[member]
                ep = eps.get(addr) or eps.setdefault(addr, Endpoint(addr))
                key = rng.choice(KEYS)
                r = rng.random()
                seq += 1
                self.counts[client] = seq
                value = "c%d-%d" % (client, seq)
                if r < 0.4:
                    op = do_put(ep, self.recorder, client, key, value)
                    if not op.unknown:
                        last_seen[key] = value
                elif r < 0.8:
                    op = do_get(ep, self.recorder, client, key)
                    if op.result is not None:
                        last_seen[key] = op.result["value"]
                elif r < 0.92:
                    op = do_cas(ep, self.recorder, client, key, last_seen.get(key), value)
                    if not op.unknown and op.result["succeeded"]:
                        last_seen[key] = value
                else:
                    op = do_delete(ep, self.recorder, client, key)
                    if not op.unknown:
                        last_seen[key] = None
                if op.unknown:
                    member = (member + 1) % len(self.addresses)
                    self._stop.wait(0.05)  # do not spin on a member that is down
        except Exception as e:  # reported by stop()
            self.errors.append(e)
        finally:
            for ep in eps.values():
                ep.close()


class Watcher:
    def __init__(self, addresses, prefix, start_rev, first=0):
        self.addresses = list(addresses)
        self.prefix = prefix
        self.start_rev = start_rev
        self.next_rev = start_rev
        self.records = []
        self.resumptions = []  # (time, address, from revision, why)
        self.failure = None  # a canceled/compacted answer: the watch cannot go on
        self._member = first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._call = None
        self._last_answer = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._monitor = threading.Thread(target=self._watchdog, daemon=True)
        self.streams = 0

    def start(self):
        self._thread.start()
        self._monitor.start()

    def stop(self, timeout=10):
        self._stop.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        self._thread.join(timeout)
        self._monitor.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the watcher did not stop within %ds" % timeout)

    def last_revision(self):
        with self._lock:
            return self.next_rev - 1

    def reached(self):
        """The highest revision the watcher is known to have seen everything up to."""
        with self._lock:
            best = self.next_rev - 1
            for r in reversed(self.records):
                if isinstance(r, Progress):
                    return max(best, r.rev)
            return best

    def progress_at_least(self):
        """The revision of the last progress notification (0 if none yet)."""
        with self._lock:
            for r in reversed(self.records):
                if isinstance(r, Progress):
                    return r.rev
            return 0

    def _watchdog(self):
        while not self._stop.wait(0.2):
            with self._lock:
                silent = time.monotonic() - self._last_answer
                if self._call is not None and silent > STALL_S:
                    self._call.cancel()  # the reader resumes on the next member

    def _run(self):
        range_end = self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)
        while not self._stop.is_set():
            addr = self.addresses[self._member % len(self.addresses)]
            ep = Endpoint(addr)
            requests = queue.Queue()
            requests.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=_b(self.prefix), range_end=_b(range_end), start_revision=self.next_rev,
                prev_kv=True, progress_notify=True)))

            def request_iter():
                while True:
                    item = requests.get()
                    if item is None:
                        return
                    yield item

            why = "stream ended"
            try:
                with self._lock:
                    self.streams += 1
                    stream_no = self.streams
                    self._last_answer = time.monotonic()
                    self._call = ep.watch.Watch(request_iter())
                    call = self._call
                for resp in call:
                    with self._lock:
                        self._last_answer = time.monotonic()
                        if resp.canceled or resp.compact_revision:
                            self.failure = ("watch canceled on %s at %d: %r (compact revision "
                                            "%d)" % (addr, self.next_rev, resp.cancel_reason,
                                                     resp.compact_revision))
                            self._stop.set()
                            break
                        if resp.created:
                            continue
                        if not resp.events:
                            if resp.watch_id >= 0:
                                self.records.append(Progress(resp.header.revision, stream_no))
                            continue
                        for ev in resp.events:
                            is_delete = ev.type == 1
                            prev = None
                            if ev.HasField("prev_kv"):
                                prev = (ev.prev_kv.value.decode(), ev.prev_kv.mod_revision)
                            self.records.append(WatchEvent(
                                "delete" if is_delete else "put", ev.kv.key.decode(),
                                None if is_delete else ev.kv.value.decode(),
                                ev.kv.mod_revision, prev, stream_no))
                            self.next_rev = ev.kv.mod_revision + 1
            except grpc.RpcError as e:
                why = "%s" % (e.code(),)
            finally:
                requests.put(None)
                with self._lock:
                    self._call = None
                ep.close()
            if self._stop.is_set():
                return
            with self._lock:
                self.resumptions.append((time.monotonic(), addr, self.next_rev, why))
            self._member += 1
            self._stop.wait(0.1)
