#!/usr/bin/python3
"""python3-etcd3 (a gRPC client independent of etcdctl) against etcd 3.4 and dolmen.

Each test runs one scenario against a fresh etcd and a fresh dolmen. A scenario asserts the
answers it must get (values, create/mod revisions, versions, header revisions, error codes and
messages) and also records them; etcd must pass the scenario (that keeps it honest), dolmen must
pass it too, and the two records must be equal (cluster_id/member_id are never recorded).

Run: /usr/bin/python3 python_client_test.py --dolmen PATH [unittest args]
"""

import threading
import time

import grpc

import etcd3
from etcd3 import etcdrpc

import harness
from harness import IntegrationTestCase

CLIENT_TIMEOUT_S = 10
WATCH_WAIT_S = 10

_default_excepthook = threading.excepthook


def _quiet_closed_watcher(args):
    # etcd3 0.12's watcher thread reopens its stream forever; once the client is closed that
    # ends in "Cannot invoke RPC: Channel closed!", which is how the thread is meant to stop.
    if args.exc_type is ValueError and "Channel closed" in str(args.exc_value):
        return
    _default_excepthook(args)


threading.excepthook = _quiet_closed_watcher


def kv_tuple(kv):
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def meta_tuple(value, meta):
    if meta is None:
        return (value, None)
    return (value, meta.key, meta.create_revision, meta.mod_revision, meta.version, meta.lease_id)


class Recorder:
    """Collects what a scenario observed, for the etcd-vs-dolmen comparison, and every answer
    that was not the expected one (the scenario goes on, so one report shows all of them)."""

    def __init__(self):
        self.entries = []
        self.mismatches = []

    def eq(self, what, got, want):
        """Records `got` under `what`; a mismatch if it is not `want`."""
        self.entries.append((what, got))
        if got != want:
            self.mismatches.append("%s: want %r, got %r" % (what, want, got))

    def rpc_error(self, what, fn, code, details):
        """Calls fn, which must fail with a gRPC error of `code` whose details equal `details`."""
        try:
            fn()
        except grpc.RpcError as e:
            got = (e.code(), e.details())
        else:
            got = "no error"
        self.eq(what, got, (code, details))


def raw_range(client, **fields):
    """A RangeRequest built by hand and sent through etcd3's generated stub."""
    request = etcdrpc.RangeRequest(**fields)
    return client.kvstub.Range(request, client.timeout, credentials=client.call_credentials,
                               metadata=client.metadata)


# -- scenarios: each takes (client, recorder) on a fresh server ---------------------------------

def scenario_put_get_delete(c, r):
    r.eq("put a", c.put("a", "1").header.revision, 2)
    r.eq("get a", meta_tuple(*c.get("a")), (b"1", b"a", 2, 2, 1, 0))
    r.eq("put a again", c.put("a", "2").header.revision, 3)
    r.eq("get a v2", meta_tuple(*c.get("a")), (b"2", b"a", 2, 3, 2, 0))
    r.eq("prev_kv", kv_tuple(c.put("a", "3", prev_kv=True).prev_kv), (b"a", b"2", 2, 3, 2, 0))
    r.eq("get missing", meta_tuple(*c.get("missing")), (None, None))
    r.eq("delete a", c.delete("a"), True)
    r.eq("delete a again", c.delete("a"), False)
    r.eq("get deleted", meta_tuple(*c.get("a")), (None, None))
    resp = c.delete("b-missing", prev_kv=True, return_response=True)
    r.eq("delete missing response", (resp.header.revision, resp.deleted, len(resp.prev_kvs)),
         (5, 0, 0))
    c.put("b", "x")
    resp = c.delete("b", prev_kv=True, return_response=True)
    r.eq("delete with prev_kv", (resp.header.revision, resp.deleted,
                                 [kv_tuple(kv) for kv in resp.prev_kvs]),
         (7, 1, [(b"b", b"x", 6, 6, 1, 0)]))
    r.eq("header raft_term", c.get_response("a").header.raft_term, 2)
    r.eq("binary value", (c.put(b"bin\x00key", b"\xff\x00\x01").header.revision,
                          c.get(b"bin\x00key")[0]), (8, b"\xff\x00\x01"))


