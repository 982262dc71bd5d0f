#!/usr/bin/env python3
"""The HTTP endpoints of a member (docs/http.md) against etcd 3.4 on the same requests.

Dolmen reports etcd API 3.5.13 and answers as etcd 3.5.13 does; the reference here is etcd
3.4.23 (the Debian package). Where the two etcd versions differ the test asserts exactly that
difference, with its source:
  - /health's body gained `"reason"` in 3.5 (etcdhttp/health.go): dolmen's JSON must equal etcd
    3.4's plus `"reason"`;
  - /version reports 3.5.13/3.5.0 instead of 3.4.23/3.4.0;
  - /livez and /readyz do not exist in 3.4.23 (404 there); dolmen's answers are asserted against
    3.5.13's handler (etcdhttp/health.go: `ok\\n`, `[+]<check> ok\\n` lines with ?verbose, 503
    with `[-]<check> failed: <err>` lines).
Both servers also get --listen-metrics-urls, which serves /metrics and /health (not /version).

Run: /usr/bin/python3 http_test.py --dolmen ../../build/cmd/dolmen/dolmen [unittest selector]
"""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import IntegrationTestCase  # noqa: E402
import tls_certs  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
HTTP_TIMEOUT_S = 10.0
POLL_DEADLINE_S = 10.0

# Metrics that etcd's alert rules and Grafana dashboard (contrib/mixin) read, and the process_*
# metrics Prometheus's process collector writes: each must be exposed by dolmen with etcd's
# type (and, for histograms, etcd's buckets).
MIXIN_METRICS = [
    "etcd_server_has_leader", "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
    "etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds",
    "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_server_quota_backend_bytes", "etcd_network_client_grpc_sent_bytes_total",
    "etcd_network_client_grpc_received_bytes_total", "grpc_server_started_total",
    "grpc_server_handled_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
    "etcd_server_is_leader", "etcd_server_id", "etcd_server_version", "etcd_cluster_version",
    "etcd_server_health_success", "etcd_server_health_failures",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
    "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes",
]


