#!/usr/bin/env python3
"""etcd 3.6's v3 discovery (--discovery-token, --discovery-endpoints) on loopback: a one-member
discovery service (dolmen, dolmen over TLS, or etcd 3.4 with auth on), `etcdctl put
/_etcd/registry/TOKEN/_config/size 3`, and three dolmen members started with only the token and
the endpoint (no --initial-cluster). They form one cluster whose member ids are etcd's (SHA-1 of
the peer URL and the discovery token); a writer runs once it is up and no acknowledged put is
lost; a fourth member on the full registry and a member whose token has no size exit non-zero
with etcd's errors ("discovery: cluster is full", "discovery: size key not found"); a member
restarted on its data dir does not ask the service again.

Every process runs on 127.0.0.1 on ports harness.pick_free_port() picked, is stopped by PID
(SIGTERM, then SIGKILL), and every wait polls a condition with a deadline.

Run: /usr/bin/python3 tests/discovery/v3_test.py --dolmen build/cmd/dolmen/dolmen
     [--etcd /usr/bin/etcd] [--etcdctl /usr/bin/etcdctl] [--keep] [V3DiscoveryTest.test_x]
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402  (pick_free_port, setpriv prefix, clean env, readable_log)

LOOPBACK = "127.0.0.1"
FORM_TIMEOUT_S = 40.0  # three members register, elect and publish (generous for ASan)
EXIT_TIMEOUT_S = 20.0
STOP_WAIT_S = 10.0
MIN_ACKED = 10
WRITER_MAX_PUTS = 300
WRITER_MAX_S = 20.0
ETCDCTL_TIMEOUT_S = 15.0

CONFIG = argparse.Namespace(dolmen=None, etcd="/usr/bin/etcd", etcdctl="/usr/bin/etcdctl",
                            keep=False)


def member_id(peer_url, token):
    """etcd's member id: SHA-1 of the sorted peer URLs and the cluster token (with v3 discovery,
    the discovery token), first 8 bytes."""
    return int.from_bytes(hashlib.sha1((peer_url + token).encode()).digest()[:8], "big")


def etcdctl(endpoint, *args, user=None):
    cmd = [CONFIG.etcdctl, "--endpoints=" + endpoint, "--dial-timeout=2s",
           "--command-timeout=10s"] + (["--user", user] if user else []) + list(args)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=ETCDCTL_TIMEOUT_S, env=harness._clean_env())
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


class Member(harness.Server):
    """One server on 127.0.0.1 (harness.Server: ports, log, stop by PID) with peer URLs and no
    --initial-cluster unless `alone` (a one-member discovery service)."""

    def __init__(self, kind, binary, name, extra, alone=False):
        super().__init__(kind, binary, name=name, peer_flags=False, label=name,
                         extra_flags=extra)
        self.alone = alone

    @property
    def peer_url(self):
        return "http://%s:%d" % (LOOPBACK, self.peer_port)

    def _command(self):
        peer = ["--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls",
                self.peer_url, "--heartbeat-interval", "50", "--election-timeout", "500"]
        if self.alone:
            peer += ["--initial-cluster", "%s=%s" % (self.name, self.peer_url)]
        return super()._command() + peer

    def wait_exit(self, timeout=EXIT_TIMEOUT_S):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit within %.0fs" % (self.name, timeout))
        self._reap()
        return rc

    def readable_log(self):
        return harness.readable_log(self.log_text())


class V3DiscoveryTest(harness.IntegrationTestCase):

    def run(self, result=None):
        self.root = tempfile.mkdtemp(prefix="dolmen-v3disc-")
        try:
            return super().run(result)
        finally:
            if not CONFIG.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def new(self, kind, name, extra=(), alone=False):
        return self.new_server(Member(kind, CONFIG.dolmen if kind == "dolmen" else CONFIG.etcd,
                                      name, extra, alone))

    def start_service(self, kind):
        """A one-member discovery service: dolmen, or etcd 3.4 with a root user and auth on."""
        service = self.new(kind, "discovery-" + kind, alone=True)
        service.start(FORM_TIMEOUT_S)
        user = None
        if kind == "etcd":
            for args in (["user", "add", "root:secret"], ["auth", "enable"]):
                rc, out, err = etcdctl(service.endpoint, *args)
                self.assertEqual(rc, 0, err)
            user = "root:secret"
        return service, user

    def members(self, service, token, count, first=1, extra=()):
        return [self.new("dolmen", "m%d" % i,
                         ["--discovery-token", token, "--discovery-endpoints",
                          service.endpoint] + list(extra))
                for i in range(first, first + count)]

    def form(self, service, token, user=None, extra=()):
        rc, _, err = etcdctl(service.endpoint, "put", "/_etcd/registry/%s/_config/size" % token,
                             "3", user=user)
        self.assertEqual(rc, 0, err)
        members = self.members(service, token, 3, extra=extra)
        for m in members:
            m.spawn()
        for m in members:
            m.wait_ready(FORM_TIMEOUT_S)
        return members

    def check_cluster(self, members, token):
        expected = sorted((member_id(m.peer_url, token), m.name, m.peer_url) for m in members)
        cluster_ids = set()
        for m in members:
            rc, out, err = etcdctl(m.endpoint, "member", "list", "-w", "json")
            self.assertEqual(rc, 0, err)
            listed = json.loads(out)
            cluster_ids.add(listed["header"]["cluster_id"])
            self.assertEqual(sorted((x["ID"], x["name"], x["peerURLs"][0])
                                    for x in listed["members"]), expected)
            self.assertTrue(all(not x.get("isLearner") for x in listed["members"]))
        self.assertEqual(len(cluster_ids), 1, "one cluster, not three")

    def check_registry(self, service, token, members, user=None):
        rc, out, err = etcdctl(service.endpoint, "get", "--prefix",
                               "/_etcd/registry/%s/members/" % token, user=user)
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        got = dict(zip(lines[0::2], lines[1::2]))
        self.assertEqual(got, {"/_etcd/registry/%s/members/%x" % (token, member_id(m.peer_url,
                                                                                   token)):
                               "%s=%s" % (m.name, m.peer_url) for m in members})

    def write_and_check(self, members):
        """The bounded writer (writer.py) through every member; every acknowledged key is then
        read linearizably from every member."""
        stop_file = os.path.join(self.root, "writer.stop")
        out_path = os.path.join(self.root, "writer.out")
        with open(out_path, "wb") as out:
            writer = subprocess.Popen(
                harness._die_with_parent_prefix() +
                [sys.executable, os.path.join(HERE, "writer.py"), "--stop-file", stop_file,
                 "--max-puts", str(WRITER_MAX_PUTS), "--max-seconds", str(WRITER_MAX_S)] +
                ["%s:%d" % (LOOPBACK, m.client_port) for m in members],
                stdout=out, stderr=subprocess.STDOUT, env=harness._clean_env())
        try:
            def acked():
                with open(out_path) as f:
                    return [l for l in f.read().splitlines() if l and not l.startswith("#")]
            harness.wait_for(lambda: len(acked()) >= MIN_ACKED,
                             "%d acknowledged puts" % MIN_ACKED, WRITER_MAX_S)
            open(stop_file, "w").close()
            writer.wait(WRITER_MAX_S)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        keys = acked()
        for m in members:
            rc, out, err = etcdctl(m.endpoint, "get", "--prefix", "w/", "--keys-only")
            self.assertEqual(rc, 0, err)
            have = set(l for l in out.splitlines() if l)
            self.assertEqual([k for k in keys if k not in have], [],
                             "acknowledged puts missing on %s" % m.name)

    def test_three_members_through_a_dolmen_discovery_service(self):
        service, _ = self.start_service("dolmen")
        token = "tok-dolmen"
        members = self.form(service, token)
        self.check_cluster(members, token)
        self.check_registry(service, token, members)
        self.assertIn("v3 discovery: initial cluster", members[0].readable_log())
        self.write_and_check(members)

        # A fourth member on the full registry: etcd's error, a non-zero exit, not registered.
        fourth = self.members(service, token, 1, first=4)[0]
        fourth.spawn()
        self.assertNotEqual(fourth.wait_exit(), 0)
        log = fourth.readable_log()
        self.assertIn("discovery: cluster is full", log)
        self.assertIn("do not reuse discovery token", log)
        self.check_registry(service, token, members)

        # A member restarted on its data dir keeps its membership and does not ask again.
        self.assertEqual(members[2].stop(), -signal.SIGTERM)
        members[2].spawn()
        members[2].wait_ready(FORM_TIMEOUT_S)
        self.assertIn("the discovery service is not asked again", members[2].readable_log())
        self.check_cluster(members, token)

    def test_etcd34_with_auth_as_the_discovery_service(self):
        service, user = self.start_service("etcd")
        token = "tok-etcd34"
        members = self.form(service, token, user=user, extra=["--discovery-user", user])
        self.check_cluster(members, token)
        self.check_registry(service, token, members, user=user)
        self.write_and_check(members)

    def test_tls_discovery_service(self):
        """A dolmen service with --auto-tls (a self-signed certificate): one member trusts it
        through --discovery-cacert, the other skips the check (--discovery-insecure-skip-tls-
        verify); both reach it over TLS and form a cluster of two."""
        service = self.new("dolmen", "discovery-tls", ["--auto-tls"], alone=True)
        service.client_scheme = "https"
        service.etcdctl_flags = ["--insecure-transport=false", "--insecure-skip-tls-verify"]
        service.start(FORM_TIMEOUT_S)
        token = "tok-tls"
        rc, _, err = service.etcdctl("put", "/_etcd/registry/%s/_config/size" % token, "2")
        self.assertEqual(rc, 0, err)
        cert = os.path.join(service.data_dir, "fixtures", "client", "cert.pem")
        self.assertTrue(os.path.exists(cert), cert)
        members = [self.new("dolmen", "m1", ["--discovery-token", token, "--discovery-endpoints",
                                             service.endpoint, "--discovery-cacert", cert]),
                   self.new("dolmen", "m2", ["--discovery-token", token, "--discovery-endpoints",
                                             service.endpoint,
                                             "--discovery-insecure-skip-tls-verify"])]
        for m in members:
            m.spawn()
        for m in members:
            m.wait_ready(FORM_TIMEOUT_S)
        self.check_cluster(members, token)

    def test_missing_size_and_bad_flags_fail_with_a_clear_error(self):
        service, _ = self.start_service("dolmen")
        lone = self.members(service, "tok-nosize", 1)[0]
        lone.spawn()
        self.assertEqual(lone.wait_exit(), 1)
        self.assertIn("discovery: size key not found", lone.readable_log())
        rc, out, _ = etcdctl(service.endpoint, "get", "--prefix", "/_etcd/registry/tok-nosize")
        self.assertEqual((rc, out), (0, ""), "a member that failed must not register")

        # etcd 3.6's flag checks, before anything starts (exit 2 as every bad flag).
        for extra, message in [
                (["--discovery-token", "t"],
                 "both --discovery-token and --discovery-endpoints must be set"),
                (["--discovery-token", "t", "--discovery-endpoints", service.endpoint,
                  "--initial-cluster", "m9=http://127.0.0.1:1"],
                 'Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"')]:
            bad = self.new("dolmen", "bad-%d" % len(message), extra)
            bad.spawn()
            self.assertEqual(bad.wait_exit(), 2)
            self.assertIn(message, bad.readable_log())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dolmen", required=True)
    parser.add_argument("--etcd", default=CONFIG.etcd)
    parser.add_argument("--etcdctl", default=CONFIG.etcdctl)
    parser.add_argument("--keep", action="store_true")
    args, rest = parser.parse_known_args()
    CONFIG.dolmen, CONFIG.etcd, CONFIG.etcdctl, CONFIG.keep = (
        os.path.abspath(args.dolmen), args.etcd, args.etcdctl, args.keep)
    for path in (CONFIG.dolmen, CONFIG.etcd, CONFIG.etcdctl):
        if not os.access(path, os.X_OK):
            print("FAIL: %s is missing or not executable" % path)
            return 1
    harness.CONFIG.etcdctl = CONFIG.etcdctl
    harness.CONFIG.keep = CONFIG.keep
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    sys.exit(main())