def scenario_prefix_and_all(c, r):
    for key, value in (("k/2", "b"), ("k/1", "c"), ("k/3", "a"), ("k0", "x"), ("j", "y")):
        c.put(key, value)
    r.eq("get_prefix", [meta_tuple(v, m) for v, m in c.get_prefix("k/")],
         [(b"c", b"k/1", 3, 3, 1, 0), (b"b", b"k/2", 2, 2, 1, 0), (b"a", b"k/3", 4, 4, 1, 0)])
    r.eq("get_prefix by value descending",
         [m.key for _, m in c.get_prefix("k/", sort_order="descend", sort_target="value")],
         [b"k/1", b"k/2", b"k/3"])
    r.eq("get_prefix by create ascending",
         [m.key for _, m in c.get_prefix("k/", sort_order="ascend", sort_target="create")],
         [b"k/2", b"k/1", b"k/3"])
    r.eq("get_prefix keys_only", [(v, m.key) for v, m in c.get_prefix("k/", keys_only=True)],
         [(b"", b"k/1"), (b"", b"k/2"), (b"", b"k/3")])
    # etcd3 0.12 accepts but drops get_prefix(revision=...), so reads at a revision use a raw
    # RangeRequest.
    r.eq("prefix at revision 3", [kv.key for kv in raw_range(c, key=b"k/", range_end=b"k0",
                                                             revision=3).kvs], [b"k/1", b"k/2"])
    r.eq("get_all", [m.key for _, m in c.get_all()], [b"j", b"k/1", b"k/2", b"k/3", b"k0"])
    r.eq("get_range", [m.key for _, m in c.get_range("k/2", "k0")], [b"k/2", b"k/3"])
    resp = c.delete_prefix("k/")
    r.eq("delete_prefix", (resp.header.revision, resp.deleted), (7, 3))
    r.eq("get_prefix after delete", list(c.get_prefix("k/")), [])
    r.eq("delete_prefix nothing", c.delete_prefix("k/").deleted, 0)
    r.eq("get_all after delete", [(v, m.key) for v, m in c.get_all()], [(b"y", b"j"),
                                                                        (b"x", b"k0")])


def scenario_count_and_limit(c, r):
    for i in range(7):
        c.put("n/%d" % i, str(i))
    c.put("other", "o")
    resp = raw_range(c, key=b"n/", range_end=b"n0", count_only=True)
    r.eq("count_only", (resp.count, len(resp.kvs), resp.more, resp.header.revision),
         (7, 0, False, 9))
    resp = raw_range(c, key=b"\x00", range_end=b"\x00", count_only=True)
    r.eq("count_only all keys", resp.count, 8)
    resp = raw_range(c, key=b"n/", range_end=b"n0", limit=3)
    r.eq("limit", (resp.count, [kv.key for kv in resp.kvs], resp.more),
         (7, [b"n/0", b"n/1", b"n/2"], True))
    resp = raw_range(c, key=b"n/", range_end=b"n0", limit=3, keys_only=True,
                     sort_order=etcdrpc.RangeRequest.DESCEND)
    r.eq("limit keys_only descend", (resp.count, [(kv.key, kv.value) for kv in resp.kvs],
                                     resp.more),
         (7, [(b"n/6", b""), (b"n/5", b""), (b"n/4", b"")], True))
    resp = raw_range(c, key=b"n/", range_end=b"n0", min_mod_revision=4, max_mod_revision=6)
    r.eq("mod revision filter", [kv.key for kv in resp.kvs], [b"n/2", b"n/3", b"n/4"])
    resp = raw_range(c, key=b"n/", range_end=b"n0", min_create_revision=7)
    r.eq("create revision filter", [kv.key for kv in resp.kvs], [b"n/5", b"n/6"])
    resp = raw_range(c, key=b"n/3", serializable=True)
    r.eq("serializable get", [kv_tuple(kv) for kv in resp.kvs], [(b"n/3", b"3", 5, 5, 1, 0)])


