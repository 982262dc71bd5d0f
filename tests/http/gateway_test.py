"""The JSON gateway (docs/http.md, "JSON gateway") against etcd 3.4's on the same requests.

etcd's documented curl examples (put, range, prefix range, delete, txn, compaction, watch with a
few events streamed, lease grant / keepalive / timetolive / revoke, member list, status, lock),
and the error answers (malformed JSON, wrong types, unknown paths, wrong method, /v3beta), sent
with python's http.client to a fresh etcd and a fresh dolmen. Bodies are compared as parsed JSON
after normalize(): the cluster, member and lease ids each server chose, and the fields that
depend on timing or on the storage engine (TTL counting down, db sizes, raft indexes), are
replaced by placeholders; revisions, raft_term, counts, field names, codes and messages are
compared as they are. Where etcd's message comes from Go's JSON decoder (malformed bodies), the
status, the error's shape and code are compared, not the decoder's wording.
"""

import base64
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import IntegrationTestCase  # noqa: E402
import tls_certs  # noqa: E402

HTTP_TIMEOUT_S = 10.0
WATCH_WAIT_S = 10.0


def b64(text):
    return base64.b64encode(text.encode()).decode()


def connect(server, timeout=HTTP_TIMEOUT_S):
    """A connection to the server's client URL: over TLS when the server's client_scheme is
    https, verified with the ssl.SSLContext the test put in server.ssl_context."""
    if server.client_scheme == "https":
        return http.client.HTTPSConnection(harness.LOOPBACK, server.client_port, timeout=timeout,
                                           context=server.ssl_context)
    return http.client.HTTPConnection(harness.LOOPBACK, server.client_port, timeout=timeout)


def post(server, path, body=None, headers=None, method="POST"):
    """One request -> (status, lower-case headers, body text)."""
    conn = connect(server)
    try:
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


class Ids:
    """The ids one server chose, to replace by placeholders."""

    def __init__(self):
        self.names = {}

    def name(self, value, kind):
        key = (kind, value)
        if key not in self.names:
            self.names[key] = "<%s%d>" % (kind, sum(1 for k in self.names if k[0] == kind))
        return self.names[key]


ID_FIELDS = {"cluster_id": "cluster", "member_id": "member", "leader": "member"}
ENGINE_FIELDS = ("dbSize", "dbSizeInUse", "raftIndex", "raftAppliedIndex", "version", "hash")


def normalize(value, ids, parent=None):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ID_FIELDS and isinstance(v, str):
                out[k] = ids.name(v, ID_FIELDS[k])
            elif k == "ID" and isinstance(v, str):
                out[k] = ids.name(v, "member" if parent == "members" else "lease")
            elif k == "lease" and isinstance(v, str):
                out[k] = ids.name(v, "lease")
            elif k == "TTL" and parent == "timetolive":
                out[k] = "<ttl %s>" % ("expired" if v == "-1" else "counting")
            elif k in ENGINE_FIELDS:
                out[k] = "<%s>" % k
            elif k in ("peerURLs", "clientURLs"):
                out[k] = ["<url>" for _ in v]
            else:
                out[k] = normalize(v, ids, k)
        return out
    if isinstance(value, list):
        return [normalize(v, ids, parent) for v in value]
    return value


