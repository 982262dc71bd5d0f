#!/usr/bin/python3
"""etcd 3.5's --listen-client-http-urls on dolmen (docs/http.md, "HTTP-only client URLs").

Dolmen only: the reference here is etcd 3.4, which has no such flag (it refuses it as
"flag provided but not defined"), so there is nothing to compare with; the expectations are
etcd 3.5's (server/embed/etcd.go configureClientListeners, serve.go).

  - the HTTP-only URL answers /health, /metrics, /version (and whatever /v3/ answers today: 404
    until the JSON gateway is merged, the gateway's answer after) while the client URL, now
    gRPC-only, closes an HTTP/1 request unanswered;
  - gRPC (etcdctl) works on the client URL and is not served on the HTTP-only URL;
  - the same over https with --auto-tls (the certificate names the HTTP-only URL's host, and
    that URL offers only http/1.1 in ALPN);
  - bad values are refused at start-up with etcd's messages.

Every server runs on loopback ports picked by harness.pick_free_port and is stopped by its PID;
every wait polls a condition with a deadline.

Run: /usr/bin/python3 client_http_urls_test.py --dolmen PATH [unittest args]
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile

import harness
from harness import IntegrationTestCase

HTTP_TIMEOUT_S = 5.0
# A second loopback address (127.0.0.0/8 is all loopback on Linux): the HTTP-only URL's host,
# so that the auto-TLS certificate must name a host the client URL does not have.
OTHER_LOOPBACK = "127.0.0.2"


def http_get(host, port, path, tls=False, method="GET", body=None):
    """(status, body) of one HTTP/1.1 request; raises OSError or http.client's errors when the
    server closes the connection without an answer."""
    if tls:
        context = ssl._create_unverified_context()  # auto-TLS: nobody signed the certificate
        context.set_alpn_protocols(["h2", "http/1.1"])  # as curl offers
        conn = http.client.HTTPSConnection(host, port, timeout=HTTP_TIMEOUT_S, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def unanswered(host, port, path, tls=False):
    """True if an HTTP/1 request to host:port is closed without any answer."""
    try:
        status, body = http_get(host, port, path, tls=tls)
    except (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionError,
            ssl.SSLError, socket.timeout) as e:
        return True, repr(e)
    return False, "answered %d: %r" % (status, body[:200])


def http2_preface_unanswered(host, port, tls=False):
    """True if an HTTP/2 client preface and SETTINGS get no frame back before the close."""
    raw = socket.create_connection((host, port), timeout=HTTP_TIMEOUT_S)
    sock = raw
    try:
        if tls:
            context = ssl._create_unverified_context()
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(raw, server_hostname=host)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        try:
            data = sock.recv(64)
        except (ConnectionError, ssl.SSLError):
            return True, "reset"
        return data == b"", "received %r" % data
    finally:
        sock.close()


def log_lines(server, msg):
    out = []
    for line in server.log_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == msg:
            out.append(entry)
    return out


class ClientHttpUrlsTest(IntegrationTestCase):

    def start_split(self, http_url, extra=()):
        server = harness.dolmen_server(
            extra_flags=["--listen-client-http-urls", http_url] + list(extra))
        self.start_servers(server)
        return server

    def test_http_only_url_serves_http_and_the_client_url_grpc_only(self):
        http_port = harness.pick_free_port()
        server = self.start_split("http://%s:%d" % (harness.LOOPBACK, http_port))
        host = harness.LOOPBACK

        # gRPC on the client URL.
        rc, out, err = server.etcdctl("put", "split-key", "v1")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        rc, out, err = server.etcdctl("get", "split-key", "--print-value-only")
        self.assertEqual((rc, out), (0, "v1\n"), err)

        # HTTP on the HTTP-only URL.
        status, body = http_get(host, http_port, "/health")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["health"], "true")
        status, body = http_get(host, http_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("etcd_server_has_leader 1", body)
        status, body = http_get(host, http_port, "/version")
        self.assertEqual(status, 200)
        self.assertIn("etcdserver", json.loads(body))
        # The JSON gateway's path is HTTP: answered here (404 before the gateway, its answer
        # after), never on the gRPC-only URL.
        status, _ = http_get(host, http_port, "/v3/kv/range", method="POST", body=b"{}")
        self.assertGreaterEqual(status, 200)

        # No HTTP on the client URL any more.
        for path in ("/health", "/metrics", "/version"):
            closed, what = unanswered(host, server.client_port, path)
            self.assertTrue(closed, "%s on the gRPC-only client URL: %s" % (path, what))
        # No gRPC on the HTTP-only URL: etcdctl fails, and a bare HTTP/2 preface is closed.
        rc, out, err = harness.run_etcdctl("%s:%d" % (host, http_port),
                                           ["get", "split-key"], timeout=30)
        self.assertNotEqual(rc, 0, "etcdctl was served on the HTTP-only URL: %s" % out)
        closed, what = http2_preface_unanswered(host, http_port)
        self.assertTrue(closed, "HTTP/2 on the HTTP-only URL: " + what)

        # The start-up log says what each URL carries (etcd's "traffic" field).
        traffic = {(e.get("listen-client-url") or e.get("listen-client-http-url")): e["traffic"]
                   for e in log_lines(server, "serving client traffic")}
        self.assertEqual(traffic, {server.endpoint: "grpc",
                                   "http://%s:%d" % (host, http_port): "http"})

    def test_without_the_flag_the_client_url_carries_both(self):
        server = harness.dolmen_server()
        self.start_servers(server)
        status, body = http_get(harness.LOOPBACK, server.client_port, "/health")
        self.assertEqual(status, 200, body)
        rc, _, err = server.etcdctl("put", "both", "v")
        self.assertEqual(rc, 0, err)
        traffic = [e["traffic"] for e in log_lines(server, "serving client traffic")]
        self.assertEqual(traffic, ["grpc+http"])

    def test_https_with_auto_tls(self):
        http_port = harness.pick_free_port(OTHER_LOOPBACK)
        http_url = "https://%s:%d" % (OTHER_LOOPBACK, http_port)
        server = harness.dolmen_server(
            extra_flags=["--listen-client-http-urls", http_url, "--auto-tls"])
        server.client_scheme = "https"
        server.etcdctl_flags = ["--insecure-transport=false", "--insecure-skip-tls-verify"]
        self.start_servers(server)

        rc, out, err = server.etcdctl("put", "tls-split", "v")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        status, body = http_get(OTHER_LOOPBACK, http_port, "/health", tls=True)
        self.assertEqual(status, 200, body)
        status, body = http_get(OTHER_LOOPBACK, http_port, "/metrics", tls=True)
        self.assertEqual(status, 200)
        self.assertIn("etcd_server_has_leader 1", body)

        # A client offering h2 and http/1.1 (as curl does) is given http/1.1 here.
        context = ssl._create_unverified_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection((OTHER_LOOPBACK, http_port), timeout=HTTP_TIMEOUT_S) as raw:
            with context.wrap_socket(raw, server_hostname=OTHER_LOOPBACK) as tls_sock:
                self.assertEqual(tls_sock.selected_alpn_protocol(), "http/1.1")

        # No HTTP on the https client URL, no gRPC on the https HTTP-only URL.
        closed, what = unanswered(harness.LOOPBACK, server.client_port, "/health", tls=True)
        self.assertTrue(closed, "/health on the gRPC-only https URL: " + what)
        rc, out, _ = harness.run_etcdctl(
            "https://%s:%d" % (OTHER_LOOPBACK, http_port),
            ["--insecure-transport=false", "--insecure-skip-tls-verify", "get", "tls-split"],
            timeout=30)
        self.assertNotEqual(rc, 0, "etcdctl was served on the HTTP-only https URL: " + out)
        closed, what = http2_preface_unanswered(OTHER_LOOPBACK, http_port, tls=True)
        self.assertTrue(closed, "HTTP/2 on the HTTP-only https URL: " + what)

        # The auto-TLS certificate names the HTTP-only URL's host too (etcd takes both lists).
        cert = os.path.join(server.data_dir, "fixtures", "client", "cert.pem")
        sans = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        self.assertIn("IP Address:" + OTHER_LOOPBACK, sans)
        self.assertIn("IP Address:" + harness.LOOPBACK, sans)

    def test_bad_values_are_refused(self):
        port = harness.pick_free_port()
        client = "http://%s:%d" % (harness.LOOPBACK, port)
        cases = [
            (["--listen-client-http-urls", "127.0.0.1:2382"],
             "invalid value \"127.0.0.1:2382\" for flag -listen-client-http-urls: URL scheme "
             "must be http, https, unix, or unixs: 127.0.0.1:2382"),
            (["--listen-client-urls", client, "--listen-client-http-urls", client],
             "cannot bind both --listen-client-urls and --listen-client-http-urls on the same "
             "url " + client),
            (["--listen-client-urls", client, "--listen-client-http-urls",
              "https://%s:%d" % (harness.LOOPBACK, harness.pick_free_port())],
             "TLS key/cert (--cert-file, --key-file) must be provided for client url https://"),
        ]
        for args, message in cases:
            with tempfile.TemporaryDirectory(prefix="dolmen-it-httpurls-") as tmp:
                proc = subprocess.run(
                    [harness.CONFIG.dolmen, "--data-dir", os.path.join(tmp, "d")] + args,
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=20, cwd=tmp,
                    env=harness._clean_env())
                text = harness.readable_log(proc.stderr.decode() + proc.stdout.decode())
                self.assertEqual(proc.returncode, 2, text)
                self.assertIn(message, text)
                self.assertFalse(os.path.exists(os.path.join(tmp, "d")),
                                 "a refused start created its data dir")


if __name__ == "__main__":
    harness.main()
