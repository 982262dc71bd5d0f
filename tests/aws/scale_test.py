#!/usr/bin/env python3
"""Groups of five under --discovery-aws-asg (issue 17 item 7), each scenario with a writer running
throughout and no acknowledged put lost:

  - five instances form a cluster from nothing (no --initial-cluster anywhere); then two of the
    five are replaced one after the other (each dead member removed after the grace period, each
    replacement joined as a learner and promoted);
  - a scale-up 3 -> 5 over TLS (https client URLs with client-cert auth, certificates from a
    throwaway CA, peer auto-TLS): the group's desired capacity grows and two instances start at
    once; each asks the running cluster over https, presenting its certificate; they join as
    learners one at a time (--max-learners 1: the second is refused "too many learner
    members" until the first is promoted, and retries), and both end as voters; then a sixth
    instance with a certificate from another CA is refused at the handshake, and rather than
    take that for "no cluster" and bootstrap a second one, it waits and stops with the reason.

Run: /usr/bin/python3 tests/aws/scale_test.py --dolmen build/cmd/dolmen/dolmen
     [--etcdctl /usr/bin/etcdctl] [--keep]
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import asg_test  # noqa: E402
import replacement_test  # noqa: E402  (ScenarioCase: the writer, the leader, the member lists)
import tls_certs  # noqa: E402  (on the path asg_test set)

GRACE = ["--discovery-aws-asg-removal-grace", "2s"]


class FiveInstancesTest(replacement_test.ScenarioCase):

    def test_five_form_from_nothing_then_two_are_replaced_in_turn(self):
        started = time.monotonic()
        emu, live = self.start_group(5, spare=2, extra=GRACE)
        for k, ip in enumerate(("127.0.0.6", "127.0.0.7")):
            leader = self.leader_of(live)
            dead = next(m for m in live if m is not leader)
            dead.proc.kill()
            dead.proc.wait(asg_test.STOP_WAIT_S)
            live.remove(dead)
            new = emu.replace(dead.instance.instance_id, ip)
            replacement = self.new_member(new, self.aws_env(new), GRACE)
            replacement.start()
            live.append(replacement)
            self.wait_members(live, "replacement %d of 2 joined" % (k + 1))
            self.assertIn("adding this member as a learner", replacement.log_text())
            self.assertIn("dead-member removal: voter %s" % dead.instance.instance_id,
                          self.leader_of(live).log_text())
        acked = self.check_nothing_lost(live, emu)
        sys.stderr.write("five instances, two replaced: %d acknowledged puts, %.1f s\n"
                         % (acked, time.monotonic() - started))

    def test_scale_up_from_three_to_five_one_learner_at_a_time_over_tls(self):
        started = time.monotonic()
        self.use_tls()
        emu, live = self.start_group(3, spare=3, extra=GRACE)
        emu.set_desired(5)
        added = [self.new_member(i, self.aws_env(i), GRACE)
                 for i in (emu.add_instance("127.0.0.4"), emu.add_instance("127.0.0.5"))]
        for m in added:
            m.start()
        live += added
        self.wait_members(live, "the scale-up to five")
        logs = [m.log_text() for m in added]
        for text in logs:
            # Asked over https, presenting the member's certificate (--client-cert-auth).
            self.assertRegex(text, r"already form a cluster \(answered at https://127\.0\.0\.\d:%d\)"
                             r": adding this member as a learner" % self.client_port)
        # One learner at a time: whichever asked second was refused while the first was one.
        self.assertTrue(any("too many learner members in cluster" in t for t in logs),
                        "neither new member was refused for --max-learners")
        self.assertEqual(self.leader_of(live).log_text().count("auto-promote-learners: promoted"),
                         2)
        # A sixth instance whose certificate comes from another CA: the running cluster's client
        # port accepts its connection but refuses the handshake. That is not "no cluster yet":
        # it must not bootstrap a second cluster; it waits, then stops and says why.
        emu.set_desired(6)
        stranger = emu.add_instance("127.0.0.6")
        other_ca = tls_certs.TestCa(os.path.join(self.root, "other-ca"), "another CA")
        m = asg_test.Member(self.root, stranger, self.peer_port, self.client_port,
                            self.aws_env(stranger),
                            GRACE + ["--experimental-discovery-aws-asg-wait", "2s"],
                            tls=(other_ca.cert,) + other_ca.issue("stranger", "stranger",
                                                                  ips=[stranger.ip]))
        self.members.append(m)
        m.start()
        self.assertNotEqual(m.wait_exit(), 0)
        text = m.log_text()
        self.assertIn("the group's members listen but did not answer MemberList (https://", text)
        self.assertIn("error setting up initial cluster", text)
        self.assertNotIn("adding this member as a learner", text)
        self.assertFalse(os.path.exists(os.path.join(m.data_dir, "member")), "it bootstrapped")
        emu.terminate(stranger.instance_id)
        emu.set_desired(5)
        acked = self.check_nothing_lost(live, emu)
        sys.stderr.write("scale-up 3 -> 5: %d acknowledged puts, %.1f s\n"
                         % (acked, time.monotonic() - started))


if __name__ == "__main__":
    asg_test.main()