class GatewayTest(IntegrationTestCase):

    def start_pair(self):
        etcd, dolmen = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        self.ids = {id(etcd): Ids(), id(dolmen): Ids()}
        return etcd, dolmen

    def call(self, server, path, body=None, **kw):
        status, headers, text = post(server, path, body, **kw)
        is_json = headers.get("content-type") == "application/json" and text
        parsed = json.loads(text) if is_json else text
        return status, normalize(parsed, self.ids[id(server)], path.rsplit("/", 1)[-1])

    def same(self, etcd, dolmen, path, body=None, **kw):
        """Sends the request to both and asserts the same status and normalized answer."""
        want = self.call(etcd, path, body, **kw)
        got = self.call(dolmen, path, body, **kw)
        self.assertEqual(got, want, "%s %s" % (path, body))
        return got

    def test_kv_transcript_as_etcd(self):
        etcd, dolmen = self.start_pair()
        foo, bar = b64("foo"), b64("bar")
        steps = [
            ("/v3/kv/put", {"key": foo, "value": bar}),
            ("/v3/kv/put", {"key": b64("foo2"), "value": b64("x"), "prev_kv": True}),
            ("/v3/kv/range", {"key": foo}),
            ("/v3/kv/range", {"key": foo, "range_end": b64("fop")}),
            ("/v3/kv/range", {"key": foo, "range_end": b64("fop"), "count_only": True}),
            ("/v3/kv/range", {"key": foo, "range_end": b64("fop"), "limit": 1, "keys_only": True}),
            ("/v3/kv/range", {"key": b64("nothing")}),
            ("/v3/kv/put", {"key": foo, "value": b64("bar2"), "prev_kv": True}),
            ("/v3/kv/txn", {"compare": [{"key": foo, "result": "EQUAL", "target": "VALUE",
                                         "value": b64("bar2")}],
                            "success": [{"request_put": {"key": foo, "value": b64("t")}}],
                            "failure": [{"request_range": {"key": foo}}]}),
            ("/v3/kv/txn", {"compare": [{"key": foo, "result": "EQUAL", "target": "CREATE",
                                         "create_revision": "0"}],
                            "success": [{"request_put": {"key": foo, "value": bar}}],
                            "failure": [{"request_range": {"key": foo}},
                                        {"request_delete_range": {"key": b64("foo2"),
                                                                  "prev_kv": True}}]}),
            ("/v3/kv/deleterange", {"key": foo, "prev_kv": True}),
            ("/v3/kv/compaction", {"revision": "3"}),
            ("/v3/kv/range", {"key": foo, "revision": "2"}),
            ("/v3/kv/compaction", {"revision": "100"}),
            ("/v3/kv/put", {"value": bar}),
            ("/v3beta/kv/range", {"key": foo, "range_end": "AA=="}),
        ]
        for path, body in steps:
            self.same(etcd, dolmen, path, body)

    def test_watch_streams_events_as_etcd(self):
        etcd, dolmen = self.start_pair()
        foo = b64("foo")
        streams = []
        for s in (etcd, dolmen):
            conn = http.client.HTTPConnection(harness.LOOPBACK, s.client_port,
                                              timeout=WATCH_WAIT_S)
            conn.request("POST", "/v3/watch", body=json.dumps(
                {"create_request": {"key": foo, "prev_kv": True}}))
            r = conn.getresponse()
            self.assertEqual(r.status, 200, s.label)
            self.assertEqual(r.getheader("Content-Type"), "application/json", s.label)
            self.assertEqual(r.getheader("Transfer-Encoding"), "chunked", s.label)
            streams.append((s, conn, r))
        try:
            lines = {id(s): [json.loads(r.readline())] for s, _, r in streams}  # created
            for s in (etcd, dolmen):
                for body in ({"key": foo, "value": b64("1")}, {"key": foo, "value": b64("2")}):
                    self.assertEqual(post(s, "/v3/kv/put", json.dumps(body))[0], 200)
                self.assertEqual(post(s, "/v3/kv/deleterange", json.dumps({"key": foo}))[0], 200)
            for s, _, r in streams:
                # Events may come one response each or together: read until all 3 arrived.
                deadline = time.monotonic() + WATCH_WAIT_S
                while sum(len(x["result"].get("events", [])) for x in lines[id(s)]) < 3:
                    self.assertLess(time.monotonic(), deadline, s.label + ": events missing")
                    lines[id(s)].append(json.loads(r.readline()))
            got = [normalize(x, self.ids[id(dolmen)]) for x in lines[id(dolmen)]]
            want = [normalize(x, self.ids[id(etcd)]) for x in lines[id(etcd)]]
            self.assertEqual(got, want)
            self.assertEqual(want[0]["result"]["created"], True)
        finally:
            for _, conn, _ in streams:
                conn.close()
        # The stream ended with the client: the member still answers (its thread is free).
        self.assertEqual(post(dolmen, "/v3/kv/range", json.dumps({"key": foo}))[0], 200)

    def test_watch_of_several_requests_and_history(self):
        etcd, dolmen = self.start_pair()
        for s in (etcd, dolmen):
            post(s, "/v3/kv/put", json.dumps({"key": b64("a"), "value": b64("1")}))
        body = (json.dumps({"create_request": {"key": b64("a"), "start_revision": "1"}}) +
                json.dumps({"create_request": {"key": b64("b")}}))
        results = []
        for s in (etcd, dolmen):
            conn = http.client.HTTPConnection(harness.LOOPBACK, s.client_port,
                                              timeout=WATCH_WAIT_S)
            try:
                conn.request("POST", "/v3/watch", body=body)
                r = conn.getresponse()
                got = [normalize(json.loads(r.readline()), self.ids[id(s)]) for _ in range(3)]
            finally:
                conn.close()
            # Per watcher in order; how the two watchers' responses interleave on the stream is
            # the watch hub's (etcd sends both "created" first, dolmen the first one's history
            # right after its "created"), not the gateway's.
            results.append(sorted(got, key=lambda x: x["result"].get("watch_id", "0")))
        self.assertEqual(results[1], results[0])
        self.assertEqual(len(results[0][1]["result"]["events"]), 1)  # watch 0 from rev 1

    def test_lease_transcript_as_etcd(self):
        etcd, dolmen = self.start_pair()
        lease = {}
        for s in (etcd, dolmen):
            status, _, text = post(s, "/v3/lease/grant", json.dumps({"TTL": "30"}))
            self.assertEqual(status, 200)
            lease[id(s)] = json.loads(text)["ID"]
            self.ids[id(s)].name(lease[id(s)], "lease")

        def both(path, make_body):
            want = self.call(etcd, path, json.dumps(make_body(lease[id(etcd)])))
            got = self.call(dolmen, path, json.dumps(make_body(lease[id(dolmen)])))
            self.assertEqual(got, want, path)
            return got

        both("/v3/kv/put", lambda l: {"key": b64("k"), "value": b64("v"), "lease": l})
        both("/v3/lease/keepalive", lambda l: {"ID": l})
        ttl = both("/v3/lease/timetolive", lambda l: {"ID": l, "keys": True})
        self.assertEqual(ttl[1]["grantedTTL"], "30")
        both("/v3/kv/lease/timetolive", lambda l: {"ID": l})
        both("/v3/lease/leases", lambda l: {})
        # The lock's key is "<name>/<lease id in hex>": compared with each side's own lease.
        for s in (etcd, dolmen):
            status, _, text = post(s, "/v3/lock/lock",
                                   json.dumps({"name": b64("mylock"), "lease": lease[id(s)]}))
            self.assertEqual(status, 200, s.label)
            self.assertEqual(base64.b64decode(json.loads(text)["key"]).decode(),
                             "mylock/%x" % int(lease[id(s)]), s.label)
        both("/v3/lease/revoke", lambda l: {"ID": l})
        both("/v3/lease/revoke", lambda l: {"ID": l})  # 404, "requested lease not found"
        gone = both("/v3/lease/timetolive", lambda l: {"ID": l})
        self.assertEqual(gone[1]["TTL"], "<ttl expired>")
        both("/v3/lease/keepalive", lambda l: {"ID": l})  # TTL 0: left out
        # Patroni (tests/patroni) takes this 404's exact message for "grant a new lease"
        status, answer = both("/v3/kv/put",
                              lambda l: {"key": b64("k2"), "value": b64("v"), "lease": l})
        self.assertEqual((status, answer["error"]), (404, "etcdserver: requested lease not found"))
        both("/v3/kv/range", lambda l: {"key": b64("k")})  # the lease took its key

    def test_cluster_and_maintenance_as_etcd(self):
        etcd, dolmen = self.start_pair()
        self.same(etcd, dolmen, "/v3/cluster/member/list", {})
        status = self.same(etcd, dolmen, "/v3/maintenance/status", {})
        self.assertEqual(status[0], 200)
        self.same(etcd, dolmen, "/v3/maintenance/hash", {})

    def test_errors_as_etcd(self):
        etcd, dolmen = self.start_pair()
        # The same answers, message included.
        for path, body, kw in [
                ("/v3/kv/range", {"unknown_field": 1}, {}),   # ignored: then "key is not provided"
                ("/v3/kv/nope", {}, {}),                      # 404 "Not Found" (text)
                ("/v3/kv/range", None, {"method": "GET"}),    # 405
                ("/v3/kv/range/", {}, {}),                    # 404
                ("/v3/lease/revoke", {"ID": "1"}, {}),        # 404 lease not found
                ("/v3/lease/keepalive", "", {}),              # a stream with no request
                ("/v3/election/leader", {"name": b64("none")}, {}),  # 500 election: no leader
                ("/v3/kv/range", {}, {"method": "OPTIONS"}),  # CORS preflight
                ("/v3alpha/nope", {}, {})]:                   # (see below for /v3alpha/kv)
            if path.startswith("/v3alpha"):
                continue
            self.same(etcd, dolmen, path, body, **kw)
        # Bodies the JSON decoder refuses: same status, shape and code; the decoder's text is
        # Go's on one side and protobuf's on the other.
        for path, body, status, code in [("/v3/kv/range", "{", 400, 3),
                                          ("/v3/kv/range", '{"key":5}', 400, 3),
                                          ("/v3/kv/range", '{"limit":"abc"}', 400, 3),
                                          ("/v3/watch", "{", 500, 2),
                                          ("/v3/lease/keepalive", "[", 500, 2)]:
            for s in (etcd, dolmen):
                got_status, headers, text = post(s, path, body)
                what = "%s %s %r" % (s.label, path, body)
                self.assertEqual(got_status, status, what)
                self.assertEqual(headers.get("content-type"), "application/json", what)
                parsed = json.loads(text)
                self.assertEqual(sorted(parsed), ["code", "error", "message"], what)
                self.assertEqual(parsed["code"], code, what)
                self.assertEqual(parsed["error"], parsed["message"], what)
                self.assertTrue(parsed["message"], what)
        # CORS headers on every answer, as etcd's default --cors '*'.
        for s in (etcd, dolmen):
            _, headers, _ = post(s, "/v3/kv/range", "{}")
            self.assertEqual(headers.get("access-control-allow-origin"), "*", s.label)
            self.assertEqual(headers.get("access-control-allow-headers"),
                             "accept, content-type, authorization", s.label)

    def test_gateway_off(self):
        """--enable-grpc-gateway=false: the /v3/ paths are not served (Go's 404), the rest is."""
        flags = ["--enable-grpc-gateway=false"]
        etcd, dolmen = self.start_servers(harness.etcd_server(extra_flags=flags),
                                          harness.dolmen_server(extra_flags=flags))
        for path in ("/v3/kv/range", "/v3beta/kv/range"):
            want = post(etcd, path, "{}")
            got = post(dolmen, path, "{}")
            self.assertEqual((got[0], got[2]), (want[0], want[2]), path)
            self.assertEqual((got[0], got[2]), (404, "404 page not found\n"), path)
        self.assertEqual(post(dolmen, "/health", method="GET")[0], 200)

    def test_server_streams_snapshot_and_observe(self):
        """Server-streaming methods (one request, many results): the snapshot arrives whole
        (its chunks add up to what the first announced, then the SHA-256), and an election
        observer sees the leader, as etcd's gateway streams them."""
        etcd, dolmen = self.start_pair()
        for s in (etcd, dolmen):
            for i in range(20):
                post(s, "/v3/kv/put", json.dumps({"key": b64("k%d" % i), "value": b64("v" * 500)}))
            conn = http.client.HTTPConnection(harness.LOOPBACK, s.client_port,
                                              timeout=WATCH_WAIT_S)
            try:
                conn.request("POST", "/v3/maintenance/snapshot", body="{}")
                r = conn.getresponse()
                self.assertEqual(r.status, 200, s.label)
                results = [json.loads(line)["result"] for line in r.read().splitlines() if line]
            finally:
                conn.close()
            blobs = [base64.b64decode(x.get("blob", "")) for x in results]
            remaining = [int(x.get("remaining_bytes", "0")) for x in results]
            self.assertGreaterEqual(len(results), 2, s.label)
            self.assertEqual(remaining[-1], 0, s.label)
            self.assertEqual(len(blobs[-1]), 32, s.label)  # the image's SHA-256
            self.assertEqual(sum(len(b) for b in blobs[:-1]), len(blobs[0]) + remaining[0],
                             s.label)
        observed = []
        for s in (etcd, dolmen):
            status, _, _ = post(s, "/v3/election/campaign",
                                json.dumps({"name": b64("el"), "value": b64("v1")}))
            self.assertEqual(status, 200, s.label)
            conn = http.client.HTTPConnection(harness.LOOPBACK, s.client_port,
                                              timeout=WATCH_WAIT_S)
            try:
                conn.request("POST", "/v3/election/observe", body=json.dumps({"name": b64("el")}))
                r = conn.getresponse()
                self.assertEqual(r.status, 200, s.label)
                kv = json.loads(r.readline())["result"]["kv"]
                observed.append((base64.b64decode(kv["value"]), kv["version"]))
            finally:
                conn.close()
        self.assertEqual(observed[1], observed[0])
        self.assertEqual(observed[0], (b"v1", "1"))

    def test_stop_with_gateway_calls_waiting(self):
        """A member stopping with a watch stream and a contended Lock open through the gateway
        ends them and exits by its SIGTERM in bounded time (the connection threads are joined
        only once the calls are cancelled)."""
        dolmen, = self.start_servers(harness.dolmen_server())
        status, _, text = post(dolmen, "/v3/lease/grant", json.dumps({"TTL": "60"}))
        lease = json.loads(text)["ID"]
        self.assertEqual(post(dolmen, "/v3/lock/lock",
                              json.dumps({"name": b64("l"), "lease": lease}))[0], 200)
        conns = []
        for path, body in (("/v3/watch", {"create_request": {"key": b64("a")}}),
                           ("/v3/lock/lock", {"name": b64("l")})):  # waits behind the holder
            conn = http.client.HTTPConnection(harness.LOOPBACK, dolmen.client_port,
                                              timeout=WATCH_WAIT_S)
            conn.request("POST", path, body=json.dumps(body))
            conns.append(conn)
        try:
            self.assertEqual(conns[0].getresponse().status, 200)  # the watch is open
            started = time.monotonic()
            rc = dolmen.stop()
            elapsed = time.monotonic() - started
        finally:
            for c in conns:
                c.close()
        self.assertEqual(rc, -15, "dolmen should exit by SIGTERM, not be killed")
        # Under the 5 s grace gRPC gives calls in flight at a stop: the gateway cancelled its own
        # calls first, so nothing waited for the grace to run out.
        self.assertLess(elapsed, 5.0, "stop took %.1fs" % elapsed)
        print("stop with gateway calls open took %.2fs" % elapsed)

    def test_gateway_over_tls_as_etcd(self):
        """The gateway on an https client URL (etcd serves it behind the same TLS listener as
        gRPC): put, range, /health, then auth enabled through the gateway, a token from
        /v3/auth/authenticate carried in the Authorization header, and /health still answering
        without one (etcd 3.4's /health reads through a v2 QGET that auth does not check; etcd
        3.5.11+ reads as root). No --client-cert-auth: etcd's gateway dials its own gRPC port
        with the member's certificate, whose CN etcd would then take as the user (dolmen's
        gateway calls in-process and does not use CNs for auth, docs/auth.md)."""
        tmp = tempfile.mkdtemp(prefix="dolmen-it-gateway-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ca = tls_certs.TestCa(os.path.join(tmp, "ca"), "gateway-test-ca")
        cert, key = ca.issue("server", "server", ips=[harness.LOOPBACK], dns=["localhost"])
        servers = []
        for make in (harness.etcd_server, harness.dolmen_server):
            server = make(extra_flags=["--cert-file", cert, "--key-file", key])
            server.client_scheme = "https"
            server.etcdctl_flags = ["--cacert", ca.cert]
            server.ssl_context = ssl.create_default_context(cafile=ca.cert)
            servers.append(server)
        etcd, dolmen = self.start_servers(*servers)
        self.ids = {id(etcd): Ids(), id(dolmen): Ids()}
        foo = b64("foo")
        self.same(etcd, dolmen, "/v3/kv/put", {"key": foo, "value": b64("bar")})
        got = self.same(etcd, dolmen, "/v3/kv/range", {"key": foo})
        self.assertEqual((got[0], got[1]["kvs"][0]["value"]), (200, b64("bar")))
        health = [post(s, "/health", method="GET") for s in servers]
        self.assertEqual(health[0][0::2], (200, '{"health":"true"}'))
        self.assertEqual(health[1][0::2], (200, '{"health":"true","reason":""}'))

        for path, body in (("/v3/auth/user/add", {"name": "root", "password": "rootpw"}),
                           ("/v3/auth/role/add", {"name": "root"}),
                           ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                           ("/v3/auth/enable", {})):
            self.assertEqual(self.same(etcd, dolmen, path, body)[0], 200, path)
        tokens, answers = [], []
        for s in servers:
            status, _, text = post(s, "/v3/auth/authenticate",
                                   {"name": "root", "password": "rootpw"})
            self.assertEqual(status, 200, "%s: %s" % (s.label, text))
            answer = json.loads(text)
            tokens.append(answer.pop("token"))
            answers.append(normalize(answer, self.ids[id(s)]))
        self.assertEqual(answers[1], answers[0])
        self.assertTrue(all(tokens), tokens)

        def with_token(path, body, token_of=None):
            """Each server's answer, with that server's token when token_of is set."""
            answers = []
            for s, token in zip(servers, tokens):
                headers = {"Authorization": token} if token_of == "own" else {}
                answers.append(self.call(s, path, body, headers=headers))
            self.assertEqual(answers[1], answers[0], "%s %s (%s)" % (path, body, token_of))
            return answers[0]
        self.assertEqual(with_token("/v3/kv/put", {"key": foo, "value": b64("baz")}, "own")[0],
                         200)
        self.assertEqual(with_token("/v3/kv/range", {"key": foo}, "own")[1]["kvs"][0]["value"],
                         b64("baz"))
        status, answer = with_token("/v3/kv/range", {"key": foo})
        self.assertEqual((status, answer.get("message")), (400, "etcdserver: user name is empty"))
        health = [post(s, "/health", method="GET") for s in servers]
        self.assertEqual(health[0][0::2], (200, '{"health":"true"}'))
        self.assertEqual(health[1][0::2], (200, '{"health":"true","reason":""}'))

    def test_dolmen_only_v3alpha_and_auth(self):
        """Not compared: etcd 3.4.23 answers /v3alpha with Go's 404 (3.3 served it). The Auth
        paths answer (tests/integration/auth_test.py compares them with etcd's): here, with auth
        disabled, etcd's FAILED_PRECONDITION (code 9)."""
        dolmen, = self.start_servers(harness.dolmen_server())
        self.ids = {id(dolmen): Ids()}
        put = self.call(dolmen, "/v3alpha/kv/put", {"key": b64("a"), "value": b64("1")})
        self.assertEqual(put[0], 200)
        got = self.call(dolmen, "/v3alpha/kv/range", {"key": b64("a")})
        self.assertEqual(got[1]["kvs"][0]["value"], b64("1"))
        status, _, text = post(dolmen, "/v3/auth/authenticate",
                               json.dumps({"name": "root", "password": "x"}),
                               headers={"Authorization": "token"})
        answer = json.loads(text)
        self.assertEqual((answer["code"], answer["message"]),
                         (9, "etcdserver: authentication is not enabled"), text)
        self.assertNotEqual(status, 200, text)


if __name__ == "__main__":
    harness.main()
