#!/usr/bin/env python3
"""Peer TLS (docs/tls.md): 3-member clusters whose members talk https to each other, on
127.0.0.1, 127.0.0.2 and 127.0.0.3 (all of 127.0.0.0/8 is loopback on Linux), run against etcd
3.4 (the reference) and dolmen with the same flags.

  - mutual TLS (--peer-cert-file/--peer-key-file/--peer-trusted-ca-file/--peer-client-cert-auth,
    --peer-crl-file; --peer-cert-allowed-cn on m1 and m2, --peer-cert-allowed-hostname on m3):
    the cluster forms and replicates; kill -9 of the leader, writes resume on the survivors; a
    process with a certificate from another CA cannot get the membership (refused at the
    handshake, logged with the remote address and the reason); a new member added with
    `member add`, with neither the allowed CN nor the allowed hostname, cannot join and its
    log says why (m1 and m2 log the CN refusal, m3 the hostname one); m3 restarted with a
    certificate revoked in a CRL swapped on disk is refused (each side logs why) while the
    other two go on writing; then, while a client writes, a member's peer
    certificate and key are renewed on disk (it presents the new ones on new connections; the
    cut-off member comes back with its own files) and the peer CA is rotated: old+new bundle,
    every certificate reissued by the new CA, then the new CA alone; a member restarted under
    it, presenting a dialing certificate of its own (etcd 3.5's --peer-client-cert-file),
    rejoins and its forwarded lease keep-alive goes through. etcd 3.4 does the renewal but
    keeps the CA it started with (etcd-io/etcd#11555): pinned; the rotation is dolmen's only;
  - the lab's command (seeds/000_ce8181b196f91668.txt) with its peer URLs made https:
    --auto-tls --peer-auto-tls, client URLs https://IP plus http://127.0.0.1; etcdctl over https
    lists the 3 members;
  - kubeadm's flag set on one member: mutual TLS on both ports, --client-cert-auth=true,
    --peer-client-cert-auth=true, --snapshot-count=10000, --experimental-initial-corrupt-check,
    --experimental-watch-progress-notify-interval=5s; etcdctl with a client certificate.

Certificates are made at run time with the openssl CLI (tests/integration/tls_certs.py). Every
process is stopped by PID; every wait polls with a deadline.
"""
import json
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import CONFIG, ClusterTestCase  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import tls_certs  # noqa: E402

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
# The name every member's peer certificate carries as a DNS SAN beside its addresses: what
# --peer-cert-allowed-hostname asks for on the member that checks the hostname, not the CN.
PEER_DNS = "member.dolmen.test"
WAIT_S = 30.0
REFUSAL_WAIT_S = 15.0
RELOAD_WAIT_S = 15.0
# The writer that runs through the certificate changes: bounded in count and time.
WRITER_MAX_PUTS = 100000
WRITER_MAX_S = 120.0


class TlsMember(cluster.Member):
    """A member on its own loopback address with https peer URLs. `client_urls` overrides the
    client listen/advertise list; `etcdctl_flags` are given to every etcdctl call."""

    def __init__(self, name, binary, root_dir, host, tls_flags=()):
        super().__init__(name, binary, root_dir)
        self.host = host
        self.client_port = harness.pick_free_port(host)
        self.peer_port = harness.pick_free_port(host)
        self.client_urls = None  # --listen-client-urls (default: endpoint)
        self.advertise_urls = None  # --advertise-client-urls (default: client_urls)
        self.extra_args = list(tls_flags)
        self.etcdctl_flags = []

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.client_port)

    @property
    def peer_url(self):
        return "https://%s:%d" % (self.host, self.peer_port)

    def command(self):
        cmd = super().command()
        listen = self.client_urls or self.endpoint
        cmd[cmd.index("--listen-client-urls") + 1] = listen
        cmd[cmd.index("--advertise-client-urls") + 1] = self.advertise_urls or listen
        return cmd

    def etcdctl(self, *args, timeout=cluster.ETCDCTL_TIMEOUT_S, stdin=None):
        return cluster.run_etcdctl(self.endpoint, list(args) + self.etcdctl_flags,
                                   timeout=timeout, stdin=stdin)


