#!/usr/bin/env python3
"""Client TLS against etcd 3.4 and dolmen (docs/tls.md): etcdctl 3.4 and python3-etcd3 over
https with a client certificate; clients without a certificate, with one from another CA, an
expired one or a revoked one (--client-crl-file) refused with no key written; https and http
client URLs side by side; and the certificate and CA on disk replaced while a client writes.
Auto-TLS: etcdctl with --insecure-skip-tls-verify, the fixtures files, reuse on restart, and
(dolmen only) renewal of a certificate close to its end, and the start-up line that says what
auto-TLS does not protect against. The README's "Run a TLS cluster" commands, run as they
stand (on ports of the test's own). Certificates come from a throwaway CA made with the
openssl CLI (tls_certs.py)."""
import functools
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tls_certs  # noqa: E402

import etcd3  # noqa: E402

# Bounds for the waits of this file.
RELOAD_WAIT_S = 15.0
WRITER_MAX_PUTS = 100000
WRITER_MAX_S = 40.0
# A refused client gives up after this (etcdctl would otherwise retry for its command timeout).
REFUSED_TIMEOUT = "--command-timeout=3s"
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
README_CLUSTER_WAIT_S = 40.0


# --cipher-suites in Go's name and OpenSSL's, and another suite the servers are not given. The
# servers' certificate is ECDSA, so both are ECDHE-ECDSA suites. The configured one is an
# AES_128_GCM_SHA256 suite because etcd 3.4 needs one in the list (Go's HTTP/2 server refuses a
# list without: etcd 3.4 then dies with a nil-pointer panic in its error path).
ONLY_SUITE_GO = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
ONLY_SUITE_OPENSSL = "ECDHE-ECDSA-AES128-GCM-SHA256"
OTHER_SUITE_OPENSSL = "ECDHE-ECDSA-AES256-GCM-SHA384"


def tls_handshake(server, ca, cert, max_version=None, ciphers=None):
    """One TLS handshake with the server's client port as python's ssl module does it
    (verifying the server, presenting `cert`), capped at `max_version` and offering only
    `ciphers` (OpenSSL names, TLS 1.2 and below) if given. Returns (version, cipher), or the
    error text if the handshake failed."""
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert[0], cert[1])
    if max_version is not None:
        context.maximum_version = max_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    try:
        with socket.create_connection((harness.LOOPBACK, server.client_port), timeout=10) as s:
            with context.wrap_socket(s, server_hostname=harness.LOOPBACK) as tls:
                return tls.version(), tls.cipher()[0]
    except (OSError, ssl.SSLError) as e:
        return str(e) or repr(e)


def tls_client_flags(ca, cert=None):
    flags = ["--cacert", ca]
    if cert is not None:
        flags += ["--cert", cert[0], "--key", cert[1]]
    return flags


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def days_left(cert_path):
    """Days from now to the certificate's notAfter (openssl's reading of it)."""
    out = subprocess.run([tls_certs.OPENSSL, "x509", "-noout", "-enddate", "-in", cert_path],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return (ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]) - time.time()) / 86400


def last_error_line(text):
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    return lines[-1] if lines else text


