#!/usr/bin/env python3
"""--discovery-aws-asg: "instances" are dolmen processes on 127.0.0.1/.2/.3, each with its own
IMDSv2 endpoint from tests/aws/emulator.py, which also answers the AutoScaling and EC2 Query
APIs (SigV4 checked with botocore). The members get no --initial-cluster, no --name and no
advertise URLs: everything comes from the group, as the lab's script builds it.

  - a group with one instance still Pending: the members wait (and say so), then form the
    cluster once it is InService; member names are the instance ids, peer URLs the private
    IPs with --listen-peer-urls' port, the token the group name; a concurrent writer loses no
    acknowledged write; a member restarted with its data dir resumes without asking the group;
  - a scale-up 3 -> 4: the new instance joins the running cluster as a learner;
  - faults: IMDS unreachable, a bad signature, throttling and 5xx (retried, logged, and finally
    a clear error and a non-zero exit); --initial-cluster with --discovery-aws-asg refused.

Run: /usr/bin/python3 tests/aws/asg_test.py --dolmen build/cmd/dolmen/dolmen
     [--etcdctl /usr/bin/etcdctl] [--keep] [AsgTest.test_x]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import emulator  # noqa: E402
import harness  # noqa: E402  (pick_free_port, setpriv prefix, clean env, readable_log)
import tls_certs  # noqa: E402  (a throwaway CA, for the scenarios over TLS)

FORM_TIMEOUT_S = 40.0  # three members discover, elect and publish (generous for ASan)
EXIT_TIMEOUT_S = 30.0
WAIT_LOG_TIMEOUT_S = 30.0
MIN_ACKED = 10
WRITER_MAX_S = 240
ETCDCTL_TIMEOUT_S = 15.0
STOP_WAIT_S = 10.0
WRITER = os.path.join(HERE, "..", "discovery", "writer.py")

CONFIG = argparse.Namespace(dolmen=None, etcdctl="/usr/bin/etcdctl", keep=False)


def port_free_on_all(ips):
    """A port free on every address in `ips` now (members share the port, as in the lab)."""
    for _ in range(50):
        port = harness.pick_free_port(ips[0])
        ok = True
        for ip in ips[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((ip, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % ips)


class Member:
    """One dolmen process for one emulated instance."""

    def __init__(self, root, instance, peer_port, client_port, env, extra=(), data_dir=None,
                 tls=None):
        self.instance = instance
        # (CA, certificate, key) for a member whose client URL is https with client-cert auth
        # (its peers use peer auto-TLS, as in the lab); None for plain http.
        self.tls = tls
        self.ip = instance.ip
        self.peer_port, self.client_port = peer_port, client_port
        self.env, self.extra = env, list(extra)
        self.dir = os.path.join(root, instance.ip)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "server.log")
        # Another instance's data dir: a volume re-attached to this instance.
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.proc = None

    @property
    def client_url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.ip, self.client_port)

    def command(self):
        tls = []
        if self.tls:
            ca, cert, key = self.tls
            tls = ["--trusted-ca-file", ca, "--cert-file", cert, "--key-file", key,
                   "--client-cert-auth", "--peer-auto-tls"]
        return [CONFIG.dolmen, "--discovery-aws-asg", "auto",
                "--data-dir", self.data_dir,
                "--listen-peer-urls", "%s://%s:%d" % ("https" if self.tls else "http", self.ip,
                                                      self.peer_port),
                "--listen-client-urls", self.client_url,
                "--heartbeat-interval", "50", "--election-timeout", "500"] + tls + self.extra

    def start(self):
        cmd = self.command()
        env = harness._clean_env()
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            log.write(("=== %s %s\n" % (" ".join("%s=%s" % kv for kv in self.env.items()),
                                        " ".join(cmd))).encode())
            log.flush()
            self.proc = subprocess.Popen(harness._die_with_parent_prefix() + cmd,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir, env=env)

    def wait_exit(self, timeout=EXIT_TIMEOUT_S):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("member %s still running after %.0f s" % (self.ip, timeout))

    def stop(self):
        if self.proc is not None:
            harness.stop_process(self.proc)

    def log_text(self):
        if not os.path.exists(self.log_path):
            return "(never started)\n"
        with open(self.log_path, "rb") as f:
            return harness.readable_log(f.read().decode("utf-8", "replace"))


class AsgTestCase(unittest.TestCase):
    """A group in the emulator and its members, stopped and (on failure) logged after each
    test; scenarios derive from it (AsgTest here, replacement_test.py)."""

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self.root = tempfile.mkdtemp(prefix="dolmen-asg-")
        self.members = []
        self.emu = None
        self.ca = None  # a TestCa once use_tls() is called
        self.writer = None
        try:
            return super().run(result)
        finally:
            if self.writer is not None:
                harness.stop_process(self.writer)
            for m in self.members:
                m.stop()
            if self.emu is not None:
                self.emu.stop()
            if len(result.failures) + len(result.errors) > before:
                for m in self.members:
                    sys.stderr.write("\n----- member %s log -----\n%s" % (m.ip,
                                                                         m.log_text()[-6000:]))
                if self.emu is not None:
                    sys.stderr.write("\n----- emulator calls -----\n%r\n" % self.emu.calls)
            if not CONFIG.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def new_group(self, count, **kwargs):
        self.emu = emulator.Emulator(**kwargs)
        for k in range(count):
            self.emu.add_instance("127.0.0.%d" % (k + 1))
        self.emu.start()
        ips = [i.ip for i in self.emu.instances]
        self.peer_port, self.client_port = port_free_on_all(ips), port_free_on_all(ips)
        return self.emu

    def aws_env(self, instance, role=False, secret=None):
        """The SDK variables pointing at the emulator; keys from the environment unless `role`
        (then the member takes the instance role's keys from IMDS)."""
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": instance.imds_url,
               "AWS_ENDPOINT_URL": self.emu.api_url}
        if not role:
            env.update(AWS_ACCESS_KEY_ID=self.emu.access_key,
                       AWS_SECRET_ACCESS_KEY=secret or self.emu.secret_key)
        return env

    def use_tls(self):
        """Members started after this serve https client URLs with client-cert auth, each with a
        certificate for its own address from a throwaway CA (valid for client authentication
        too: the member presents it when it asks the group's cluster to add it); the test's
        tools present a client certificate of their own."""
        self.ca = tls_certs.TestCa(os.path.join(self.root, "ca"), "dolmen asg test CA")
        cert, key = self.ca.issue("tools", "tools")
        self.tool_tls = ["--cacert", self.ca.cert, "--cert", cert, "--key", key]

    def new_member(self, instance, env, extra=(), data_dir=None):
        tls = None
        if self.ca is not None:
            tls = (self.ca.cert,) + self.ca.issue(instance.ip, instance.instance_id,
                                                  ips=[instance.ip])
        m = Member(self.root, instance, self.peer_port, self.client_port, env, extra, data_dir,
                   tls)
        self.members.append(m)
        return m

    def etcdctl(self, endpoint, *args):
        tls = self.tool_tls if self.ca is not None else []
        proc = subprocess.run([CONFIG.etcdctl, "--endpoints", endpoint, "--dial-timeout=2s",
                               "--command-timeout=5s"] + tls + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=ETCDCTL_TIMEOUT_S, env=harness._clean_env())
        return proc.returncode, proc.stdout, proc.stderr

    def wait_for(self, what, predicate, timeout, members=()):
        deadline = time.monotonic() + timeout
        while not predicate():
            for m in members:
                if m.proc.poll() is not None:
                    self.fail("member %s exited with %s while waiting for %s"
                              % (m.ip, m.proc.returncode, what))
            if time.monotonic() > deadline:
                self.fail("not within %.0f s: %s" % (timeout, what))
            time.sleep(0.1)

    def member_lists(self, members):
        lists = []
        for m in members:
            rc, out, _ = self.etcdctl(m.client_url, "member", "list", "-w", "json")
            lists.append(json.loads(out)["members"] if rc == 0 else None)
        return lists

    def wait_formed(self, members):
        names = sorted(m.instance.instance_id for m in members)
        box = {}

        def formed():
            lists = self.member_lists(members)
            box["last"] = lists
            return all(lst is not None and sorted(x.get("name", "") for x in lst) == names
                       for lst in lists)
        self.wait_for("the cluster of %s formed" % names, formed, FORM_TIMEOUT_S, members)
        return sorted(box["last"][0], key=lambda x: x["name"])

    def start_writer(self, ips):
        """python3-etcd3 puts on every address the group will ever use (members not started yet
        refuse at once and the writer moves on), until the stop file appears; bounded."""
        self.writer_stop = os.path.join(self.root, "writer.stop")
        self.writer_out = os.path.join(self.root, "writer.out")
        out = open(self.writer_out, "wb")
        self.writer = subprocess.Popen(
            harness._die_with_parent_prefix() + [
                sys.executable, WRITER, "--stop-file", self.writer_stop,
                "--max-seconds", str(WRITER_MAX_S), "--max-puts", "100000"] +
            (self.tool_tls if self.ca is not None else []) +
            ["%s:%d" % (ip, self.client_port) for ip in ips],
            stdout=out, stderr=subprocess.STDOUT, env=harness._clean_env())
        out.close()

    def acked(self):
        with open(self.writer_out) as f:
            return [line.strip() for line in f if line.startswith("w/")]

    def stop_writer_and_check(self, members, at_least):
        """Stops the writer; more than `at_least` puts were acknowledged and every one of them
        is on every member in `members`. Returns the acknowledged keys."""
        acked = self.stop_writer()
        self.assertGreater(len(acked), at_least)
        for m in members:
            rc, out, err = self.etcdctl(m.client_url, "get", "w/", "--prefix", "--keys-only")
            self.assertEqual(rc, 0, err)
            missing = set(acked) - set(out.split())
            self.assertFalse(missing, "acknowledged writes lost on %s: %s" % (m.ip,
                                                                             sorted(missing)[:5]))
        return acked

    def stop_writer(self):
        open(self.writer_stop, "w").close()
        try:
            self.writer.wait(STOP_WAIT_S)
        finally:
            harness.stop_process(self.writer)
        return self.acked()


