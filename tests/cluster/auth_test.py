#!/usr/bin/env python3
"""Auth on three members (docs/auth.md): what one member decides, every member enforces.

  - `auth enable` through one member turns auth on for all: an anonymous put through another
    is refused with etcd's "user name is empty";
  - a simple token issued by one member (Authenticate is replicated) is accepted by the others;
  - a read-only role on a prefix, granted through a third member, holds on every member: a put
    outside it is refused with "permission denied", a read inside it is served;
  - `auth disable` through another member turns it off for all.

Run: /usr/bin/python3 tests/cluster/auth_test.py --server dolmen --dolmen build/cmd/dolmen/dolmen
     (or --server etcd --etcd /usr/bin/etcd for the reference run)
"""

import grpc
from etcd3 import etcdrpc  # python3-etcd3's generated stubs of etcd's rpc.proto

import cluster
from cluster import ClusterTestCase

RPC_TIMEOUT_S = 5.0


def channel(member):
    return grpc.insecure_channel("127.0.0.1:%d" % member.client_port)


def authenticate(member, name, password):
    with channel(member) as ch:
        reply = etcdrpc.AuthStub(ch).Authenticate(
            etcdrpc.AuthenticateRequest(name=name, password=password), timeout=RPC_TIMEOUT_S)
    return reply.token


def put(member, key, value, token=None):
    """None when the put succeeded, else gRPC's (code name, details)."""
    metadata = [("token", token)] if token else None
    with channel(member) as ch:
        try:
            etcdrpc.KVStub(ch).Put(etcdrpc.PutRequest(key=key.encode(), value=value.encode()),
                                   timeout=RPC_TIMEOUT_S, metadata=metadata)
            return None
        except grpc.RpcError as e:
            return (e.code().name, e.details())


def get(member, key, token):
    with channel(member) as ch:
        reply = etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=key.encode()),
                                         timeout=RPC_TIMEOUT_S, metadata=[("token", token)])
    return [kv.value.decode() for kv in reply.kvs]


def get_or_code(member, key, token):
    """get's values, or gRPC's code name when the range was refused."""
    try:
        return get(member, key, token)
    except grpc.RpcError as e:
        return e.code().name


class AuthAcrossMembersTest(ClusterTestCase):

    def test_what_one_member_decides_every_member_enforces(self):
        c = self.new_cluster(3)
        c.wait_leader()
        m1, m2, m3 = c.members
        for args in (("user", "add", "root:rootpw"), ("role", "add", "reader"),
                     ("role", "grant-permission", "reader", "read", "ro/", "--prefix=true"),
                     ("user", "add", "alice:alicepw"), ("user", "grant-role", "alice", "reader"),
                     ("put", "ro/k", "v")):
            rc, out, err = m1.etcdctl(*args)
            self.assertEqual(rc, 0, "%s: %s %s" % (" ".join(args), out, err))
        rc, out, err = m1.etcdctl("auth", "enable")
        self.assertEqual(rc, 0, out + err)

        # Every member refuses an anonymous put once the enable is applied there.
        for m in (m2, m3):
            self.assertEventually(
                lambda m=m: put(m, "a", "1") == ("INVALID_ARGUMENT",
                                                 "etcdserver: user name is empty"),
                10.0, "anonymous put refused on %s" % m.name)

        # A token from m1 works on m2 and m3 once they applied the Authenticate that made it (a
        # simple token lives in each member's memory, put there by the raft entry; etcd 3.4
        # answers "invalid auth token" until then too, and its clients re-authenticate).
        root = authenticate(m1, "root", "rootpw")
        self.assertTrue(root)
        for m in (m2, m3):
            self.assertEventually(lambda m=m: put(m, "by-root-via-" + m.name, "1", root) is None,
                                  10.0, "root's token from m1 accepted on %s" % m.name)

        # alice may read ro/ and write nothing, on every member, whoever issued her token.
        alice = authenticate(m2, "alice", "alicepw")
        for m in c.members:
            self.assertEventually(lambda m=m: get_or_code(m, "ro/k", alice) == ["v"], 10.0,
                                  "alice's token from m2 accepted on %s" % m.name)
            self.assertEqual(get(m, "ro/k", alice), ["v"], m.name)
            self.assertEqual(put(m, "ro/k", "w", alice),
                             ("PERMISSION_DENIED", "etcdserver: permission denied"), m.name)
        self.assertEqual(put(m3, "x", "1", "not-a-token"),
                         ("UNAUTHENTICATED", "etcdserver: invalid auth token"))

        # Disabled through m2: m1 and m3 take anonymous puts again.
        rc, out, err = m2.etcdctl("--user", "root:rootpw", "auth", "disable")
        self.assertEqual(rc, 0, out + err)
        for m in (m1, m3):
            self.assertEventually(lambda m=m: put(m, "anon-" + m.name, "1") is None, 10.0,
                                  "anonymous put accepted on %s" % m.name)
        rc, out, err = m3.etcdctl("get", "ro/k", "--print-value-only")
        self.assertEqual((rc, out.strip()), (0, "v"), err)


if __name__ == "__main__":
    cluster.main()