class TlsTest(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dolmen-it-tls-certs-")
        cls.ca = tls_certs.TestCa(os.path.join(cls.tmp, "ca"), "dolmen-test-ca")
        cls.other_ca = tls_certs.TestCa(os.path.join(cls.tmp, "other"), "other-ca")
        cls.server_cert = cls.ca.issue("server", "server", ips=[harness.LOOPBACK],
                                       dns=["localhost"])
        cls.client_cert = cls.ca.issue("client", "root")
        cls.foreign_cert = cls.other_ca.issue("foreign", "root")
        cls.expired_cert = cls.ca.issue("expired", "root", days_from=-3, days_to=-1)
        cls.revoked_cert = cls.ca.issue("revoked", "root")
        cls.ca.revoke(cls.revoked_cert[0])
        cls.crl = cls.ca.write_crl(os.path.join(cls.tmp, "crl.pem"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def server_flags(self, extra=()):
        return ["--cert-file", self.server_cert[0], "--key-file", self.server_cert[1],
                "--trusted-ca-file", self.ca.cert] + list(extra)

    def tls_servers(self, flags, makers=(harness.etcd_server, harness.dolmen_server)):
        servers = []
        for make in makers:
            server = make(extra_flags=flags)
            server.client_scheme = "https"
            server.etcdctl_flags = tls_client_flags(self.ca.cert, self.client_cert)
            servers.append(server)
        self.start_servers(*servers)
        return servers, {s.label: s.header_ids() for s in servers}

    def test_client_certificates_accepted_and_refused(self):
        servers, ids = self.tls_servers(self.server_flags(
            ["--client-cert-auth", "--client-crl-file", self.crl]))
        self.same(servers, ids, "put", "good", "1", out_has="OK")
        refused = {
            "no certificate": tls_client_flags(self.ca.cert),
            "another CA": tls_client_flags(self.ca.cert, self.foreign_cert),
            "expired": tls_client_flags(self.ca.cert, self.expired_cert),
            "revoked": tls_client_flags(self.ca.cert, self.revoked_cert),
        }
        for why, flags in refused.items():
            def put(server, flags=flags, why=why):
                return harness.run_etcdctl(server.endpoint,
                                           flags + [REFUSED_TIMEOUT, "put", "bad", why],
                                           timeout=30)
            etcd, dolmen = self.on_each(servers, put)
            self.assertNotEqual(etcd[0], 0, "etcd accepted a client with %s" % why)
            self.assertEqual(dolmen[0], etcd[0], "%s: etcd %r, dolmen %r" % (why, etcd, dolmen))
            self.assertEqual(last_error_line(dolmen[2]), last_error_line(etcd[2]), why)
        # Nothing a refused client sent was written.
        out = self.same(servers, ids, "get", "", "--prefix", "--keys-only")
        self.assertEqual(out.split(), ["good"])
        # Dolmen says why, with the client's address.
        log = servers[1].log_text()
        if servers[1].kind == "dolmen":
            for reason in ("peer did not return a certificate", "certificate has expired",
                           "certificate revoked", "unable to get local issuer certificate"):
                self.assertIn(reason, log)

    def test_https_and_http_urls_side_by_side(self):
        plain_ports = {}
        servers = []
        for make in (harness.etcd_server, harness.dolmen_server):
            server = make()
            server.client_port = harness.pick_free_port()
            server.peer_port = harness.pick_free_port()
            plain = harness.pick_free_port()
            while len({server.client_port, server.peer_port, plain}) < 3:
                plain = harness.pick_free_port()
            server.extra_flags = self.server_flags([
                "--listen-client-urls", "https://%s:%d,http://%s:%d" % (
                    harness.LOOPBACK, server.client_port, harness.LOOPBACK, plain)])
            server.client_scheme = "https"
            server.etcdctl_flags = tls_client_flags(self.ca.cert, self.client_cert)
            plain_ports[server.label] = plain
            servers.append(server)
        self.start_servers(*servers)
        ids = {s.label: s.header_ids() for s in servers}
        self.same(servers, ids, "put", "k", "over-tls", out_has="OK")

        def plain_put(server):
            return harness.run_etcdctl("http://%s:%d" % (harness.LOOPBACK,
                                                          plain_ports[server.label]),
                                       ["put", "k", "plain"])
        etcd, dolmen = self.on_each(servers, plain_put)
        self.assertEqual(etcd[:2], (0, "OK\n"))
        self.assertEqual(dolmen[:2], etcd[:2])

        # Plaintext on the https URL is refused.
        def plain_on_tls(server):
            return harness.run_etcdctl("http://" + server.hostport, [REFUSED_TIMEOUT, "get", "k"],
                                       timeout=30)
        etcd, dolmen = self.on_each(servers, plain_on_tls)
        self.assertNotEqual(etcd[0], 0)
        self.assertEqual(dolmen[0], etcd[0])
        self.assertIn("plain", self.same(servers, ids, "get", "k", "--print-value-only"))

        # HTTP/1.1 shares both ports with gRPC: a path no one serves is Go's 404 on both
        # servers, in plaintext and over TLS.
        def http_get(server):
            tls = ssl.create_default_context(cafile=self.ca.cert)
            tls.load_cert_chain(self.client_cert[0], self.client_cert[1])
            answers = []
            for url, context in (("http://%s:%d" % (harness.LOOPBACK, plain_ports[server.label]),
                                  None), ("https://" + server.hostport, tls)):
                try:
                    with urllib.request.urlopen(url + "/dolmen-no-such-path", timeout=10,
                                                context=context) as r:
                        answers.append((r.status, r.read()))
                except urllib.error.HTTPError as e:
                    answers.append((e.code, e.read()))
            return answers
        etcd, dolmen = self.on_each(servers, http_get)
        self.assertEqual(etcd, [(404, b"404 page not found\n")] * 2)
        self.assertEqual(dolmen, etcd)

    def test_python_client_over_tls(self):
        servers, _ = self.tls_servers(self.server_flags(["--client-cert-auth"]))
        for server in servers:
            client = etcd3.client(harness.LOOPBACK, server.client_port, ca_cert=self.ca.cert,
                                  cert_key=self.client_cert[1], cert_cert=self.client_cert[0],
                                  timeout=10)
            try:
                client.put("py", "tls-" + server.label)
                value, meta = client.get("py")
                self.assertEqual(value, ("tls-" + server.label).encode(), server.label)
                self.assertEqual(meta.key, b"py")
            finally:
                client.close()

    def test_versions_and_cipher_suites_enforced(self):
        """--cipher-suites on real connections (etcd 3.4 has the flag): a TLS 1.2 client
        offering every suite gets the configured one; a client offering only another suite is
        refused. Dolmen only (etcd 3.5's flags, which etcd 3.4 lacks): with --tls-max-version
        TLS1.2 a client able to speak TLS 1.3 gets TLS 1.2, and with --tls-min-version TLS1.3
        a client capped at TLS 1.2 is refused."""
        flags = self.server_flags(["--cipher-suites", ONLY_SUITE_GO])
        makers = [harness.etcd_server, harness.dolmen_server]
        dolmen_only = harness.CONFIG.dolmen_kind == "dolmen"
        servers = []
        for make in makers:
            server = make(extra_flags=flags + (["--tls-max-version", "TLS1.2"]
                                               if make is harness.dolmen_server and dolmen_only
                                               else []))
            server.client_scheme = "https"
            server.etcdctl_flags = tls_client_flags(self.ca.cert, self.client_cert)
            servers.append(server)
        if dolmen_only:
            tls13 = harness.dolmen_server(extra_flags=self.server_flags(
                ["--tls-min-version", "TLS1.3"]))
            tls13.client_scheme = "https"
            tls13.etcdctl_flags = tls_client_flags(self.ca.cert, self.client_cert)
            servers.append(tls13)
        self.start_servers(*servers)
        handshake = functools.partial(tls_handshake, ca=self.ca.cert, cert=self.client_cert)

        # Every suite offered, TLS 1.2 at most: the configured suite is the one chosen.
        etcd, dolmen = self.on_each(servers[:2], lambda s: handshake(
            s, max_version=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(etcd, ("TLSv1.2", ONLY_SUITE_OPENSSL))
        self.assertEqual(dolmen, etcd)
        # Only another suite offered: refused in the handshake, by both.
        etcd, dolmen = self.on_each(servers[:2], lambda s: handshake(
            s, max_version=ssl.TLSVersion.TLSv1_2, ciphers=OTHER_SUITE_OPENSSL))
        self.assertIn("HANDSHAKE_FAILURE", str(etcd), "etcd accepted a suite it was not given")
        self.assertIn("HANDSHAKE_FAILURE", str(dolmen), "dolmen accepted a suite it was not given")
        # Nothing refused the suite above but the suite itself: the same client with the
        # configured suite gets through.
        self.assertEqual(handshake(servers[1], max_version=ssl.TLSVersion.TLSv1_2,
                                   ciphers=ONLY_SUITE_OPENSSL)[1], ONLY_SUITE_OPENSSL)
        if not dolmen_only:
            return
        self.assertIn("no shared cipher", servers[1].log_text())
        # --tls-max-version TLS1.2: a client that prefers TLS 1.3 gets TLS 1.2 from dolmen;
        # etcd 3.4, which has no such flag, answers with TLS 1.3.
        etcd, dolmen = self.on_each(servers[:2], handshake)
        self.assertEqual(etcd[0], "TLSv1.3")
        self.assertEqual(dolmen, ("TLSv1.2", ONLY_SUITE_OPENSSL))
        # --tls-min-version TLS1.3: TLS 1.3 served, a client capped at TLS 1.2 refused (and
        # the refusal logged with the client's address and why).
        self.assertEqual(handshake(tls13)[0], "TLSv1.3")
        refused = handshake(tls13, max_version=ssl.TLSVersion.TLSv1_2)
        self.assertIn("PROTOCOL_VERSION", str(refused), "a TLS 1.2 client was served")
        harness.wait_for(lambda: re.search(r"refused a client on https://\S+ from 127\.0\.0\.1:"
                                           r"\d+: TLS handshake failed: .*unsupported protocol",
                                           harness.readable_log(tls13.log_text())),
                         "the TLS 1.2 client's refusal logged", RELOAD_WAIT_S)
        # etcdctl (Go, TLS 1.3) still works against both dolmen servers.
        for server in (servers[1], tls13):
            rc, out, err = server.etcdctl("put", "v", "1")
            self.assertEqual((rc, out), (0, "OK\n"), err)

    def test_certificate_and_ca_replaced_without_restart(self):
        """The server's certificate, the CA file and the CRL change on disk while a client
        writes over a connection made before. New connections see the new certificate (etcd
        and dolmen); dolmen also trusts the new CA for client certificates, where etcd keeps
        the CA it started with (etcd-io/etcd#11555). Then a certificate revoked in a new CRL
        file is refused on its next connection (both: etcd reads the CRL per connection). The
        existing connection and the writes go on, and the server is the same process."""
        live = os.path.join(self.tmp, "live-%d" % os.getpid())
        os.makedirs(live, exist_ok=True)
        files = {name: os.path.join(live, name) for name in ("server.pem", "server.key",
                                                             "ca.pem", "crl.pem")}
        shutil.copy(self.server_cert[0], files["server.pem"])
        shutil.copy(self.server_cert[1], files["server.key"])
        shutil.copy(self.ca.cert, files["ca.pem"])
        shutil.copy(self.crl, files["crl.pem"])
        new_ca = tls_certs.TestCa(os.path.join(self.tmp, "rotated-%d" % os.getpid()), "new-ca")
        new_server = new_ca.issue("server", "server", ips=[harness.LOOPBACK])
        new_client = new_ca.issue("client", "root")
        server = harness.dolmen_server(extra_flags=[
            "--cert-file", files["server.pem"], "--key-file", files["server.key"],
            "--trusted-ca-file", files["ca.pem"], "--client-cert-auth",
            "--client-crl-file", files["crl.pem"]])
        server.client_scheme = "https"
        server.etcdctl_flags = tls_client_flags(self.ca.cert, self.client_cert)
        self.start_servers(server)
        pid = server.proc.pid

        client = etcd3.client(harness.LOOPBACK, server.client_port, ca_cert=self.ca.cert,
                              cert_key=self.client_cert[1], cert_cert=self.client_cert[0],
                              timeout=10)
        self.addCleanup(client.close)
        client.put("writer-0", "0")  # the connection exists before the files change
        stop = threading.Event()
        written, failures = [], []

        def writer():
            deadline = time.monotonic() + WRITER_MAX_S
            for i in range(1, WRITER_MAX_PUTS):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    client.put("writer-%d" % i, str(i))
                    written.append(i)
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    failures.append(repr(e))
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            # Replace each file by rename, as certificate tools do, key first.
            etcd_like = server.kind == "etcd"
            # The CRL of the CA the server trusts from now on (dolmen checks the CRL of every
            # certificate of a chain, so it must be the new CA's; etcd matches serials only).
            trusted_ca = self.ca if etcd_like else new_ca
            for name, source in (("server.key", new_server[1]), ("server.pem", new_server[0]),
                                 ("crl.pem", trusted_ca.write_crl(files["crl.pem"] + ".1")),
                                 ("ca.pem", new_ca.cert)):
                shutil.copy(source, files[name] + ".new")
                os.rename(files[name] + ".new", files[name])
            # etcd keeps trusting the CA it started with; dolmen trusts the new one.
            accepted = new_client if not etcd_like else self.client_cert
            refused = self.client_cert if not etcd_like else new_client
            rc, out, err = harness.retry_while(
                lambda: harness.run_etcdctl(
                    server.endpoint,
                    tls_client_flags(new_ca.cert, accepted) + [REFUSED_TIMEOUT, "put", "n", "1"],
                    timeout=30),
                lambda r: r[0] != 0, RELOAD_WAIT_S, 0.1)
            self.assertEqual((rc, out), (0, "OK\n"), "new connection after the change: " + err)
            # A client still trusting only the old CA refuses the new server certificate.
            rc, _, _ = harness.run_etcdctl(
                server.endpoint, tls_client_flags(self.ca.cert, self.client_cert) +
                [REFUSED_TIMEOUT, "get", "n"], timeout=30)
            self.assertNotEqual(rc, 0)
            rc, _, _ = harness.run_etcdctl(
                server.endpoint, tls_client_flags(new_ca.cert, refused) +
                [REFUSED_TIMEOUT, "get", "n"], timeout=30)
            self.assertNotEqual(rc, 0, "client certificate that the server should not trust")
            self.check_crl_replaced(server, files["crl.pem"], trusted_ca, new_ca.cert, accepted)
            before = len(written)
            harness.poll_until(lambda: len(written) >= before + 10 or failures or
                               not thread.is_alive(), RELOAD_WAIT_S)
        finally:
            stop.set()
            thread.join(WRITER_MAX_S + 10)
        self.assertEqual(failures, [], "writes over the existing connection failed")
        self.assertGreaterEqual(len(written), before + 10,
                                "the existing connection stopped writing after the change")
        self.assertEqual(client.get("writer-%d" % written[-1])[0], str(written[-1]).encode())
        self.assertEqual((server.proc.pid, server.proc.poll()), (pid, None),
                         "the server restarted or exited")

    def check_crl_replaced(self, server, crl_path, ca, server_ca, accepted):
        """A client certificate of `ca`, accepted, then revoked in a new CRL file renamed
        over `crl_path`: its next connection is refused, while `accepted` still gets in."""
        doomed = ca.issue("doomed-%d" % os.getpid(), "root")

        def put(cert, command_timeout=REFUSED_TIMEOUT):
            return harness.run_etcdctl(server.endpoint, tls_client_flags(server_ca, cert) +
                                       [command_timeout, "put", "crl", "1"], timeout=30)
        rc, out, err = put(doomed)
        self.assertEqual((rc, out), (0, "OK\n"), "before its revocation: " + err)
        ca.revoke(doomed[0])
        os.rename(ca.write_crl(crl_path + ".2"), crl_path)
        # (A refused etcdctl gives up at its command timeout: a short one while polling.)
        harness.wait_for(lambda: put(doomed, "--command-timeout=1s")[0] != 0,
                         "the revoked certificate refused", RELOAD_WAIT_S)
        rc, out, err = put(accepted)
        self.assertEqual((rc, out), (0, "OK\n"), "a certificate the new CRL does not list: " + err)
        if server.kind == "dolmen":
            self.assertIn("certificate revoked", server.log_text())


class AutoTlsTest(harness.IntegrationTestCase):
    def test_auto_tls_serves_reuses_and_renews(self):
        servers = []
        for make in (harness.etcd_server, harness.dolmen_server):
            server = make(extra_flags=["--auto-tls", "--peer-auto-tls"])
            server.client_scheme = "https"
            server.etcdctl_flags = ["--insecure-transport=false", "--insecure-skip-tls-verify"]
            servers.append(server)
        self.start_servers(*servers)
        ids = {s.label: s.header_ids() for s in servers}
        self.same(servers, ids, "put", "k", "v", out_has="OK")
        self.assertEqual(self.same(servers, ids, "get", "k", "--print-value-only"), "v\n")

        def fixtures(server):
            paths = {}
            for side in ("client", "peer"):
                for name in ("cert.pem", "key.pem"):
                    path = os.path.join(server.data_dir, "fixtures", side, name)
                    self.assertTrue(os.path.isfile(path), "%s: no %s" % (server.label, path))
                    paths[side + "/" + name] = path
            self.assertEqual(os.stat(paths["client/key.pem"]).st_mode & 0o777, 0o600,
                             server.label)
            return {k: read_bytes(v) for k, v in paths.items()}
        first = [fixtures(s) for s in servers]
        # Valid one year (etcd 3.4's only choice: it has no --self-signed-cert-validity).
        for server in servers:
            for side in ("client", "peer"):
                path = os.path.join(server.data_dir, "fixtures", side, "cert.pem")
                self.assertAlmostEqual(days_left(path), 365, delta=1, msg=server.label)
        if servers[1].kind == "dolmen":
            # Beyond etcd: the start-up log says what auto-TLS does not do.
            self.assertIn("auto-TLS: client traffic is encrypted with a self-signed certificate, "
                          "which no client can verify: it protects against eavesdropping, not "
                          "against an impostor", harness.readable_log(servers[1].log_text()))
        # A restart reuses the files.
        for server in servers:
            server.stop()
            server.start()
        self.assertEqual([fixtures(s) for s in servers], first)
        self.same(servers, ids, "get", "k", "--print-value-only")

        # Dolmen only (etcd reuses the files unchecked): a certificate with less than a tenth of
        # its validity left is renewed in place at start-up.
        dolmen = servers[1]
        if dolmen.kind != "dolmen":
            return
        dolmen.stop()
        certs = tempfile.mkdtemp(prefix="dolmen-it-tls-renew-")
        self.addCleanup(shutil.rmtree, certs, True)
        ca = tls_certs.TestCa(certs, "old")
        old = ca.issue("old", "old", ips=[harness.LOOPBACK], days_from=-20, days_to=1)
        client_dir = os.path.join(dolmen.data_dir, "fixtures", "client")
        shutil.copy(old[0], os.path.join(client_dir, "cert.pem"))
        shutil.copy(old[1], os.path.join(client_dir, "key.pem"))
        old_pem = read_bytes(old[0])
        # ... for as many years as --self-signed-cert-validity says (etcd 3.5's flag).
        dolmen.extra_flags = dolmen.extra_flags + ["--self-signed-cert-validity", "3"]
        dolmen.start()
        self.assertAlmostEqual(days_left(os.path.join(client_dir, "cert.pem")), 3 * 365,
                               delta=1)
        renewed = read_bytes(os.path.join(client_dir, "cert.pem"))
        self.assertNotEqual(renewed, old_pem, "a certificate about to expire was kept")
        self.assertNotEqual(renewed, first[1]["client/cert.pem"])
        self.assertIn("less than 10% of its validity is left", dolmen.log_text())
        rc, out, err = dolmen.etcdctl("get", "k", "--print-value-only")
        self.assertEqual((rc, out), (0, "v\n"), err)


class LabCommandTest(harness.IntegrationTestCase):
    EXIT_WAIT_S = 40  # etcd resolves names for up to 30 s; IP addresses it does not
    # The lab's INTERNAL_IP for this member and the two other members of its
    # --initial-cluster (which never start: the member refuses before it dials them).
    HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")

    def test_initial_cluster_https_but_advertised_http_is_refused(self):
        """The lab's literal command (seeds/000_ce8181b196f91668.txt), its whole flag set:
        --initial-cluster names the three members with https while this member's
        --initial-advertise-peer-urls and --listen-peer-urls say http; https and http client
        URLs; --auto-tls --peer-auto-tls. etcd refuses to bootstrap with its message; dolmen
        refuses with the same message and one line saying which flag to change."""
        for make in (harness.etcd_server, harness.dolmen_server):
            server = self.new_server(make(name="i-1"))
            ip = self.HOSTS[0]
            peer_port = harness.pick_free_port(ip)  # 2380 in the lab, on every instance
            https_port = harness.pick_free_port(ip)  # 2379 in the lab
            http_port = harness.pick_free_port()  # 2379 on 127.0.0.1 in the lab
            server.client_port = https_port
            peer = "%s:%d" % (ip, peer_port)
            client_urls = "https://%s:%d,http://127.0.0.1:%d" % (ip, https_port, http_port)
            initial = ",".join("i-%d=https://%s:%d" % (i + 1, host, peer_port)
                               for i, host in enumerate(self.HOSTS))
            # As the lab's ExecStart writes it, in its order, with etcd's binary swapped.
            server.spawn_command([
                server.binary, "--data-dir=" + server.data_dir, "--name", "i-1",
                "--initial-advertise-peer-urls", "http://" + peer,
                "--listen-peer-urls", "http://" + peer,
                "--advertise-client-urls", client_urls,
                "--listen-client-urls", client_urls,
                "--initial-cluster", initial,
                "--initial-cluster-state", "new", "--initial-cluster-token", "lab-asg",
                "--auto-tls",
                "--peer-auto-tls"])
            rc = server.proc.wait(self.EXIT_WAIT_S)
            self.assertNotEqual(rc, 0, "%s bootstrapped an inconsistent member" % server.label)
            want = ("--initial-cluster has i-1=https://{p} but missing from "
                    "--initial-advertise-peer-urls=http://{p} (resolved urls: "
                    "\"http://{p}\" != \"https://{p}\")").format(p=peer)
            log = harness.readable_log(server.log_text())
            self.assertIn(want, log, server.label)
            if server.kind == "dolmen":
                hint = [line for line in log.splitlines() if "differ only in the scheme" in line]
                self.assertEqual(hint, [
                    "the two differ only in the scheme: make --initial-advertise-peer-urls "
                    "(and --listen-peer-urls) say https://%s, or --initial-cluster say "
                    "i-1=http://%s; both must name the same URLs" % (peer, peer)], log)


class ReadmeTlsClusterTest(harness.IntegrationTestCase):
    HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")

    def test_readme_tls_cluster_commands_work(self):
        """The README's three blocks: certificates with openssl, three members with https
        client and peer URLs, etcdctl --cacert member list. Only the ports (2379/2380 there),
        the binaries' paths and a `wait` (which keeps the shell, and so the members, ours)
        are changed."""
        blocks = readme_section_blocks("Run a TLS cluster")
        self.assertEqual(len(blocks), 3, "the README section should have three sh blocks")
        client_port = port_free_on_all(self.HOSTS)
        peer_port = port_free_on_all(self.HOSTS)

        def adapt(block):
            block = harness.with_ports(block, {2379: client_port, 2380: peer_port})
            block = block.replace("build/cmd/dolmen/dolmen",
                                  " ".join(harness._die_with_parent_prefix() +
                                           [harness.CONFIG.dolmen]))
            return block.replace("ETCDCTL_API=3 etcdctl", "ETCDCTL_API=3 " +
                                 harness.CONFIG.etcdctl)
        work = tempfile.mkdtemp(prefix="dolmen-it-readme-tls-")
        self.addCleanup(shutil.rmtree, work, True)
        certs = subprocess.run(["/bin/bash", "-euo", "pipefail", "-c", adapt(blocks[0])],
                               cwd=work, capture_output=True, text=True, timeout=60)
        self.assertEqual(certs.returncode, 0, certs.stderr)
        shell = subprocess.Popen(harness._die_with_parent_prefix() +
                                 ["/bin/bash", "-c", adapt(blocks[1]) + "\nwait\n"], cwd=work,
                                 stdin=subprocess.DEVNULL, env=harness._clean_env())
        self.addCleanup(stop_shell_and_children, shell)
        try:
            members = harness.wait_for(lambda: len(children(shell.pid)) == 3 and
                                       children(shell.pid), "three members started", 10)
            last = {}

            def all_listed():
                for pid in members:
                    self.assertTrue(os.path.exists("/proc/%d" % pid), "a member exited")
                listed = last["listed"] = subprocess.run(
                    ["/bin/bash", "-c", adapt(blocks[2])], cwd=work, capture_output=True,
                    text=True, timeout=30, env=harness._clean_env())
                rows = last["rows"] = table_rows(listed.stdout)
                # etcd knows the names from --initial-cluster at once; the client URLs only
                # once each member has published them: wait for both.
                return len(rows) == 3 and all(r[1] == "started" and r[2] and r[4] for r in rows)

            self.assertTrue(harness.poll_until(all_listed, README_CLUSTER_WAIT_S, 0.2),
                            "member list over https: %s%s"
                            % (last["listed"].stdout, last["listed"].stderr))
            rows = last["rows"]
            self.assertEqual(sorted(r[2:5] for r in rows), [
                ["m%d" % (i + 1), "https://%s:%d" % (h, peer_port),
                 "https://%s:%d" % (h, client_port)] for i, h in enumerate(self.HOSTS)])
        except AssertionError:
            for i in (1, 2, 3):
                path = os.path.join(work, "m%d.log" % i)
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        sys.stderr.write("\n----- m%d.log -----\n%s" % (i, f.read()[-6000:]))
            raise


def readme_section_blocks(title):
    """The ```sh blocks of the README section `## title`."""
    with open(README) as f:
        text = f.read()
    start = text.index("\n## %s\n" % title)
    end = text.find("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start:end if end >= 0 else None], re.S)


def port_free_on_all(hosts):
    """A port harness.pick_free_port found free on hosts[0] and free on the others too."""
    for _ in range(50):  # bounded; a port free on one loopback address is almost always free
        port = harness.pick_free_port(hosts[0])
        free = True
        for host in hosts[1:]:
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    free = False
        if free:
            return port
    raise RuntimeError("no port free on all of %s" % (hosts,))


def table_rows(text):
    """The data rows of an etcdctl -w table output, cells stripped (header and rules out)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0] != "ID":
            rows.append(cells)
    return rows


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def stop_shell_and_children(shell):
    """Stops the README's members by PID (SIGTERM, SIGKILL after harness.STOP_TERM_WAIT_S;
    the shell's `wait` reaps them), then the shell, which then has nothing left to wait for."""
    for pid, sig, wait_s in [(p, s, w) for p in children(shell.pid) for s, w in
                             ((signal.SIGTERM, harness.STOP_TERM_WAIT_S),
                              (signal.SIGKILL, harness.STOP_KILL_WAIT_S))]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
        harness.poll_until(lambda: not os.path.exists("/proc/%d" % pid), wait_s)
    harness.stop_process(shell)


if __name__ == "__main__":
    harness.main()
