#!/usr/bin/env python3
"""Checks tests/aws/emulator.py against the real thing's clients: the lab's own shell procedure
(lab_procedure.sh) with Debian's awscli finds the group, waits while an instance is Pending and
prints the same --initial-cluster the emulator's group implies; awscli's wrong secret and an
unsigned request are refused as AWS refuses them; IMDSv2 tokens are required.

Run: /usr/bin/python3 tests/aws/emulator_test.py [EmulatorTest.test_x]
"""

import os
import shutil
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import emulator  # noqa: E402

AWS_TIMEOUT_S = 180.0  # awscli starts slowly (seconds per call on a loaded 2-core host)


class EmulatorTest(unittest.TestCase):
    def setUp(self):
        self.assertIsNotNone(shutil.which("aws", path="/usr/bin"),
                             "awscli (/usr/bin/aws) is missing: run scripts/install-deps.sh")
        self.emu = emulator.Emulator(imds_v1=True)
        for k in range(3):
            self.emu.add_instance("127.0.0.%d" % (k + 1))
        self.emu.start()
        self.addCleanup(self.emu.stop)

    def aws_env(self, secret=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=self.emu.access_key,
                   AWS_SECRET_ACCESS_KEY=secret or self.emu.secret_key,
                   AWS_DEFAULT_REGION=self.emu.region, AWS_PAGER="",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   PATH="/usr/bin:/bin", HOME=os.environ.get("HOME", "/tmp"))
        return env

    def run_lab(self, instance):
        env = self.aws_env()
        env.update(IMDS=instance.imds_url, ENDPOINT=self.emu.api_url, LAB_SLEEP_UNIT="0.1")
        return subprocess.run([os.path.join(HERE, "lab_procedure.sh")], env=env,
                              capture_output=True, text=True, timeout=AWS_TIMEOUT_S)

    def test_lab_procedure_waits_for_pending_then_builds_the_cluster(self):
        pending = self.emu.instances[2]
        self.emu.set_state(pending.instance_id, "Pending")

        # The instance comes InService right after the lab's first look at the group.
        def after(action, outcome):
            if action == "DescribeAutoScalingGroups":
                self.emu.set_state(pending.instance_id, "InService")
        self.emu.after_call = after
        lab = self.run_lab(self.emu.instances[1])
        self.assertEqual(lab.returncode, 0, lab.stdout + lab.stderr)
        self.assertIn("EC2_INSTANCE_ID=%s" % self.emu.instances[1].instance_id, lab.stdout)
        self.assertIn("ASG_NAME=etcd-asg", lab.stdout)
        self.assertIn("wait till all instances are InService", lab.stdout)
        expected = ",".join("%s=https://%s:2380" % (i.instance_id, i.ip)
                            for i in sorted(self.emu.instances, key=lambda i: i.instance_id))
        self.assertIn("ETCD_INITIAL_CLUSTER=" + expected + "\n", lab.stdout)
        self.assertEqual(self.emu.actions(), ["DescribeAutoScalingInstances",
                                              "DescribeAutoScalingGroups",
                                              "DescribeAutoScalingGroups", "DescribeInstances"])

    def test_awscli_with_a_wrong_secret_gets_signature_does_not_match(self):
        p = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.emu.api_url, "ec2",
                            "describe-instances"], env=self.aws_env(secret="wrong"),
                           capture_output=True, text=True, timeout=AWS_TIMEOUT_S)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        self.assertEqual(self.emu.calls, [("DescribeInstances", "SignatureDoesNotMatch")])

    def test_unsigned_request_is_refused(self):
        request = urllib.request.Request(
            self.emu.api_url + "/", method="POST",
            data=b"Action=DescribeAutoScalingGroups&Version=2011-01-01")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        self.assertEqual(caught.exception.code, 403)
        self.assertIn(b"MissingAuthenticationToken", caught.exception.read())

    def test_imdsv2_token_required_when_v1_is_off(self):
        strict = emulator.Emulator()
        inst = strict.add_instance("127.0.0.4")
        strict.start()
        self.addCleanup(strict.stop)
        url = inst.imds_url + "/latest/meta-data/instance-id"
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url, timeout=10)
        self.assertEqual(caught.exception.code, 401)
        token = urllib.request.urlopen(urllib.request.Request(
            inst.imds_url + "/latest/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), timeout=10).read()
        answer = urllib.request.urlopen(urllib.request.Request(
            url, headers={"X-aws-ec2-metadata-token": token.decode()}), timeout=10).read()
        self.assertEqual(answer.decode(), inst.instance_id)


if __name__ == "__main__":
    unittest.main(verbosity=2)