class PeerTlsTest(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dolmen-peer-tls-certs-")
        cls.ca = tls_certs.TestCa(os.path.join(cls.tmp, "ca"), "dolmen-peer-ca")
        cls.other_ca = tls_certs.TestCa(os.path.join(cls.tmp, "other"), "other-ca")
        # A member dials from 127.0.0.1 whatever its own address (the kernel's source address
        # for loopback), so every peer certificate also names 127.0.0.1, as kubeadm's do:
        # etcd checks a connecting peer's SANs against the address it connects from.
        cls.peer_certs = {h: member_cert(cls.ca, "peer-" + h, h) for h in HOSTS}
        # Right CA, wrong identity: neither the allowed CN nor the allowed hostname.
        cls.intruder_cert = cls.ca.issue("intruder", "intruder", ips=HOSTS)
        cls.foreign_cert = cls.other_ca.issue("foreign", "member", ips=HOSTS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def new_root(self):
        """A directory for this test's members, removed (after their logs were printed if the
        test failed) when it ends; start_members registers the members with it."""
        self.shown = cluster.Cluster(0)
        self._clusters.append(self.shown)
        return self.shown.dir

    def start_members(self, members, token):
        """Starts `members` as a new cluster and waits until each answers `endpoint health`.
        They are stopped by PID when the test ends, and their logs printed if it failed."""
        self.shown.members = list(members)
        initial = ",".join("%s=%s" % (m.name, m.peer_url) for m in members)
        for m in members:
            m.configure(initial, "new", token, 10000)
        for m in members:
            m.spawn()
        for m in members:
            self.wait_healthy(m)

    def wait_healthy(self, member, timeout=WAIT_S):
        def healthy():
            if member.proc is None or member.proc.poll() is not None:
                self.fail("%s exited:\n%s" % (member.name, member.log_text()[-4000:]))
            try:
                return member.etcdctl("endpoint", "health", timeout=10)[0] == 0
            except Exception:
                return False
        self.assertEventually(healthy, timeout, "%s healthy" % member.name)

    def peer_flags(self, host, cert=None, extra=()):
        cert = cert or self.peer_certs[host]
        return ["--peer-cert-file", cert[0], "--peer-key-file", cert[1],
                "--peer-trusted-ca-file", self.ca.cert, "--peer-client-cert-auth"] + list(extra)

    def live_peer_files(self, root, member, extra=()):
        """Copies of the member's peer certificate, key and CA in a directory of its own;
        member.live maps "cert", "key", "ca" to them. Returns the flags naming them."""
        live = os.path.join(root, "live-" + member.name)
        os.makedirs(live, exist_ok=True)
        member.live = {k: os.path.join(live, k + ".pem") for k in ("cert", "key", "ca")}
        cert, key = self.peer_certs[member.host]
        for name, source in (("cert", cert), ("key", key), ("ca", self.ca.cert)):
            shutil.copy(source, member.live[name])
        return ["--peer-cert-file", member.live["cert"], "--peer-key-file", member.live["key"],
                "--peer-trusted-ca-file", member.live["ca"], "--peer-client-cert-auth"] + list(extra)

    def check_peer_certificate_reload(self, members):
        """Issue 14 item 4 between members. m3 is stopped; m1 and m2 run on their live files.
        A client writes to m1 throughout; no write may fail."""
        m1, m2, m3 = members
        m1_pid = m1.proc.pid  # nothing restarts m1 while its files change
        new_ca = tls_certs.TestCa(os.path.join(self.tmp, "rotated-%d" % os.getpid()),
                                  "dolmen-peer-ca-2")
        # Probes of m1's peer port, as a member on 127.0.0.1 would connect (etcd's SAN check).
        old_probe = self.ca.issue("probe-old", "member", ips=["127.0.0.1"])
        new_probe = new_ca.issue("probe-new", "member", ips=["127.0.0.1"])
        writer = BoundedWriter(m1)
        self.addCleanup(writer.stop)
        writer.wait_progress(self, 5)

        # Renewal by the same CA (etcd does this too): m1's key and certificate replaced on
        # disk; a new connection gets the new certificate.
        renewed = member_cert(self.ca, "renewed-m1", m1.host)
        replace_file(m1.live["key"], renewed[1])
        replace_file(m1.live["cert"], renewed[0])
        want = der_of(renewed[0])
        self.assertEventually(lambda: peer_handshake(m1, old_probe, self.ca.cert) == want,
                              RELOAD_WAIT_S, "m1 presents its renewed certificate")
        # m3 back with its own files: new connections both ways, m1's renewed certificate
        # checked by m3; it catches up with the writer.
        m3.spawn()
        self.wait_healthy(m3)
        self.wait_caught_up(m3, writer)

        # CA rotation, step 1: every member trusts old and new CA, and has both CAs' CRLs
        # (dolmen checks the CRL of every certificate of a chain, as --client-crl-file does).
        bundle = os.path.join(self.tmp, "bundle-%d.pem" % os.getpid())
        with open(bundle, "wb") as f:
            f.write(read_bytes(self.ca.cert) + read_bytes(new_ca.cert))
        crls = os.path.join(self.tmp, "crls-%d.pem" % os.getpid())
        with open(crls, "wb") as f:
            f.write(read_bytes(self.ca.write_crl(crls + ".old")) +
                    read_bytes(new_ca.write_crl(crls + ".new")))
        replace_file(self.peer_crl, crls)
        for m in members:
            replace_file(m.live["ca"], bundle)
        if CONFIG.server != "dolmen":
            self.assertEqual((m1.proc.pid, m1.proc.poll()), (m1_pid, None), "m1 restarted")
            # etcd keeps the CA pool it started with (etcd-io/etcd#11555): a peer certificate
            # of the new CA is refused although the bundle on disk has it.
            answer = peer_handshake(m1, new_probe, bundle)
            self.assertTrue(refused_by_server(answer),
                            "etcd 3.4 trusted a CA added after its start: %r" % answer)
            writer.finish(self)
            return
        self.assertEventually(lambda: isinstance(peer_handshake(m1, new_probe, bundle), bytes),
                              RELOAD_WAIT_S, "m1 trusts the new CA from its bundle")
        # A follower (not m1, which the writer uses) will restart under the new CA alone; it
        # stops now and comes back with etcd 3.5's --peer-client-cert-file: a serverAuth-only
        # certificate on its port and another one it presents when it dials (peers refuse a
        # serverAuth-only certificate from a dialing member).
        leader = self.leader_of(members)
        follower = m3 if leader is not m3 else m2
        follower.stop()
        # Step 2: every member's certificate reissued by the new CA, in place.
        for m in members:
            cert = member_cert(new_ca, "new-" + m.name, m.host, client=m is not follower)
            replace_file(m.live["key"], cert[1])
            replace_file(m.live["cert"], cert[0])
        dialing = member_cert(new_ca, "dial-" + follower.name, follower.host)
        # Step 3: the new CA alone. Old-CA certificates are refused from now on.
        for m in members:
            replace_file(m.live["ca"], new_ca.cert)
        self.assertEventually(lambda: refused_by_server(peer_handshake(m1, old_probe, bundle)),
                              RELOAD_WAIT_S, "m1 refuses a certificate of the old CA")
        self.assertEqual(peer_handshake(m1, new_probe, new_ca.cert),
                         der_of(m1.live["cert"]), "m1 presents its new-CA certificate")
        # Why the follower needs its dialing certificate: a serverAuth-only one is refused
        # from a dialing peer.
        server_only = new_ca.issue("probe-server-only", "member", ips=["127.0.0.1"],
                                   client=False)
        self.assertTrue(refused_by_server(peer_handshake(m1, server_only, new_ca.cert)))
        # The follower back: every connection it makes, and every one made to it, is under the
        # new CA alone. Its lease keep-alive is forwarded to the leader over a new gRPC channel
        # (which presents the dialing certificate too).
        follower.extra_args = follower.extra_args + ["--peer-client-cert-file", dialing[0],
                                                     "--peer-client-key-file", dialing[1]]
        follower.spawn()
        self.wait_healthy(follower)
        self.wait_caught_up(follower, writer)
        rc, out, err = follower.etcdctl("lease", "grant", "60")
        self.assertEqual(rc, 0, err)
        lease = out.split()[1]
        rc, out, err = follower.etcdctl("lease", "keep-alive", "--once", lease)
        self.assertEqual((rc, out.strip()), (0, "lease %s keepalived with TTL(60)" % lease), err)
        writer.finish(self)
        self.assertEqual((m1.proc.pid, m1.proc.poll()), (m1_pid, None),
                         "m1 restarted or exited while its files changed")

    def wait_caught_up(self, member, writer):
        """Polls (serializable reads on `member`) until it holds a key the writer wrote after
        this call began."""
        key = writer.last_written(self)
        self.assertEventually(
            lambda: member.etcdctl("get", key, "--print-value-only", "--consistency=s",
                                   timeout=10)[1].strip() != "",
            WAIT_S, "%s holds %s" % (member.name, key))

    def leader_of(self, members):
        def agreed():
            ids = set()
            by_id = {}
            for m in members:
                rc, out, _ = m.etcdctl("endpoint", "status", "-w", "json", timeout=10)
                if rc != 0:
                    return None
                st = json.loads(out)[0]["Status"]
                ids.add(st.get("leader", 0))
                by_id[st["header"]["member_id"]] = m
            return by_id.get(ids.pop()) if len(ids) == 1 else None
        return self.assertEventually(agreed, WAIT_S, "an agreed leader")

    def put_get(self, writer, reader, key, value):
        rc, out, err = writer.etcdctl("put", key, value)
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        rc, out, err = reader.etcdctl("get", key, "--print-value-only")
        self.assertEqual((rc, out), (0, value + "\n"), err)

    # -- tests ---------------------------------------------------------------------------------

    def test_mutual_tls_cluster(self):
        root = self.new_root()
        # Every member checks revocations in one CRL file, which the test replaces below.
        self.peer_crl = self.ca.write_crl(os.path.join(root, "peer-crl.pem"))
        crl = ["--peer-crl-file", self.peer_crl]
        # m1 and m2 allow the CN "member", m3 the hostname PEER_DNS (etcd: one or the other),
        # so the cluster forming and replicating is the accepted case of both.
        allowed = {"m1": ["--peer-cert-allowed-cn", "member"],
                   "m2": ["--peer-cert-allowed-cn", "member"],
                   "m3": ["--peer-cert-allowed-hostname", PEER_DNS]}
        members = [TlsMember("m%d" % (i + 1), CONFIG.binary, root, h) for i, h in enumerate(HOSTS)]
        for m in members:  # files of their own, which the reload check below replaces
            m.extra_args = self.live_peer_files(root, m, allowed[m.name] + crl)
        own_files = {m.name: list(m.extra_args) for m in members}
        self.start_members(members, "peer-tls")
        m1, m2, m3 = members
        rc, out, err = m2.etcdctl("member", "list", "-w", "json")
        self.assertEqual(rc, 0, err)
        peer_urls = sorted(u for m in json.loads(out)["members"] for u in m["peerURLs"])
        self.assertEqual(peer_urls, sorted(m.peer_url for m in members))
        self.put_get(m1, m3, "replicated", "over-tls")
        self.put_get(m3, m2, "back", "again")

        # kill -9 of the leader: the other two elect one over TLS and go on.
        leader = self.leader_of(members)
        leader.kill9()
        survivors = [m for m in members if m is not leader]
        new_leader = self.leader_of(survivors)
        self.assertIsNot(new_leader, leader)
        self.put_get(survivors[0], survivors[1], "after-failover", "still-tls")
        leader.spawn()
        self.wait_healthy(leader)
        rc, out, err = leader.etcdctl("get", "after-failover", "--print-value-only")
        self.assertEqual((rc, out), (0, "still-tls\n"), err)

        # A process with a certificate of another CA asks for the membership: refused at the
        # handshake, and the members log who and why.
        intruder = TlsMember("intruder", CONFIG.binary, root, "127.0.0.2",
                             self.peer_flags("127.0.0.2", cert=self.foreign_cert))
        self.shown.members.append(intruder)
        self.join_refused(intruder, members)

        why = ("unable to get local issuer certificate" if CONFIG.server == "dolmen"
               else "certificate signed by unknown authority")
        self.assertEventually(lambda: rejections(members, why), REFUSAL_WAIT_S,
                              "the refusal logged with the remote address and why")
        self.put_get(m1, m2, "after-intruder", "unaffected")

        self.check_wrong_identity_cannot_join(members, allowed, crl)
        self.check_revoked_member_cut_off(members, allowed["m3"] + crl)

        m3.stop()
        m3.extra_args = own_files[m3.name]
        self.check_peer_certificate_reload(members)

    def join_refused(self, newcomer, members):
        """Starts `newcomer` as a member joining `members`' cluster; it must exit, failing."""
        newcomer.configure(",".join("%s=%s" % (m.name, m.peer_url)
                                    for m in members + [newcomer]), "existing", "peer-tls", 10000)
        newcomer.spawn()
        rc = newcomer.wait_exit(WAIT_S)
        self.assertIsNotNone(rc, "%s is still running" % newcomer.name)
        self.assertNotEqual(rc, 0)

    def check_wrong_identity_cannot_join(self, members, allowed, crl):
        """A new member, added with `member add`, whose certificate (right CA) has neither the
        allowed CN nor the allowed hostname: it cannot get the membership and exits saying
        why; m1 and m2 log the CN refusal, m3 the hostname one."""
        m1, m2, m3 = members
        joiner = TlsMember("m4", CONFIG.binary, self.shown.dir, "127.0.0.2",
                           self.peer_flags("127.0.0.2", cert=self.intruder_cert,
                                           extra=allowed["m1"] + crl))
        self.shown.members.append(joiner)
        # etcd refuses a member add ("unhealthy cluster") until every member has been
        # connected for 5 s, which the leader restarted above has not: retried until then (twice
        # the usual wait: on a loaded CI machine etcd 3.4 once took longer than 30 s).
        def add_once():
            """m4's id (hex) once it is a member. An add whose answer the client lost (its
            timeout under load) may have been applied all the same: a retry then finds it in the
            member list instead of adding again, which etcd refuses for good ("not healthy for
            reconfigure": a member added and never started)."""
            rc, out, _ = m1.etcdctl("member", "list", "-w", "json")
            if rc == 0:
                for m in json.loads(out).get("members", []):
                    if joiner.peer_url in m.get("peerURLs", []):
                        return format(m["ID"], "x")
            added = re.search(r"Member ([0-9a-f]+) added", m1.etcdctl(
                "member", "add", "m4", "--peer-urls=" + joiner.peer_url)[1])
            return added.group(1) if added else None

        joiner_id = self.assertEventually(add_once, 2 * WAIT_S, "m4 added")
        self.join_refused(joiner, members)
        # Its own log says the peers refused its certificate.
        own_why = ("the peer refused this member's certificate" if CONFIG.server == "dolmen"
                   else "tls: bad certificate")
        self.assertIn(own_why, harness.readable_log(joiner.log_text()))
        if CONFIG.server == "dolmen":
            cn_why = 'certificate CN "intruder" is not the allowed CN "member"'
            hostname_why = 'do not name the allowed host "%s"' % PEER_DNS
        else:
            cn_why = hostname_why = "client certificate authentication failed"
        self.assertEventually(lambda: rejections([m1, m2], cn_why), REFUSAL_WAIT_S,
                              "the CN refusal logged")
        self.assertEventually(lambda: rejections([m3], hostname_why), REFUSAL_WAIT_S,
                              "the hostname refusal logged")
        rc, out, err = m1.etcdctl("member", "remove", joiner_id)
        self.assertEqual(rc, 0, err)
        self.put_get(m1, m3, "after-wrong-cn", "three-members")

    def check_revoked_member_cut_off(self, members, m3_flags):
        """m3 restarted with a certificate of the right CA and identity, revoked in a new CRL
        put on disk meanwhile (read on the next connection, no restart): m1 and m2 refuse it
        at the handshake and log why with its address, and go on with a quorum of two; in
        dolmen nothing m3 sends reaches Raft (its proposals fail)."""
        m1, m2, m3 = members
        revoked = member_cert(self.ca, "revoked-m3", m3.host)
        self.ca.revoke(revoked[0])
        replace_file(self.peer_crl, self.ca.write_crl(self.peer_crl + ".revoked"))
        m3.stop()
        m3.extra_args = self.peer_flags(m3.host, cert=revoked, extra=m3_flags)
        m3.spawn()
        why = "certificate revoked" if CONFIG.server == "dolmen" else "revoked"
        self.assertEventually(lambda: rejections([m1, m2], why), REFUSAL_WAIT_S,
                              "the revocation refusal logged")
        # m3 may have led when it was stopped: a put sent before m1 and m2 noticed would be
        # forwarded to the gone leader and wait out the request timeout (on etcd too), so the
        # put waits for the two to agree on a leader among themselves.
        self.leader_of([m1, m2])
        self.put_get(m1, m2, "while-m3-is-refused", "quorum-of-two")
        if CONFIG.server == "dolmen":
            # Nothing m3 sends reaches Raft: its proposal fails and appears nowhere. Dolmen also
            # checks the CRL when it dials, so m3 gets nothing either. etcd 3.4 checks its CRL
            # only when it accepts, and its members dial the streams on which a peer sends to
            # them: m1 and m2 go on dialing m3, and m3's put goes through (seen on etcd
            # 3.4.23; not asserted, it depends on timing).
            rc, _, _ = m3.etcdctl("put", "from-revoked-m3", "x", "--command-timeout=2s")
            self.assertNotEqual(rc, 0, "a put through the revoked member succeeded")
            rc, out, err = m1.etcdctl("get", "from-revoked-m3", "--print-value-only")
            self.assertEqual((rc, out), (0, ""), err)
            rc, out, _ = m3.etcdctl("get", "while-m3-is-refused", "--print-value-only",
                                    "--consistency=s", "--command-timeout=3s")
            self.assertEqual(out, "", "m3 got a write although it is refused")
        self.assertIsNone(m3.proc.poll(), "m3 exited")

    def test_lab_command_with_https_peers(self):
        """The lab's ExecStart flags with the peer URL scheme made consistent (https
        everywhere), one member per loopback address: https client URL on the member's
        address, http on 127.0.0.1, --auto-tls and --peer-auto-tls."""
        root = self.new_root()
        members = []
        for i, host in enumerate(HOSTS):
            m = LabMember("i-%d" % (i + 1), CONFIG.binary, root, host,
                          ["--auto-tls", "--peer-auto-tls"])
            m.http_port = harness.pick_free_port()
            m.client_urls = "https://%s:%d,http://127.0.0.1:%d" % (host, m.client_port,
                                                                  m.http_port)
            members.append(m)
        self.start_members(members, "lab-asg")
        # etcdctl over https (a self-signed certificate: no verification) lists all three.
        m2 = members[1]
        rc, out, err = cluster.run_etcdctl(
            "https://%s:%d" % (m2.host, m2.client_port),
            ["member", "list", "--insecure-transport=false", "--insecure-skip-tls-verify"])
        self.assertEqual(rc, 0, err)
        lines = sorted(out.strip().splitlines())
        self.assertEqual(len(lines), 3, out)
        for m in members:
            fields = next((line.split(", ") for line in lines if (" %s, " % m.name) in line),
                          None)
            self.assertIsNotNone(fields, "%s missing from %s" % (m.name, out))
            self.assertEqual(fields[1:4], ["started", m.name, m.peer_url])
            self.assertEqual(sorted(fields[4].split(",")),
                             sorted(m.client_urls.split(",")))
        self.put_get(members[0], members[2], "lab", "https-peers")
        for m in members:
            self.assertTrue(os.path.isfile(os.path.join(m.data_dir, "fixtures", "peer",
                                                        "cert.pem")), m.name)
            if CONFIG.server == "dolmen":
                # Beyond etcd: the start-up log says that peers are not authenticated.
                self.assertIn("peer auto-TLS: traffic between members is encrypted with "
                              "self-signed certificates, which no member verifies: it protects "
                              "against eavesdropping, not against an impostor",
                              harness.readable_log(m.log_text()))

    def test_kubeadm_flags(self):
        """kubeadm's etcd flags (its static pod manifest) on one member: mutual TLS on the client
        and the peer port; etcdctl with a client certificate."""
        root = self.new_root()
        node = "127.0.0.2"
        server = self.ca.issue("kube-server", "node1", ips=[node, "127.0.0.1"],
                               dns=["localhost"])
        peer = self.ca.issue("kube-peer", "node1", ips=[node, "127.0.0.1"], dns=["localhost"])
        client = self.ca.issue("kube-client", "kube-etcd-healthcheck-client")
        m = KubeadmMember("node1", CONFIG.binary, root, node)
        local_port = harness.pick_free_port()
        metrics_port = harness.pick_free_port()
        m.client_urls = "https://127.0.0.1:%d,https://%s:%d" % (local_port, node, m.client_port)
        m.advertise_urls = "https://%s:%d" % (node, m.client_port)
        m.extra_args = [
            "--cert-file=" + server[0], "--client-cert-auth=true",
            "--experimental-initial-corrupt-check=true",
            "--experimental-watch-progress-notify-interval=5s",
            "--key-file=" + server[1],
            "--listen-metrics-urls=http://127.0.0.1:%d" % metrics_port,
            "--peer-cert-file=" + peer[0], "--peer-client-cert-auth=true",
            "--peer-key-file=" + peer[1], "--peer-trusted-ca-file=" + self.ca.cert,
            "--snapshot-count=10000", "--trusted-ca-file=" + self.ca.cert]
        m.etcdctl_flags = ["--cacert", self.ca.cert, "--cert", client[0], "--key", client[1]]
        self.start_members([m], "kubeadm")
        self.put_get(m, m, "/registry/ns/default", "k8s")
        rc, out, err = cluster.run_etcdctl("https://127.0.0.1:%d" % local_port,
                                           ["get", "/registry/ns/default", "--print-value-only"]
                                           + m.etcdctl_flags)
        self.assertEqual((rc, out), (0, "k8s\n"), err)
        rc, out, err = m.etcdctl("member", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn("started, node1, https://%s:%d, https://%s:%d"
                      % (node, m.peer_port, node, m.client_port), out)
        # Without a client certificate the client port refuses.
        rc, _, _ = cluster.run_etcdctl("https://127.0.0.1:%d" % local_port,
                                       ["get", "x", "--cacert", self.ca.cert,
                                        "--command-timeout=3s"])
        self.assertNotEqual(rc, 0)


class BoundedWriter:
    """Puts w-0, w-1, ... to one member over one python3-etcd3 connection on a thread, until
    stop() or WRITER_MAX_PUTS / WRITER_MAX_S; records every failure."""

    def __init__(self, member):
        self.client = cluster.client(member, timeout=10)
        self.written = []
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + WRITER_MAX_S
        for i in range(WRITER_MAX_PUTS):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            try:
                self.client.put("w-%d" % i, str(i))
                self.written.append(i)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                self.failures.append(repr(e))

    def wait_progress(self, test, count):
        """Waits until `count` more puts were acknowledged (bounded); fails on a failure."""
        target = len(self.written) + count
        test.assertEventually(lambda: len(self.written) >= target or self.failures,
                              WAIT_S, "the writer progresses")
        test.assertEqual(self.failures, [], "writes failed")

    def last_written(self, test):
        self.wait_progress(test, 1)
        return "w-%d" % self.written[-1]

    def stop(self):
        self._stop.set()
        self._thread.join(WRITER_MAX_S + 15)
        self.client.close()

    def finish(self, test):
        """Lets it write a little more, stops it: no write failed, and it never stalled."""
        self.wait_progress(test, 10)
        self.stop()
        test.assertFalse(self._thread.is_alive(), "the writer did not stop")
        test.assertEqual(self.failures, [], "writes failed")


def member_cert(ca, name, host, client=True):
    """A member's peer certificate: CN "member", its address, 127.0.0.1 (the address members
    dial from, for etcd's SAN check) and PEER_DNS. Returns (cert, key)."""
    return ca.issue(name, "member", ips=[host, "127.0.0.1"], dns=[PEER_DNS], client=client)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def replace_file(path, source):
    """Replaces `path` by a copy of `source` through a rename, as certificate tools do."""
    shutil.copy(source, path + ".new")
    os.rename(path + ".new", path)


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def peer_handshake(member, cert, ca):
    """A TLS 1.2 handshake with the member's peer port from 127.0.0.1, presenting `cert`
    (cert, key) and verifying the server against the `ca` file (no host check). TLS 1.2
    because its handshake ends only after the server checked our certificate. Returns the
    server's certificate (DER bytes), or the error text if the handshake failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.load_verify_locations(ca)
    context.load_cert_chain(cert[0], cert[1])
    try:
        with socket.create_connection((member.host, member.peer_port), timeout=5,
                                      source_address=("127.0.0.1", 0)) as sock:
            with context.wrap_socket(sock) as tls:
                return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as e:
        return str(e) or repr(e)


def refused_by_server(answer):
    """Whether peer_handshake's answer is the server refusing our certificate (a TLS alert),
    not a failure to connect."""
    return isinstance(answer, str) and "alert" in answer.lower()


# etcd 3.4's default logger (capnslog) writes the refusal as text.
_ETCD_REJECTED_RE = re.compile(r'rejected connection from "(127\.0\.0\.\d+:\d+)" \(error "([^"]*)"')


def rejections(members, why):
    """Whether a member logged a rejected peer connection whose error has `why`, with the
    remote address: etcd's "rejected connection" line, which dolmen writes too (as a zap JSON
    line with remote-addr and error)."""
    for m in members:
        for line in m.log_text().splitlines():
            match = _ETCD_REJECTED_RE.search(line)
            if match and why in match.group(2):
                return True
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (isinstance(entry, dict) and entry.get("msg") == "rejected connection"
                    and why in str(entry.get("error", ""))
                    and str(entry.get("remote-addr", "")).startswith("127.0.0.")):
                return True
    return False


class LabMember(TlsMember):
    """etcdctl through the member's plaintext http://127.0.0.1 URL, as the lab's check does."""

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.http_port


class KubeadmMember(TlsMember):
    """etcdctl through the member's https URL on its node address."""

    @property
    def endpoint(self):
        return "https://%s:%d" % (self.host, self.client_port)


if __name__ == "__main__":
    cluster.main()