def request(port, method, path, body=None, headers=None, tls=None):
    """One HTTP/1.1 request on 127.0.0.1:port -> (status, headers dict (lower-case), body);
    over https with the ssl.SSLContext `tls`."""
    if tls is None:
        conn = http.client.HTTPConnection(harness.LOOPBACK, port, timeout=HTTP_TIMEOUT_S)
    else:
        conn = http.client.HTTPSConnection(harness.LOOPBACK, port, timeout=HTTP_TIMEOUT_S,
                                           context=tls)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def parse_metrics(text):
    """{name: type} from # TYPE lines, and {series: value} from samples."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return types, samples


def buckets(samples, name):
    return sorted(float(m.group(1)) for s in samples
                  for m in [re.match(r'%s_bucket\{.*le="([^"]+)"\}$' % name, s)] if m)


class HttpEndpointsTest(IntegrationTestCase):

    def start_with_metrics_urls(self, extra_flags=()):
        """etcd and dolmen, each with a --listen-metrics-urls port; returns (servers, ports)."""
        ports = [harness.pick_free_port(), harness.pick_free_port()]
        servers = self.start_servers(
            harness.etcd_server(extra_flags=["--listen-metrics-urls",
                                             "http://127.0.0.1:%d" % ports[0]] + list(extra_flags)),
            harness.dolmen_server(extra_flags=["--listen-metrics-urls",
                                               "http://127.0.0.1:%d" % ports[1]] +
                                  list(extra_flags)))
        return servers, ports

    def test_health_version_and_errors_as_etcd(self):
        (etcd, dolmen), (etcd_mport, dolmen_mport) = self.start_with_metrics_urls()
        cases = [("GET", "/health"), ("GET", "/health?serializable=true"),
                 ("GET", "/health?exclude=NOSPACE&exclude=CORRUPT"), ("POST", "/health"),
                 ("GET", "/version"), ("PUT", "/version"), ("GET", "/no/such/path")]
        for port_pair in ((etcd.client_port, dolmen.client_port), (etcd_mport, dolmen_mport)):
            for method, path in cases:
                want = request(port_pair[0], method, path)
                got = request(port_pair[1], method, path)
                what = "%s %s on port %d/%d" % (method, path, port_pair[0], port_pair[1])
                self.assertEqual(got[0], want[0], what)
                for h in ("content-type", "allow", "x-content-type-options"):
                    self.assertEqual(got[1].get(h), want[1].get(h), what + ": header " + h)
                if want[0] == 200 and path.startswith("/health"):
                    self.assertEqual(json.loads(got[2]), dict(json.loads(want[2]), reason=""),
                                     what)
                    self.assertEqual(json.loads(want[2]), {"health": "true"}, what)
                elif want[0] == 200 and path == "/version":
                    self.assertEqual(json.loads(want[2]),
                                     {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"})
                    self.assertEqual(got[2], '{"etcdserver":"3.5.13","etcdcluster":"3.5.0"}')
                else:
                    self.assertEqual(got[2], want[2], what)
        # The metrics listener serves /metrics too, and no /version (both 404 above).
        for port in (etcd_mport, dolmen_mport):
            status, headers, body = request(port, "GET", "/metrics")
            self.assertEqual(status, 200)
            self.assertIn("etcd_server_has_leader 1", body)

    def test_https_metrics_url_as_etcd(self):
        """An https --listen-metrics-urls URL is served with the client TLS flags, as etcd 3.4's
        embed/etcd.go serveMetrics does: the --cert-file certificate, client certificates
        required (--client-cert-auth, --trusted-ca-file), and etcd's SAN check of a client
        certificate against the address it connects from (pkg/transport/listener.go wrapTLS)."""
        tmp = tempfile.mkdtemp(prefix="dolmen-it-metrics-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ca = tls_certs.TestCa(os.path.join(tmp, "ca"), "metrics-test-ca")
        server_cert = ca.issue("server", "server", ips=[harness.LOOPBACK], dns=["localhost"])
        clients = {"here": ca.issue("here", "prometheus", ips=[harness.LOOPBACK]),
                   "no SANs": ca.issue("nosans", "prometheus"),
                   "elsewhere": ca.issue("elsewhere", "prometheus", ips=["192.0.2.7"])}

        def context(cert):
            c = ssl.create_default_context(cafile=ca.cert)
            if cert is not None:
                c.load_cert_chain(cert[0], cert[1])
            return c
        tls_flags = ["--cert-file", server_cert[0], "--key-file", server_cert[1],
                     "--trusted-ca-file", ca.cert, "--client-cert-auth"]
        ports = [harness.pick_free_port(), harness.pick_free_port()]
        etcd, dolmen = self.start_servers(*[
            make(extra_flags=tls_flags + ["--listen-metrics-urls",
                                          "https://%s:%d" % (harness.LOOPBACK, port)])
            for make, port in ((harness.etcd_server, ports[0]),
                               (harness.dolmen_server, ports[1]))])
        good = context(clients["here"])
        for method, path in (("GET", "/metrics"), ("GET", "/health"), ("POST", "/health"),
                             ("GET", "/version"), ("GET", "/livez")):
            want, got = (request(port, method, path, tls=good) for port in ports)
            what = "%s %s over https" % (method, path)
            if path == "/livez":  # etcd 3.4.23 has none (404); dolmen answers as etcd 3.5
                self.assertEqual((want[0], got[0], got[2]), (404, 200, "ok\n"))
                continue
            self.assertEqual(got[0], want[0], what)
            for h in ("content-type", "allow", "x-content-type-options"):
                self.assertEqual(got[1].get(h), want[1].get(h), what + ": header " + h)
            if path == "/metrics":
                for body in (want[2], got[2]):
                    self.assertIn("\netcd_server_has_leader 1\n", body)
            elif (method, path) == ("GET", "/health"):
                self.assertEqual(json.loads(want[2]), {"health": "true"})
                self.assertEqual(json.loads(got[2]), {"health": "true", "reason": ""})
            else:
                self.assertEqual(got[2], want[2], what)
        # A client certificate without SANs is not checked against the address.
        for port in ports:
            self.assertEqual(request(port, "GET", "/health", tls=context(clients["no SANs"]))[0],
                             200)

        def refused(port, tls):
            try:
                status = request(port, "GET", "/metrics", tls=tls)[0]
            except (ssl.SSLError, ConnectionError, http.client.HTTPException) as e:
                return type(e).__name__
            return "answered %d" % status
        # Refused by both: no client certificate, and one whose IP SANs do not name 127.0.0.1.
        for why, tls in (("no certificate", context(None)),
                         ("SANs elsewhere", context(clients["elsewhere"]))):
            outcome = [refused(port, tls) for port in ports]
            self.assertFalse(outcome[0].startswith("answered"), "etcd: %s: %s" % (why, outcome))
            self.assertFalse(outcome[1].startswith("answered"), "dolmen: %s: %s" % (why, outcome))
        if dolmen.kind == "dolmen":
            harness.wait_for(lambda: "certificate is valid for 192.0.2.7, not 127.0.0.1"
                             in dolmen.log_text(), "dolmen to log the SAN refusal", timeout=5)
        # Plaintext HTTP on the https URL gets no HTTP answer from either.
        for port in ports:
            with socket.create_connection((harness.LOOPBACK, port), timeout=HTTP_TIMEOUT_S) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                try:
                    while len(answer) < 4096:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        answer += chunk
                except OSError:
                    pass
            self.assertFalse(answer.startswith(b"HTTP/"), answer)

    def test_https_metrics_url_with_auto_tls_as_etcd(self):
        """--auto-tls also covers an https metrics URL when every client URL is http: etcd
        makes its self-signed client certificate all the same (embed/config.go
        ClientSelfCert), and serves the metrics URL with it."""
        ports = [harness.pick_free_port(), harness.pick_free_port()]
        servers = self.start_servers(*[
            make(extra_flags=["--auto-tls", "--listen-metrics-urls",
                              "https://%s:%d" % (harness.LOOPBACK, port)])
            for make, port in ((harness.etcd_server, ports[0]),
                               (harness.dolmen_server, ports[1]))])
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # nobody signed a self-signed certificate
        for server, port in zip(servers, ports):
            status, _, body = request(port, "GET", "/metrics", tls=unverified)
            self.assertEqual(status, 200, server.label)
            self.assertIn("\netcd_server_has_leader 1\n", body, server.label)
            self.assertTrue(os.path.exists(os.path.join(server.data_dir, "fixtures", "client",
                                                        "cert.pem")), server.label)

    def test_cors_and_host_whitelist_as_etcd(self):
        ui = "http://ui.example:8080"
        etcd, dolmen = self.start_servers(
            harness.etcd_server(extra_flags=["--cors", ui, "--host-whitelist",
                                             "127.0.0.1,localhost"]),
            harness.dolmen_server(extra_flags=["--cors", ui, "--host-whitelist",
                                               "127.0.0.1,localhost"]))
        cors = ("access-control-allow-origin", "access-control-allow-methods",
                "access-control-allow-headers")
        cases = [("GET", "/version", {"Origin": ui}),
                 ("GET", "/version", {"Origin": "http://other.example:8080"}),
                 ("GET", "/health", {}),
                 ("OPTIONS", "/v3/kv/range", {"Origin": ui}),
                 ("GET", "/health", {"Host": "rebound.example:%d" % dolmen.client_port}),
                 ("POST", "/v3/kv/range", {"Host": "rebound.example", "Origin": ui})]
        for method, path, headers in cases:
            with self.subTest(method=method, path=path, headers=headers):
                got = []
                for s in (etcd, dolmen):
                    status, h, body = request(s.client_port, method, path,
                                              body="{}" if method == "POST" else None,
                                              headers=headers)
                    got.append((status, {k: h.get(k) for k in cors},
                                body if status == 421 else None))
                self.assertEqual(got[1], got[0])
        # The refused host's answer is etcd's 421, with no CORS headers.
        self.assertEqual(got[1][0], 421)
        self.assertIn('--host-whitelist "rebound.example"', got[1][2])
        # An origin must be scheme://host:port, as etcd checks its flag.
        for binary in (harness.CONFIG.etcd, harness.CONFIG.dolmen):
            with self.subTest(binary=binary):
                r = subprocess.run([binary, "--cors", "http://ui.example"], capture_output=True,
                                   text=True, timeout=HTTP_TIMEOUT_S)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn('invalid value "http://ui.example" for flag -cors: URL address '
                              'does not have the form "host:port": http://ui.example', r.stderr)

    def test_livez_readyz_as_etcd_3_5(self):
        (etcd, dolmen), (_, dolmen_mport) = self.start_with_metrics_urls()
        # etcd 3.4.23 has no /livez or /readyz: the same 404 as any unknown path.
        self.assertEqual(request(etcd.client_port, "GET", "/readyz")[0], 404)
        for port in (dolmen.client_port, dolmen_mport):
            ok = lambda path: request(port, "GET", path)  # noqa: E731
            self.assertEqual(ok("/livez")[0::2], (200, "ok\n"))
            self.assertEqual(ok("/livez?verbose")[0::2], (200, "[+]serializable_read ok\nok\n"))
            self.assertEqual(ok("/readyz")[0::2], (200, "ok\n"))
            status, headers, body = ok("/readyz?verbose")
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("content-type"), "text/plain; charset=utf-8")
            self.assertEqual(sorted(body.splitlines()),
                             sorted(["[+]data_corruption ok", "[+]serializable_read ok",
                                     "[+]linearizable_read ok", "ok"]))
            self.assertEqual(ok("/readyz?verbose&exclude=linearizable_read,data_corruption")[0::2],
                             (200, "[+]serializable_read ok\nok\n"))
            self.assertEqual(ok("/readyz?exclude=no_such_check")[0::2], (200, "ok\n"))
            self.assertEqual(ok("/readyz/linearizable_read?verbose")[0::2],
                             (200, "[+]linearizable_read ok\nok\n"))
            self.assertEqual(ok("/readyz/nope")[0], 404)
            status, headers, body = request(port, "POST", "/livez")
            self.assertEqual((status, headers.get("allow"), body), (405, "GET",
                                                                    "Method Not Allowed\n"))

    def test_metrics_names_types_buckets_and_promtool(self):
        (etcd, dolmen), _ = self.start_with_metrics_urls()
        for s in (etcd, dolmen):
            rc, out, err = s.etcdctl("put", "k", "v")
            self.assertEqual(rc, 0, err)
        scraped = {}
        for s in (etcd, dolmen):
            status, headers, body = request(s.client_port, "GET", "/metrics")
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("content-type"),
                             "text/plain; version=0.0.4; charset=utf-8", s.label)
            scraped[s.label] = body
        etcd_types, etcd_samples = parse_metrics(scraped["etcd"])
        types, samples = parse_metrics(scraped["dolmen"])
        for name in MIXIN_METRICS:
            self.assertIn(name, etcd_types, "the reference lacks " + name)
            self.assertEqual(types.get(name), etcd_types[name], name)
        for name in ("etcd_disk_wal_fsync_duration_seconds",
                     "etcd_disk_backend_commit_duration_seconds"):
            self.assertEqual(buckets(samples, name), buckets(etcd_samples, name), name)
        # The series etcd pre-registers for every gRPC method exist, with etcd's labels.
        # Labels are written sorted by name, as Prometheus's Go client does.
        grpc_series = {s for s in etcd_samples if s.startswith("grpc_server_")}
        self.assertGreater(len(grpc_series), 300)
        missing = sorted(grpc_series - set(samples))
        self.assertFalse(missing, "%d gRPC series etcd has and dolmen lacks, of methods %s"
                         % (len(missing), sorted({re.sub(r'grpc_code="\w+",', "", m.split("{")[1])
                                                  for m in missing})))
        put_ok = ('grpc_server_handled_total{grpc_code="OK",grpc_method="Put",'
                  'grpc_service="etcdserverpb.KV",grpc_type="unary"}')
        self.assertEqual((etcd_samples[put_ok], samples[put_ok]), (1, 1))
        # promtool: dolmen's exposition parses, and its lint findings are etcd's own (etcd
        # names gauges *_total), none more.
        findings = {}
        for label, text in scraped.items():
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=30)
            self.assertNotIn("error while linting", p.stdout + p.stderr, label)
            findings[label] = set((p.stdout + p.stderr).splitlines())
        self.assertTrue(findings["etcd"], "etcd's own metrics have known lint findings")
        self.assertLessEqual(findings["dolmen"], findings["etcd"])

    def test_metric_values_move(self):
        server = self.start_servers(harness.dolmen_server())[0]

        def scrape():
            status, _, body = request(server.client_port, "GET", "/metrics")
            self.assertEqual(status, 200)
            return parse_metrics(body)[1]

        put_ok = ('grpc_server_handled_total{grpc_code="OK",grpc_method="Put",'
                  'grpc_service="etcdserverpb.KV",grpc_type="unary"}')
        range_started = ('grpc_server_started_total{grpc_method="Range",'
                         'grpc_service="etcdserverpb.KV",grpc_type="unary"}')
        before = scrape()
        self.assertEqual(before["etcd_server_has_leader"], 1)
        self.assertEqual(before["etcd_server_is_leader"], 1)
        self.assertGreaterEqual(before["etcd_server_leader_changes_seen_total"], 1)
        for i in range(5):
            rc, _, err = server.etcdctl("put", "key%d" % i, "value")
            self.assertEqual(rc, 0, err)
        rc, _, err = server.etcdctl("get", "key0")
        self.assertEqual(rc, 0, err)
        after = scrape()
        self.assertEqual(after[put_ok] - before.get(put_ok, 0), 5)
        self.assertGreaterEqual(after[range_started] - before.get(range_started, 0), 1)
        for name in ("etcd_server_proposals_committed_total",
                     "etcd_server_proposals_applied_total",
                     "etcd_disk_wal_fsync_duration_seconds_count"):
            self.assertGreaterEqual(after[name] - before[name], 5, name)
        self.assertGreater(after["etcd_network_client_grpc_received_bytes_total"],
                           before["etcd_network_client_grpc_received_bytes_total"])
        # Dolmen's own group-commit size (docs/http.md): every Raft Ready that applied entries
        # is one observation of how many; the 5 puts are 5 applied entries, in 1 to 5 Readys.
        batch = "dolmen_server_apply_batch_entries"
        self.assertEqual(buckets(after, batch), [2.0 ** i for i in range(14)] + [float("inf")])
        self.assertGreaterEqual(after[batch + "_sum"] - before[batch + "_sum"], 5)
        self.assertGreaterEqual(after[batch + "_count"] - before[batch + "_count"], 1)
        self.assertLessEqual(after[batch + "_count"] - before[batch + "_count"],
                             after[batch + "_sum"] - before[batch + "_sum"])
        self.assertEqual(after[batch + '_bucket{le="+Inf"}'], after[batch + "_count"])
        # The backend commits applied entries in batches (every 100 ms): poll for the next one.
        name = "etcd_disk_backend_commit_duration_seconds_count"
        harness.wait_for(lambda: scrape().get(name, 0) > before.get(name, 0),
                         name + " moving", POLL_DEADLINE_S)
        health_ok = scrape()["etcd_server_health_success"] if "etcd_server_health_success" in \
            after else 0
        self.assertEqual(request(server.client_port, "GET", "/health")[0], 200)
        self.assertEqual(scrape()["etcd_server_health_success"], health_ok + 1)

    def test_health_false_under_an_alarm_unless_excluded(self):
        quota = ["--quota-backend-bytes", "262144"]
        etcd, dolmen = self.start_servers(harness.etcd_server(extra_flags=quota),
                                          harness.dolmen_server(extra_flags=quota))
        value = "x" * 20000
        for s in (etcd, dolmen):
            for i in range(200):  # bounded: the quota is reached within ~15 puts
                rc, out, err = s.etcdctl("put", "big%d" % i, value)
                if rc != 0:
                    self.assertIn("database space exceeded", err, s.label)
                    break
            else:
                self.fail("%s: the quota was never reached" % s.label)
        want = [request(etcd.client_port, "GET", p) for p in ("/health", "/health?exclude=NOSPACE")]
        got = [request(dolmen.client_port, "GET", p) for p in ("/health", "/health?exclude=NOSPACE")]
        self.assertEqual(want[0][0::2], (503, '{"health":"false"}\n'))
        self.assertEqual(got[0][0::2], (503, '{"health":"false","reason":"ALARM NOSPACE"}\n'))
        self.assertEqual(got[0][1].get("content-type"), want[0][1].get("content-type"))
        self.assertEqual(want[1][0::2], (200, '{"health":"true"}'))
        self.assertEqual(got[1][0::2], (200, '{"health":"true","reason":""}'))
        # /readyz does not look at NOSPACE (only CORRUPT), so it stays ready.
        self.assertEqual(request(dolmen.client_port, "GET", "/readyz")[0::2], (200, "ok\n"))


if __name__ == "__main__":
    harness.main()
