#!/usr/bin/env python3
"""DNS SRV discovery (--discovery-srv) against a real DNS server: dnsmasq on 127.0.0.1:53 in a
network namespace of the test's own (dns_namespace.py), three members on 127.0.0.1/.2/.3 with
no --initial-cluster, the real etcdctl 3.4 (its own --discovery-srv reads the _etcd-client
records), and etcd 3.4 (/usr/bin/etcd) on the same records as the reference.

etcd 3.4 reads only _etcd-server-ssl records (its GetDNSClusterNames drops the plain ones, a
bug 3.5 fixed; test_etcd34_ignores_plain_records pins it), so its reference cluster runs on
https peer URLs with --peer-auto-tls; dolmen runs on the same -ssl records with the same flags
(test_same_member_list_as_etcd34) and on plain _etcd-server records (the other tests). The
comparison is of what discovery decides: names, the peer URLs (scheme and host:port taken from
the SRV targets), client URLs, and the ids etcd's rule derives from them.

Run: /usr/bin/python3 tests/discovery/srv_test.py --dolmen build/cmd/dolmen/dolmen
     [--etcd /usr/bin/etcd] [--etcdctl /usr/bin/etcdctl] [--keep] [SrvTest.test_x]
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
import harness  # noqa: E402  (pick_free_port, setpriv prefix, clean env)
from dns_namespace import DnsNamespace  # noqa: E402

DOMAIN = "example.test"
TOKEN = "etcd-cluster"  # the default --initial-cluster-token of both servers
FORM_TIMEOUT_S = 40.0  # three members discover, elect and publish (generous for ASan)
EXIT_TIMEOUT_S = 20.0
MIN_ACKED = 10  # puts the writer must have acknowledged for "none lost" to mean something
ETCDCTL_TIMEOUT_S = 15.0
STOP_WAIT_S = 10.0

CONFIG = argparse.Namespace(dolmen=None, etcd="/usr/bin/etcd", etcdctl="/usr/bin/etcdctl",
                            keep=False)


def member_id(peer_urls, token=TOKEN):
    """etcd's member id: SHA-1 of the sorted peer URLs and the cluster token, first 8 bytes."""
    digest = hashlib.sha1(("".join(sorted(peer_urls)) + token).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Member:
    """One server process inside the namespace, on 127.0.0.<index>."""

    def __init__(self, ns, root, kind, name, index, secure_peer=False, extra=()):
        self.ns, self.kind, self.name = ns, kind, name
        self.ip = "127.0.0.%d" % index
        self.host = "m%d" % index  # its DNS name: m<index>.example.test
        self.client_port = harness.pick_free_port()
        self.peer_port = harness.pick_free_port()
        self.scheme = "https" if secure_peer else "http"
        self.extra = list(extra)
        self.dir = os.path.join(root, "%s-%s" % (kind, name))
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.domain = DOMAIN

    @property
    def client_url(self):
        return "http://%s:%d" % (self.ip, self.client_port)

    def command(self):
        peer = "%s://%s:%d" % (self.scheme, self.ip, self.peer_port)
        binary = CONFIG.dolmen if self.kind == "dolmen" else CONFIG.etcd
        cmd = [binary, "--name", self.name, "--data-dir", os.path.join(self.dir, "data"),
               "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--discovery-srv", self.domain,
               "--heartbeat-interval", "50", "--election-timeout", "500"]
        if self.scheme == "https":
            cmd.append("--peer-auto-tls")
        return cmd + self.extra

    def start(self):
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(("=== %s\n" % " ".join(cmd)).encode())
            log.flush()
            self.proc = subprocess.Popen(
                harness._die_with_parent_prefix() + self.ns.exec_prefix() + cmd,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                env=harness._clean_env())

    def wait_exit(self, timeout=EXIT_TIMEOUT_S):
        """The exit status; fails the test if the process is still running after `timeout`."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s %s still running after %.0f s" % (self.kind, self.name,
                                                                      timeout))

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_WAIT_S)

    def log_text(self):
        if not os.path.exists(self.log_path):
            return "(never started)\n"
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class SrvTest(unittest.TestCase):

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self.root = tempfile.mkdtemp(prefix="dolmen-srv-")
        self.members = []
        try:
            with DnsNamespace(DOMAIN, self.root) as self.ns:
                return super().run(result)
        finally:
            for m in self.members:
                m.stop()
            if len(result.failures) + len(result.errors) > before:
                for m in self.members:
                    sys.stderr.write("\n----- %s %s log -----\n%s" % (m.kind, m.name,
                                                                     m.log_text()[-8000:]))
                path = os.path.join(self.root, "dnsmasq.log")
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        sys.stderr.write("\n----- dnsmasq log -----\n" + f.read()[-4000:])
            if not CONFIG.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def new_members(self, kind, count=3, secure_peer=False, extra=(), first_index=1):
        made = [Member(self.ns, self.root, kind, "n%d" % i, i, secure_peer, extra)
                for i in range(first_index, first_index + count)]
        self.members += made
        return made

    def publish(self, members, server_service="_etcd-server._tcp", listed=None):
        """Serves the A records of every member and SRV records for `listed` (default: all)."""
        listed = members if listed is None else listed
        hosts = {m.host: m.ip for m in members}
        srv = [(server_service, m.host, m.peer_port) for m in listed]
        srv += [("_etcd-client._tcp", m.host, m.client_port) for m in listed]
        self.ns.start_dns(hosts, srv)

    def etcdctl(self, *args, endpoints=None):
        """etcdctl inside the namespace; by default it finds the members by --discovery-srv."""
        target = ["--discovery-srv", DOMAIN] if endpoints is None else ["--endpoints", endpoints]
        cmd = self.ns.exec_prefix() + [CONFIG.etcdctl] + target + [
            "--dial-timeout=2s", "--command-timeout=5s"] + list(args)
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=ETCDCTL_TIMEOUT_S,
                              env=harness._clean_env())
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    def wait_formed(self, members):
        """Polls `member list` on each member until all list every member by its own name
        (published); returns the list. Fails at once if a member exited."""
        deadline = time.monotonic() + FORM_TIMEOUT_S
        last = None
        while True:
            for m in members:
                if m.proc.poll() is not None:
                    self.fail("%s %s exited with status %s while forming the cluster"
                              % (m.kind, m.name, m.proc.returncode))
            lists = []
            for m in members:
                rc, out, err = self.etcdctl("member", "list", "-w", "json",
                                            endpoints=m.client_url)
                lists.append(json.loads(out)["members"] if rc == 0 else None)
                last = (rc, out, err)
            if all(lst is not None and sorted(x.get("name", "") for x in lst)
                   == sorted(m.name for m in members) for lst in lists):
                return sorted(lists[0], key=lambda x: x["name"])
            if time.monotonic() > deadline:
                self.fail("cluster not formed within %.0f s; last member list: %r"
                          % (FORM_TIMEOUT_S, last))
            time.sleep(0.2)

    def start_writer(self, members):
        """writer.py inside the namespace, its stdout (acknowledged keys) in a file."""
        stop_file = os.path.join(self.root, "writer.stop")
        out = open(os.path.join(self.root, "writer.out"), "wb")
        cmd = self.ns.exec_prefix() + [
            sys.executable, os.path.join(HERE, "writer.py"), "--stop-file", stop_file,
            "--max-seconds", str(FORM_TIMEOUT_S * 2)] + [
            "%s:%d" % (m.ip, m.client_port) for m in members]
        proc = subprocess.Popen(harness._die_with_parent_prefix() + cmd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env=harness._clean_env())
        out.close()
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc, stop_file, out.name

    def check_writer(self, writer, members):
        """Stops the writer; every key it saw acknowledged is on every member."""
        proc, stop_file, out_path = writer

        def acked_so_far():
            with open(out_path, errors="replace") as f:
                return sum(1 for line in f if line.startswith("w/"))

        # On a loaded machine the scenario can end before the writer got far: let it reach a
        # few more acknowledged puts (bounded) so that "none lost" checks something.
        deadline = time.monotonic() + 30
        while acked_so_far() <= MIN_ACKED and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        open(stop_file, "w").close()
        try:
            rc = proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.fail("writer did not stop")
        with open(out_path, errors="replace") as f:
            lines = f.read().splitlines()
        acked = [line for line in lines if line.startswith("w/")]
        self.assertEqual(rc, 0, "writer failed: %s" % lines[-5:])
        self.assertGreater(len(acked), MIN_ACKED, "the writer got almost nothing acknowledged")
        for m in members:
            rc, out, err = self.etcdctl("get", "w/", "--prefix", "--keys-only",
                                        endpoints=m.client_url)
            self.assertEqual(rc, 0, err)
            present = set(line for line in out.splitlines() if line)
            lost = [k for k in acked if k not in present]
            self.assertEqual(lost, [], "acknowledged puts missing on %s" % m.name)

    def expected_members(self, members, scheme):
        out = []
        for m in members:
            peer = "%s://%s.%s:%d" % (scheme, m.host, DOMAIN, m.peer_port)
            out.append({"ID": member_id([peer]), "name": m.name, "peerURLs": [peer],
                        "clientURLs": [m.client_url]})
        return sorted(out, key=lambda x: x["name"])

    def assertExitsWith(self, member, text):
        rc = member.wait_exit()
        self.assertNotEqual(rc, 0, "%s %s exited 0" % (member.kind, member.name))
        self.assertIn(text, harness.readable_log(member.log_text()))
        return rc

    # -- tests ---------------------------------------------------------------------------------

    def test_three_members_form_a_cluster_from_srv_records(self):
        members = self.new_members("dolmen")
        # The records are not there yet (no DNS server at all): every member waits and asks
        # again rather than failing as etcd would.
        for m in members:
            m.start()
        deadline = time.monotonic() + FORM_TIMEOUT_S
        while not all("DNS SRV discovery attempt 1 failed" in m.log_text() for m in members):
            for m in members:
                self.assertIsNone(m.proc.poll(), "%s exited while waiting for DNS" % m.name)
            self.assertLess(time.monotonic(), deadline, "no member reported a failed lookup")
            time.sleep(0.1)
        self.publish(members)
        listed = self.wait_formed(members)
        # A writer runs from here to the end (through n1's restart); no acknowledged put may
        # be lost.
        writer = self.start_writer(members)
        # Each member as etcd derives it: its --name, the SRV target's host name and port in
        # the peer URL (not the advertised IP), etcd's id from that URL and the token.
        self.assertEqual([{k: x.get(k) for k in ("ID", "name", "peerURLs", "clientURLs")}
                          for x in listed], self.expected_members(members, "http"))
        self.assertIn("got bootstrap from DNS for etcd-server at n1=http://m1.%s:%d"
                      % (DOMAIN, members[0].peer_port), members[0].log_text())
        # etcdctl 3.4's own --discovery-srv finds the members through _etcd-client records.
        rc, out, err = self.etcdctl("put", "found-by", "srv")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        rc, out, err = self.etcdctl("member", "list")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(line.split(", ")[2] for line in out.strip().splitlines()),
                         ["n1", "n2", "n3"])
        for m in members:
            rc, out, err = self.etcdctl("get", "found-by", "--print-value-only",
                                        endpoints=m.client_url)
            self.assertEqual((rc, out.strip()), (0, "srv"), err)

        # A restart on its data dir keeps the membership and never asks for SRV records (as
        # etcd): with them withdrawn, n1 comes back and serves the key. (The A records stay:
        # the peer URLs are the targets' host names, which every member dials, in etcd too.)
        self.ns.start_dns({m.host: m.ip for m in members}, [])
        members[0].stop()
        members[0].start()
        deadline = time.monotonic() + FORM_TIMEOUT_S
        while True:
            self.assertIsNone(members[0].proc.poll(), "n1 exited after its restart")
            rc, out, err = self.etcdctl("get", "found-by", "--print-value-only",
                                        endpoints=members[0].client_url)
            if rc == 0 and out.strip() == "srv":
                break
            self.assertLess(time.monotonic(), deadline, "n1 not serving after restart: " + err)
            time.sleep(0.2)
        self.assertIn("is already initialized: --discovery-srv is not needed",
                      members[0].log_text())
        self.check_writer(writer, members)

    def test_same_member_list_as_etcd34(self):
        # etcd 3.4 on _etcd-server-ssl records (https peers, auto TLS), then dolmen on the same
        # records with the same flags, names, addresses and ports: the same member list, ids
        # included, and dolmen's members talk TLS to each other on the https URLs they found.
        etcd = self.new_members("etcd", secure_peer=True)
        self.publish(etcd, server_service="_etcd-server-ssl._tcp")
        for m in etcd:
            m.start()
        etcd_list = self.wait_formed(etcd)
        self.assertEqual([{k: x.get(k) for k in ("ID", "name", "peerURLs", "clientURLs")}
                          for x in etcd_list], self.expected_members(etcd, "https"))
        for m in etcd:
            m.stop()

        dolmen = self.new_members("dolmen", secure_peer=True)
        for d, e in zip(dolmen, etcd):
            d.client_port, d.peer_port = e.client_port, e.peer_port
        self.publish(dolmen, server_service="_etcd-server-ssl._tcp")
        for m in dolmen:
            m.start()
        dolmen_list = self.wait_formed(dolmen)

        def decided(lst):
            return [{k: x.get(k) for k in ("ID", "name", "peerURLs", "clientURLs")} for x in lst]
        self.assertEqual(decided(dolmen_list), decided(etcd_list))
        self.assertIn("got bootstrap from DNS for etcd-server at n2=https://m2.%s:%d"
                      % (DOMAIN, dolmen[1].peer_port), dolmen[1].log_text())
        # Replicated over the https peer URLs: a put on n1 is read on n3.
        rc, out, err = self.etcdctl("put", "over", "tls", endpoints=dolmen[0].client_url)
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        rc, out, err = self.etcdctl("get", "over", "--print-value-only",
                                    endpoints=dolmen[2].client_url)
        self.assertEqual((rc, out.strip()), (0, "tls"), err)

    def test_service_name_suffixes_the_records_on_both_sides(self):
        # --discovery-srv-name prod: _etcd-server(-ssl)-prod and _etcd-client-prod, for the
        # servers and for etcdctl. One member each, etcd 3.4 on -ssl records as above.
        for kind, service, secure in (("etcd", "_etcd-server-ssl-prod._tcp", True),
                                      ("dolmen", "_etcd-server-prod._tcp", False)):
            m, = self.new_members(kind, count=1, secure_peer=secure,
                                  extra=["--discovery-srv-name", "prod"])
            self.ns.start_dns({m.host: m.ip}, [(service, m.host, m.peer_port),
                                               ("_etcd-client-prod._tcp", m.host, m.client_port)])
            m.start()
            listed = self.wait_formed([m])
            scheme = "https" if secure else "http"
            self.assertEqual(listed[0]["peerURLs"],
                             ["%s://%s.%s:%d" % (scheme, m.host, DOMAIN, m.peer_port)])
            # (etcdctl's `endpoint health` without --cluster ignores --discovery-srv.)
            rc, out, err = self.etcdctl("--discovery-srv-name", "prod", "member", "list")
            self.assertEqual(rc, 0, err)
            self.assertIn(", started, n1, %s://" % scheme, out)
            rc, out, err = self.etcdctl("--discovery-srv-name", "prod", "put", "k", kind)
            self.assertEqual((rc, out.strip()), (0, "OK"), err)
            m.stop()

    def test_missing_records_give_etcds_error(self):
        etcd, = self.new_members("etcd", count=1, secure_peer=True)
        dolmen, = self.new_members("dolmen", count=1, first_index=2,
                                   extra=["--experimental-discovery-srv-wait", "0s"])
        self.ns.start_dns({}, [])  # the domain exists, its SRV names do not: NXDOMAIN
        etcd.start()
        dolmen.start()
        etcd_error = ("error setting up initial cluster: error querying DNS SRV records for "
                      "_etcd-server-ssl lookup _etcd-server-ssl._tcp.%s on 127.0.0.1:53: "
                      "no such host" % DOMAIN)
        self.assertExitsWith(etcd, etcd_error)
        # dolmen asks for both services as etcd 3.5 does: etcd 3.4's text, then the second's.
        self.assertExitsWith(dolmen, etcd_error + "; error querying DNS SRV records for "
                             "_etcd-server lookup _etcd-server._tcp.%s on 127.0.0.1:53: "
                             "no such host" % DOMAIN)
        self.assertNotIn("DNS SRV discovery attempt", dolmen.log_text())  # 0s: one attempt

    def test_a_refusing_server_is_server_misbehaving_as_in_etcd(self):
        # dnsmasq serves only example.test and answers REFUSED for other.test.
        self.ns.start_dns({}, [])
        etcd, = self.new_members("etcd", count=1, secure_peer=True)
        dolmen, = self.new_members("dolmen", count=1, first_index=2,
                                   extra=["--experimental-discovery-srv-wait", "0s"])
        for m in (etcd, dolmen):
            m.domain = "other.test"
            m.start()
        etcd_error = ("error setting up initial cluster: error querying DNS SRV records for "
                      "_etcd-server-ssl lookup _etcd-server-ssl._tcp.other.test on "
                      "127.0.0.1:53: server misbehaving")
        self.assertExitsWith(etcd, etcd_error)
        self.assertExitsWith(dolmen, etcd_error + "; error querying DNS SRV records for "
                             "_etcd-server lookup _etcd-server._tcp.other.test on 127.0.0.1:53: "
                             "server misbehaving")

    def test_waits_a_bounded_time_and_then_fails(self):
        dolmen, = self.new_members("dolmen", count=1,
                                   extra=["--experimental-discovery-srv-wait", "2s"])
        self.ns.start_dns({}, [])
        started = time.monotonic()
        dolmen.start()
        self.assertExitsWith(dolmen, "no such host")
        elapsed = time.monotonic() - started
        text = dolmen.log_text()
        # 0.5 s, then 1 s: three attempts in about 1.5 s, then the error.
        self.assertIn("DNS SRV discovery attempt 2 failed", text)
        self.assertIn("gave up after 3 attempts", text)
        self.assertLess(elapsed, 15.0)

    def test_member_not_in_records_is_refused_with_the_reason(self):
        # Records name m2 and m3; the member advertises 127.0.0.1 (m1), which is in no record.
        etcd = self.new_members("etcd", secure_peer=True)
        self.publish(etcd, server_service="_etcd-server-ssl._tcp", listed=etcd[1:])
        etcd[0].start()
        reason = "cannot find local etcd member \"n1\" in SRV records"
        self.assertExitsWith(etcd[0], "error setting up initial cluster: " + reason)

        dolmen = self.new_members("dolmen", first_index=1,
                                  extra=["--experimental-discovery-srv-wait", "1s"])
        for d, e in zip(dolmen, etcd):
            d.client_port, d.peer_port = e.client_port, e.peer_port
        self.publish(dolmen, listed=dolmen[1:])
        dolmen[0].start()
        self.assertExitsWith(dolmen[0], "error setting up initial cluster: " + reason)

    def test_etcd34_ignores_plain_records(self):
        # Why the etcd reference above runs on -ssl records: with only _etcd-server records,
        # etcd 3.4 fails on the -ssl lookup (dolmen, like 3.5, uses them).
        etcd, = self.new_members("etcd", count=1)
        self.publish([etcd])
        etcd.start()
        self.assertExitsWith(etcd, "error querying DNS SRV records for _etcd-server-ssl")

    def test_initial_cluster_and_discovery_srv_together_are_refused_as_etcd(self):
        message = ("multiple discovery or bootstrap flags are set. Choose one of "
                   "\"initial-cluster\", \"discovery\" or \"discovery-srv\"")
        for kind in ("etcd", "dolmen"):
            m, = self.new_members(kind, count=1, first_index=1 if kind == "etcd" else 2,
                                  extra=["--initial-cluster", "x=http://127.0.0.9:2380"])
            m.start()
            self.assertExitsWith(m, message)


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dolmen", default=os.environ.get("DOLMEN_BIN"))
    parser.add_argument("--etcd", default="/usr/bin/etcd")
    parser.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args, rest = parser.parse_known_args()
    for name in ("dolmen", "etcd", "etcdctl"):
        path = getattr(args, name)
        if not path or not os.access(path, os.X_OK):
            print("FAIL: --%s %r is not an executable file" % (name, path))
            sys.exit(1)
    vars(CONFIG).update({k: os.path.abspath(v) for k, v in vars(args).items()
                         if isinstance(v, str)}, keep=args.keep)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
