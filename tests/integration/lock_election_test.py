#!/usr/bin/python3
"""The v3lock and v3election gRPC services (server-side recipes) against etcd 3.4 and dolmen.

etcdctl lock/elect run their recipes in the client (lease_test.py covers them); clients of
etcd's Lock and Election services (e.g. the gRPC gateway, Go's v3lock/v3election clients) rely
on the server doing it. python3-etcd3 has no stubs for these services, so the test generates
Python message classes from our own proto files with protoc into a temp dir, and calls the
methods through grpc's generic stubs. Leases are granted with fixed ids, so nothing needs
normalising: answers (keys, revisions, values, error codes and texts) are compared as they are.

Run: /usr/bin/python3 lock_election_test.py --dolmen PATH [unittest args]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import grpc

import harness
from harness import IntegrationTestCase

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
POLL_LIMIT_S = 15.0
CALL_TIMEOUT_S = 15.0
pb = {}  # module name -> generated module, filled by setUpModule


def setUpModule():
    protoc = shutil.which("protoc")
    if protoc is None:
        raise unittest.SkipTest("protoc not found")
    out = tempfile.mkdtemp(prefix="dolmen-it-proto-")
    files = ["v3lockpb/v3lock.proto", "v3electionpb/v3election.proto", "etcdserverpb/rpc.proto",
             "mvccpb/kv.proto", "authpb/auth.proto"]
    subprocess.run([protoc, "-I", PROTO_DIR, "--python_out", out] + files, check=True)
    sys.path.insert(0, out)
    from etcdserverpb import rpc_pb2
    from v3electionpb import v3election_pb2
    from v3lockpb import v3lock_pb2
    pb.update(rpc=rpc_pb2, lock=v3lock_pb2, election=v3election_pb2)


def poll(condition, limit_s=POLL_LIMIT_S):
    """Polls until condition() is true or the limit passes; returns the last value."""
    return harness.poll_until(condition, limit_s, 0.05)


class Client:
    """Generic unary and server-streaming calls by method path."""

    def __init__(self, server):
        self.channel = grpc.insecure_channel(server.hostport)

    def call(self, method, request, response_class):
        fn = self.channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=response_class.FromString)
        return fn(request, timeout=CALL_TIMEOUT_S)

    def stream(self, method, request, response_class):
        fn = self.channel.unary_stream(method, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=response_class.FromString)
        return fn(request, timeout=60)

    def close(self):
        self.channel.close()


def error_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return (e.code().name, e.details())
    return "no error"


class Pending:
    """A blocking call run in a thread; its result is polled."""

    def __init__(self, fn):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = ("ok", fn())
        except grpc.RpcError as e:
            self.result = ("error", e.code().name, e.details())

    def done(self):
        return self.result is not None


class LockElectionServiceTest(IntegrationTestCase):

    def keys(self, client, prefix):
        rpc = pb["rpc"]
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = client.call("/etcdserverpb.KV/Range",
                        rpc.RangeRequest(key=prefix.encode(), range_end=end.encode(),
                                         keys_only=True), rpc.RangeResponse)
        return [kv.key.decode() for kv in r.kvs]

    def grant(self, client, lease_id, ttl=60):
        rpc = pb["rpc"]
        client.call("/etcdserverpb.Lease/LeaseGrant", rpc.LeaseGrantRequest(ID=lease_id, TTL=ttl),
                    rpc.LeaseGrantResponse)

    def lock_scenario(self, server):
        rpc, lock = pb["rpc"], pb["lock"]
        client = Client(server)
        record = []
        try:
            self.grant(client, 0x10)
            self.grant(client, 0x20)
            first = client.call("/v3lockpb.Lock/Lock", lock.LockRequest(name=b"L", lease=0x10),
                                lock.LockResponse)
            record.append(("first", first.key, first.header.revision))
            second = Pending(lambda: client.call(
                "/v3lockpb.Lock/Lock", lock.LockRequest(name=b"L", lease=0x20), lock.LockResponse))
            record.append(("queued", poll(lambda: len(self.keys(client, "L/")) == 2),
                           second.done()))
            again = client.call("/v3lockpb.Lock/Lock", lock.LockRequest(name=b"L", lease=0x10),
                                lock.LockResponse)  # the holder locking again: re-entrant
            record.append(("again", again.key, again.header.revision))
            unlocked = client.call("/v3lockpb.Lock/Unlock", lock.UnlockRequest(key=first.key),
                                   lock.UnlockResponse)
            record.append(("unlock", unlocked.header.revision))
            record.append(("second", poll(second.done) and second.result[0],
                           second.result and second.result[1].key,
                           second.result and second.result[1].header.revision))
            record.append(("unknown lease", error_of(lambda: client.call(
                "/v3lockpb.Lock/Lock", lock.LockRequest(name=b"L", lease=0x99),
                lock.LockResponse))))
            # Revoking the holder's lease releases the lock.
            third = Pending(lambda: client.call(
                "/v3lockpb.Lock/Lock", lock.LockRequest(name=b"L", lease=0x10), lock.LockResponse))
            poll(lambda: len(self.keys(client, "L/")) == 2)
            client.call("/etcdserverpb.Lease/LeaseRevoke", rpc.LeaseRevokeRequest(ID=0x20),
                        rpc.LeaseRevokeResponse)
            record.append(("after revoke", poll(third.done) and third.result[1].key))
            record.append(("left", self.keys(client, "L/")))
        finally:
            client.close()
        return record

    def election_scenario(self, server):
        election = pb["election"]
        client = Client(server)
        record = []
        E = "/v3electionpb.Election/"
        try:
            self.grant(client, 0x30)
            self.grant(client, 0x40)
            record.append(("no leader", error_of(lambda: client.call(
                E + "Leader", election.LeaderRequest(name=b"E"), election.LeaderResponse))))
            won = client.call(E + "Campaign", election.CampaignRequest(
                name=b"E", lease=0x30, value=b"v1"), election.CampaignResponse)
            leader = won.leader
            record.append(("won", leader.name, leader.key, leader.rev, leader.lease,
                           won.header.revision))
            observed = []
            stream = client.stream(E + "Observe", election.LeaderRequest(name=b"E"),
                                   election.LeaderResponse)
            watcher = threading.Thread(target=lambda: [observed.append(
                (r.kv.key, r.kv.value, r.kv.create_revision)) for r in stream], daemon=True)
            watcher.start()
            record.append(("observe first", poll(lambda: len(observed) >= 1) and observed[0]))
            proclaimed = client.call(E + "Proclaim", election.ProclaimRequest(
                leader=leader, value=b"v2"), election.ProclaimResponse)
            record.append(("proclaim", proclaimed.header.revision))
            now = client.call(E + "Leader", election.LeaderRequest(name=b"E"),
                              election.LeaderResponse)
            record.append(("leader", now.kv.key, now.kv.value, now.kv.lease))
            record.append(("observe proclaim", poll(lambda: len(observed) >= 2) and observed[1]))
            rival = Pending(lambda: client.call(E + "Campaign", election.CampaignRequest(
                name=b"E", lease=0x40, value=b"w"), election.CampaignResponse))
            record.append(("queued", poll(lambda: len(self.keys(client, "E/")) == 2),
                           rival.done()))
            resigned = client.call(E + "Resign", election.ResignRequest(leader=leader),
                                   election.ResignResponse)
            record.append(("resign", resigned.header.revision))
            record.append(("rival", poll(rival.done) and rival.result[1].leader.key))
            record.append(("observe rival", poll(lambda: len(observed) >= 3) and observed[2]))
            record.append(("stale proclaim", error_of(lambda: client.call(
                E + "Proclaim", election.ProclaimRequest(leader=leader, value=b"x"),
                election.ProclaimResponse))))
            record.append(("missing leader", error_of(lambda: client.call(
                E + "Resign", election.ResignRequest(), election.ResignResponse))))
            stream.cancel()
        finally:
            client.close()
        return record

    def both(self, fn, servers):
        results = [None, None]
        errors = []

        def side(i):
            try:
                results[i] = fn(servers[i])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=side, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        if errors:
            raise AssertionError("harness error: %r" % errors)
        return results

    def test_lock(self):
        servers = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        want, got = self.both(self.lock_scenario, servers)
        self.assertEqual(want[0], ("first", b"L/10", 2), want)
        self.assertEqual(want[1], ("queued", True, False), want)
        self.assertEqual(want[4][:3], ("second", "ok", b"L/20"), want)
        self.assertEqual(got, want)

    def test_election(self):
        servers = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        want, got = self.both(self.election_scenario, servers)
        self.assertEqual(want[0], ("no leader", ("UNKNOWN", "election: no leader")), want)
        self.assertEqual(want[4], ("leader", b"E/30", b"v2", 0x30), want)
        self.assertEqual(got, want)


if __name__ == "__main__":
    harness.main()