def scenario_transactions(c, r):
    t = c.transactions
    c.put("a", "1")   # rev 2
    c.put("b", "x")   # rev 3
    c.put("b", "y")   # rev 4: b version 2, create 3, mod 4
    ok, responses = c.transaction(
        compare=[t.value("a") == "1", t.version("b") == 2, t.create("b") == 3, t.mod("b") > 3],
        success=[t.put("c", "new"), t.get("b"), t.delete("a")],
        failure=[t.put("never", "1")])
    r.eq("success branch taken", ok, True)
    r.eq("success responses", (
        responses[0].response_put.header.revision,
        [meta_tuple(v, m) for v, m in responses[1]],  # etcd3 turns ranges into (value, meta)
        responses[2].response_delete_range.deleted), (5, [(b"y", b"b", 3, 4, 2, 0)], 1))
    ok, responses = c.transaction(
        compare=[t.value("b") == "y", t.mod("b") < 4],
        success=[t.put("never", "1")],
        failure=[t.put("f", "1"), t.get("c")])
    r.eq("failure branch taken", ok, False)
    r.eq("failure responses", (
        responses[0].response_put.header.revision,
        [meta_tuple(v, m) for v, m in responses[1]]), (6, [(b"new", b"c", 5, 5, 1, 0)]))
    ok, _ = c.transaction(compare=[t.version("gone") == 0, t.create("gone") == 0,
                                   t.value("b") != "z", t.version("b") < 3],
                          success=[], failure=[])
    r.eq("compares on a missing key", ok, True)
    ok, _ = c.transaction(compare=[t.value("a") == ""], success=[], failure=[])
    r.eq("value compare on a deleted key", ok, False)
    r.eq("never written", meta_tuple(*c.get("never")), (None, None))
    r.eq("revision after txns", c.get_response("c").header.revision, 6)
    r.rpc_error("duplicate key in txn",
                lambda: c.transaction(compare=[], success=[t.put("d", "1"), t.put("d", "2")],
                                      failure=[]),
                grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: duplicate key given in txn request")
    r.rpc_error("too many ops in txn",
                lambda: c.transaction(compare=[], success=[t.put("o%d" % i, "v")
                                                           for i in range(129)], failure=[]),
                grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: too many operations in txn request")


def scenario_compaction(c, r):
    for i in range(5):
        c.put("a", str(i))  # revs 2..6
    r.eq("compact", c.compact(4), None)
    r.rpc_error("read below compaction", lambda: raw_range(c, key=b"a", revision=3),
                grpc.StatusCode.OUT_OF_RANGE,
                "etcdserver: mvcc: required revision has been compacted")
    r.eq("read at compaction", [kv.value for kv in raw_range(c, key=b"a", revision=4).kvs],
         [b"2"])
    r.rpc_error("read a future revision", lambda: raw_range(c, key=b"a", revision=7),
                grpc.StatusCode.OUT_OF_RANGE,
                "etcdserver: mvcc: required revision is a future revision")
    r.rpc_error("compact again", lambda: c.compact(3), grpc.StatusCode.OUT_OF_RANGE,
                "etcdserver: mvcc: required revision has been compacted")
    r.rpc_error("compact the future", lambda: c.compact(100), grpc.StatusCode.OUT_OF_RANGE,
                "etcdserver: mvcc: required revision is a future revision")
    r.eq("physical compact", c.compact(6, physical=True), None)
    r.eq("latest after compact", meta_tuple(*c.get("a")), (b"4", b"a", 2, 6, 5, 0))
    r.eq("write after compact", c.put("a", "5").header.revision, 7)


def scenario_request_errors(c, r):
    r.rpc_error("empty key", lambda: c.put("", "v"), grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: key is not provided")
    r.rpc_error("oversized value", lambda: c.put("big", b"v" * (1024 * 1024 * 16 // 10)),
                grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large")
    r.rpc_error("range of empty key", lambda: c.get_response(""), grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: key is not provided")
    r.eq("nothing was written", c.get_response("x").header.revision, 1)
    # etcd 3.4 refuses a request whose raft entry (InternalRaftRequest: a header with a request
    # id, then the PutRequest) exceeds --max-request-bytes = 1.5 MiB. With a 1-byte key the
    # largest value it takes is 1572840 bytes, give or take a byte or two because the request id
    # is a varint built from the member id and the clock. The two sizes below stay clear of that.
    r.eq("value just below the request limit",
         c.put("k", b"v" * (1572864 - 26)).header.revision, 2)
    r.rpc_error("value just above the request limit",
                lambda: c.put("k", b"v" * (1572864 - 18)), grpc.StatusCode.INVALID_ARGUMENT,
                "etcdserver: request is too large")


def scenario_raw_requests(c, r):
    """Requests etcdctl cannot send, built field by field."""
    kv, rq = c.kvstub, etcdrpc

    def answer(call):
        try:
            response = call()
        except grpc.RpcError as e:
            return (e.code(), e.details())
        response.header.cluster_id = response.header.member_id = 0  # never compared
        return str(response)

    # Compacting at 0 before anything was compacted is accepted by etcd 3.4 (0 > -1).
    r.eq("compact 0 on a fresh store", answer(lambda: kv.Compact(rq.CompactionRequest(revision=0))),
         "header {\n  revision: 1\n  raft_term: 2\n}\n")
    r.eq("compact -1", answer(lambda: kv.Compact(rq.CompactionRequest(revision=-1))),
         (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"))
    kv.Put(rq.PutRequest(key=b"a", value=b"1"))  # rev 2
    r.eq("ignore_value with a value",
         answer(lambda: kv.Put(rq.PutRequest(key=b"a", value=b"1", ignore_value=True))),
         (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: value is provided"))
    r.eq("ignore_lease with a lease",
         answer(lambda: kv.Put(rq.PutRequest(key=b"a", value=b"1", ignore_lease=True, lease=5))),
         (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: lease is provided"))
    r.eq("put with an unknown lease", answer(lambda: kv.Put(rq.PutRequest(key=b"l", lease=77))),
         (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found"))
    r.eq("range_end before key", answer(lambda: kv.Range(rq.RangeRequest(key=b"z",
                                                                          range_end=b"a"))),
         "header {\n  revision: 2\n  raft_term: 2\n}\n")
    r.eq("negative revision reads the latest",
         answer(lambda: kv.Range(rq.RangeRequest(key=b"a", revision=-1, keys_only=True))),
         "header {\n  revision: 2\n  raft_term: 2\n}\nkvs {\n  key: \"a\"\n"
         "  create_revision: 2\n  mod_revision: 2\n  version: 1\n}\ncount: 1\n")
    inner = rq.RequestOp(request_txn=rq.TxnRequest(
        success=[rq.RequestOp(request_put=rq.PutRequest(key=b"n1", value=b"x"))]))
    r.eq("nested txn", answer(lambda: kv.Txn(rq.TxnRequest(success=[
        inner, rq.RequestOp(request_put=rq.PutRequest(key=b"n2", value=b"y"))]))),
        "header {\n  revision: 3\n  raft_term: 2\n}\nsucceeded: true\nresponses {\n"
        "  response_txn {\n    header {\n    }\n    succeeded: true\n    responses {\n"
        "      response_put {\n        header {\n          revision: 3\n        }\n      }\n"
        "    }\n  }\n}\nresponses {\n  response_put {\n    header {\n      revision: 3\n"
        "    }\n  }\n}\n")
    r.eq("nested txn writing a key twice", answer(lambda: kv.Txn(rq.TxnRequest(success=[
        inner, rq.RequestOp(request_put=rq.PutRequest(key=b"n1", value=b"y"))]))),
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"))
    over_range = rq.Compare(key=b"a", range_end=b"o", target=rq.Compare.VERSION,
                            result=rq.Compare.GREATER, version=0)
    r.eq("compare over a key range", answer(lambda: kv.Txn(rq.TxnRequest(compare=[over_range])))
         .split("succeeded")[-1], ": true\n")
    r.eq("oversized gRPC message (over max-request-bytes + 512 KiB)",
         answer(lambda: kv.Put(rq.PutRequest(key=b"big", value=b"x" * (5 * 1024 * 1024 // 2)))),
         (grpc.StatusCode.RESOURCE_EXHAUSTED,
          "grpc: received message larger than max (2621450 vs. 2097152)"))


def scenario_watch(c, r):
    c.put("a", "1")   # rev 2
    c.put("b", "2")   # rev 3
    c.put("a", "3")   # rev 4
    c.delete("b")     # rev 5
    events = []
    lock = threading.Condition()

    def on_response(response):
        with lock:
            if isinstance(response, etcd3.exceptions.RevisionCompactedError):
                events.append(("compacted", response.compacted_revision))
            elif isinstance(response, Exception):
                events.append(("error", repr(response)))
            else:
                for ev in response.events:
                    events.append((type(ev).__name__, ev.key, ev.value, ev.mod_revision,
                                   ev.version, ev.prev_value))
            lock.notify_all()

    def wait_for(count):
        deadline = time.monotonic() + WATCH_WAIT_S
        with lock:
            while len(events) < count and time.monotonic() < deadline:
                lock.wait(deadline - time.monotonic())
            return list(events)

    watch_id = c.add_watch_callback(b"a", on_response, range_end=b"c", start_revision=2,
                                    prev_kv=True)
    try:
        r.eq("history from revision 2", wait_for(4), [
            ("PutEvent", b"a", b"1", 2, 1, b""), ("PutEvent", b"b", b"2", 3, 1, b""),
            ("PutEvent", b"a", b"3", 4, 2, b"1"), ("DeleteEvent", b"b", b"", 5, 0, b"2")])
        c.put("b", "4")  # rev 6, seen live
        c.put("c", "outside the range")
        c.put("a", "5")  # rev 8
        r.eq("live events", wait_for(6)[4:], [("PutEvent", b"b", b"4", 6, 1, b""),
                                              ("PutEvent", b"a", b"5", 8, 3, b"3")])
    finally:
        c.cancel_watch(watch_id)
    c.compact(6)
    # etcd creates the watch, then answers with compact_revision set and cancels it; etcd3
    # hands that to the callback as RevisionCompactedError.
    try:
        c.add_watch_callback(b"a", on_response, start_revision=5)
    except etcd3.exceptions.RevisionCompactedError as e:  # the answer came with "created"
        on_response(e)
    r.eq("watch from a compacted revision", wait_for(7)[6:], [("compacted", 6)])


class PythonClientTest(IntegrationTestCase):

    def check(self, scenario):
        etcd, dolmen = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        outcome = {}
        for server in (etcd, dolmen):
            recorder = Recorder()
            client = etcd3.client(host=harness.LOOPBACK, port=server.client_port,
                                  timeout=CLIENT_TIMEOUT_S)
            try:
                scenario(client, recorder)
                error = None
            except Exception as e:  # noqa: BLE001 - both sides are reported below
                error = "%s: %s" % (type(e).__name__, e)
            finally:
                client.close()
            outcome[server.label] = (error, recorder)
        etcd_error, etcd_record = outcome[etcd.label]
        dolmen_error, dolmen_record = outcome[dolmen.label]
        self.assertEqual((etcd_error, etcd_record.mismatches), (None, []),
                         "the scenario itself is wrong: etcd fails it")
        problems = ["%s: %s" % (dolmen.label, m) for m in dolmen_record.mismatches]
        if dolmen_error:
            problems.append("%s stopped the scenario with %s" % (dolmen.label, dolmen_error))
        for (what, want), got in zip(etcd_record.entries, dolmen_record.entries):
            if (what, want) != got:
                problems.append("%s: etcd %r, %s %r" % (what, want, dolmen.label, got[1]))
        if problems:
            self.fail("\n".join(problems))

    def test_put_get_delete(self):
        self.check(scenario_put_get_delete)

    def test_prefix_and_get_all(self):
        self.check(scenario_prefix_and_all)

    def test_count_only_and_limit(self):
        self.check(scenario_count_and_limit)

    def test_transactions(self):
        self.check(scenario_transactions)

    def test_compaction(self):
        self.check(scenario_compaction)

    def test_request_errors(self):
        self.check(scenario_request_errors)

    def test_raw_requests(self):
        self.check(scenario_raw_requests)

    def test_watch(self):
        self.check(scenario_watch)


if __name__ == "__main__":
    harness.main()
