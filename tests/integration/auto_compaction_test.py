#!/usr/bin/python3
"""Auto-compaction (--auto-compaction-mode, --auto-compaction-retention), etcd 3.4 against
dolmen with the same flags (docs/maintenance.md):

  - periodic with a 2 s retention: a revision written just now is still readable; within a
    bounded wait an overwritten revision is compacted on its own (`etcdctl get --rev` answers
    "etcdserver: mvcc: required revision has been compacted", as on etcd), the latest value
    stays, and the server logged the compaction;
  - revision mode with a retention of 5 revisions: etcd checks every 5 minutes, too slow for a
    test, so dolmen's check interval is shortened by its test-only hook
    DOLMEN_TEST_REVISION_COMPACTION_INTERVAL_MS; dolmen compacts to exactly current - 5, and
    etcd (no hook) has not compacted within that time, as its 5-minute interval says;
  - a bad mode or retention is refused at start with etcd's message.

Nothing sleeps to synchronise: the waits poll with a deadline.

Run: /usr/bin/python3 auto_compaction_test.py --dolmen PATH [unittest args]
"""

import os
import subprocess
import time

import harness
from harness import IntegrationTestCase

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
COMPACTION_WAIT_S = 30.0  # the periodic compaction is due 2-5 s after the writes
POLL_S = 0.2
EXIT_WAIT_S = 15.0
LOG_WAIT_S = 10.0
REVISION_HOOK = "DOLMEN_TEST_REVISION_COMPACTION_INTERVAL_MS"
# What each server logs once it compacted on its own.
LOGGED = {"dolmen": "auto compaction (", "etcd": "Finished auto-compaction at revision"}


def wait_compacted(server, revision, key="k"):
    """Polls `get KEY --rev=REVISION` until it fails as compacted; returns the seconds it took,
    or raises after COMPACTION_WAIT_S."""
    def not_compacted(answer):
        return answer[0] == 0 or COMPACTED not in answer[2]

    start = time.monotonic()
    last = harness.retry_while(lambda: server.etcdctl("get", key, "--rev=%d" % revision),
                               not_compacted, COMPACTION_WAIT_S, POLL_S)
    if not_compacted(last):
        raise harness.ServerError("%s: revision %d not compacted within %.0fs (last: %r)"
                                  % (server.label, revision, COMPACTION_WAIT_S, last))
    return time.monotonic() - start


def wait_logged(server, text):
    """Polls the server's log for `text` (the line follows the compaction's apply by a moment);
    True once it is there, False after LOG_WAIT_S."""
    return harness.poll_until(lambda: text in server.log_text(), LOG_WAIT_S, POLL_S)


class AutoCompactionTest(IntegrationTestCase):

    def test_periodic_compacts_what_is_older_than_the_retention(self):
        servers, ids = self.start_pair(["--auto-compaction-mode=periodic",
                                        "--auto-compaction-retention=2s"])
        self.same(servers, ids, "put", "k", "v1", out_has="OK")  # revision 2
        self.same(servers, ids, "put", "k", "v2", out_has="OK")  # revision 3
        # Younger than the retention: not compacted yet on either server.
        self.same(servers, ids, "get", "k", "--rev=2", out_has="k\nv1")
        self.on_each(servers, lambda s: wait_compacted(s, 2))
        self.same(servers, ids, "get", "k", "--rev=2", rc=1, out_has=COMPACTED)
        self.same(servers, ids, "get", "k", out_has="k\nv2")
        for server in servers:
            self.assertTrue(wait_logged(server, LOGGED[server.kind]),
                            "%s did not log %r" % (server.label, LOGGED[server.kind]))

    def test_revision_mode_keeps_the_last_revisions(self):
        os.environ[REVISION_HOOK] = "200"  # read by dolmen only; etcd ignores it
        self.addCleanup(os.environ.pop, REVISION_HOOK, None)
        servers, ids = self.start_pair(["--auto-compaction-mode=revision",
                                        "--auto-compaction-retention=5"])
        for i in range(10):  # revisions 2..11
            self.same(servers, ids, "put", "k", "v%d" % i, out_has="OK")
        etcd, under_test = servers
        if under_test.kind == "dolmen":
            took = wait_compacted(under_test, 5)  # compacted to 11 - 5 = 6
            rc, out, err = under_test.etcdctl("get", "k", "--rev=6")
            self.assertEqual((rc, out), (0, "k\nv4\n"), err)
            self.assertTrue(wait_logged(
                under_test, "auto compaction (revision, retention 5 revisions) at revision 6: done"))
            self.assertLess(took, 60)
        # etcd checks every 5 minutes: nothing is compacted yet (this also holds for the
        # reference run, where both sides are etcd).
        for server in servers:
            if server.kind == "etcd":
                rc, out, err = server.etcdctl("get", "k", "--rev=2")
                self.assertEqual((rc, out), (0, "k\nv0\n"), "%s: %s" % (server.label, err))

    def test_bad_values_are_refused_like_etcd(self):
        cases = (("--auto-compaction-mode=hourly", 'unknown auto-compaction-mode "hourly"'),
                 ("--auto-compaction-retention=abc",
                  'error parsing CompactionRetention: time: invalid duration "abc"'))
        for flag, message in cases:
            for make in (harness.etcd_server, harness.dolmen_server):
                server = self.new_server(make(extra_flags=[flag]))
                server.spawn()
                try:
                    status = server.proc.wait(EXIT_WAIT_S)
                except subprocess.TimeoutExpired:
                    status = None
                self.assertIsNotNone(status, "%s %s: still running" % (server.label, flag))
                server.stop()
                if server.kind == "dolmen":
                    self.assertNotEqual(status, 0, "%s %s" % (server.label, flag))
                # etcd 3.4 logs the refusal of the mode and exits 0 (embed's Validate fails
                # before etcdmain picks a status); what matters is that it does not serve.
                self.assertIn(message, harness.readable_log(server.log_text()),
                              "%s %s" % (server.label, flag))


if __name__ == "__main__":
    harness.main()