class AsgTest(AsgTestCase):

    # -- scenarios -----------------------------------------------------------------------------

    def test_pending_group_waits_then_forms_from_the_group(self):
        emu = self.new_group(3)
        late = emu.instances[2]
        emu.set_state(late.instance_id, "Pending")
        # Member 1 signs with keys from the environment, members 2 and 3 with the instance role's
        # from IMDS; the region comes from IMDS (no AWS_REGION).
        members = [self.new_member(i, self.aws_env(i, role=(k > 0)))
                   for k, i in enumerate(emu.instances)]
        for m in members:
            m.start()
        # The writer runs from before the cluster exists to the end (4: the scale-up's address).
        self.start_writer([i.ip for i in emu.instances] + ["127.0.0.4"])
        self.wait_for("every member saying it waits for %s" % late.instance_id,
                      lambda: all("waiting for %s Pending" % late.instance_id in m.log_text()
                                  for m in members), WAIT_LOG_TIMEOUT_S, members)
        emu.set_state(late.instance_id, "InService")
        listed = self.wait_formed(members)

        by_id = {i.instance_id: i for i in emu.instances}
        for entry in listed:
            inst = by_id[entry["name"]]
            self.assertEqual(entry["peerURLs"], ["http://%s:%d" % (inst.ip, self.peer_port)])
            self.assertEqual(entry["clientURLs"], ["http://%s:%d" % (inst.ip, self.client_port)])
        expected = ",".join("%s=http://%s:%d" % (i.instance_id, i.ip, self.peer_port)
                            for i in sorted(emu.instances, key=lambda i: i.instance_id))
        for m in members:
            self.assertIn("initial cluster " + expected, m.log_text())
            self.assertIn("token etcd-asg", m.log_text())
        self.assertGreaterEqual(emu.role_fetches, 2, "members 2 and 3 used the instance role")

        self.wait_for("%d acknowledged puts" % MIN_ACKED, lambda: len(self.acked()) >= MIN_ACKED,
                      30.0, members)

        # Scale-up 3 -> 4: the new instance finds the running cluster and joins as a learner
        # (promotion is --auto-promote-learners' work, not discovery's).
        emu.set_desired(4)
        fourth = emu.add_instance("127.0.0.4")
        joiner = self.new_member(fourth, self.aws_env(fourth))
        joiner.start()

        def learner_listed():
            lst = self.member_lists(members[:1])[0] or []
            return any(x.get("name") == fourth.instance_id and x.get("isLearner") for x in lst)
        self.wait_for("%s listed as a started learner" % fourth.instance_id, learner_listed,
                      FORM_TIMEOUT_S, members + [joiner])
        self.assertIn("adding this member as a learner", joiner.log_text())
        self.assertIn("state existing", joiner.log_text())
        voters = [x for x in self.member_lists(members[:1])[0] if not x.get("isLearner")]
        self.assertEqual(len(voters), 3)

        # A restart with its data dir resumes as it is: the group is not asked again at start
        # (the leader's dead-member removal asks it every round, so the emulator's count of calls
        # cannot tell; the restarted member's log can).
        members[0].stop()
        before = self.acked()[-1]
        members[0].start()
        self.wait_for("member 1 back", lambda: self.etcdctl(
            members[0].client_url, "get", before)[1].strip().startswith(before),
            FORM_TIMEOUT_S, members)
        restarted = members[0].log_text().split("\n=== ")[-1]
        self.assertIn("is already initialized", restarted)
        self.assertNotIn("to have its desired capacity InService", restarted)

        # No acknowledged put lost, on any voter, from the group's wait to the restart.
        self.stop_writer_and_check(members, at_least=MIN_ACKED)

    def test_faults_end_in_a_clear_error(self):
        emu = self.new_group(1)
        inst = emu.instances[0]
        closed = harness.pick_free_port()  # nothing listens there
        short_wait = ["--experimental-discovery-aws-asg-wait", "2s"]

        imds_down = self.new_member(inst, dict(self.aws_env(inst),
                                               AWS_EC2_METADATA_SERVICE_ENDPOINT=(
                                                   "http://127.0.0.1:%d" % closed)), short_wait)
        imds_down.start()
        self.assertNotEqual(imds_down.wait_exit(), 0)
        log = imds_down.log_text()
        self.assertIn("AWS instance metadata (IMDSv2) attempt 2 failed", log)
        self.assertIn("error setting up initial cluster", log)
        self.assertIn("127.0.0.1:%d" % closed, log)

        bad_signature = self.new_member(inst, self.aws_env(inst, secret="wrong"), short_wait)
        bad_signature.start()
        self.assertNotEqual(bad_signature.wait_exit(), 0)
        log = bad_signature.log_text()
        self.assertIn("AutoScaling DescribeAutoScalingInstances failed: HTTP 403 "
                      "SignatureDoesNotMatch", log)
        self.assertNotIn("retrying", log.split("AWS credentials from")[1])
        self.assertEqual(emu.calls, [("DescribeAutoScalingInstances", "SignatureDoesNotMatch")])

        emu.inject("5xx", 1000)
        always_5xx = self.new_member(inst, self.aws_env(inst), short_wait)
        always_5xx.start()
        self.assertNotEqual(always_5xx.wait_exit(), 0)
        log = always_5xx.log_text()
        self.assertIn("HTTP 500 InternalFailure", log)
        self.assertIn("retrying in", log)
        self.assertIn("error setting up initial cluster: AutoScaling DescribeAutoScalingInstances"
                      " failed after", log)

        refused = self.new_member(inst, self.aws_env(inst), ["--initial-cluster",
                                                             "a=http://127.0.0.1:2"])
        refused.start()
        self.assertNotEqual(refused.wait_exit(), 0)
        self.assertIn("--discovery-aws-asg and --initial-cluster are both set", refused.log_text())

    def test_throttling_and_5xx_are_retried_then_the_member_starts(self):
        emu = self.new_group(1)
        inst = emu.instances[0]
        emu.inject("throttle", 2)
        emu.inject("5xx", 1)
        m = self.new_member(inst, dict(self.aws_env(inst), AWS_REGION=emu.region))
        m.start()
        self.wait_formed([m])
        log = m.log_text()
        self.assertIn("HTTP 400 Throttling: Rate exceeded", log)
        self.assertIn("HTTP 500 InternalFailure", log)
        self.assertEqual([o for _, o in emu.calls[:3]],
                         ["Throttling", "Throttling", "InternalFailure"])


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dolmen", required=True)
    parser.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    parser.add_argument("--keep", action="store_true")
    args, rest = parser.parse_known_args()
    args.dolmen = os.path.abspath(args.dolmen)  # members run in their own directories
    vars(CONFIG).update(vars(args))
    for path in (CONFIG.dolmen, CONFIG.etcdctl):
        if not os.access(path, os.X_OK):
            parser.error("%s is not an executable file" % path)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
