#!/usr/bin/python3
"""A data dir on a file system that fills up (issue 13, item 4). Dolmen only: etcd 3.4 exits
on the same test and crash-loops.

The member runs on a 32 MiB tmpfs mounted for the test (the tests run as root; a failed mount
fails the test, it does not skip) with 1 MiB WAL segments (--experimental-wal-segment-bytes), so
its free-space reserve is 18 MiB (docs/maintenance.md). Then:
  - puts of 80 kB values until one is refused: it must be with etcd's "etcdserver: mvcc:
    database space exceeded", and `alarm list` must show this member's NOSPACE alarm;
  - another file, written by the test, takes most of what is left (the disk keeps filling from
    outside): a small put is refused too, the member keeps running;
  - every acknowledged key reads back with its value, and no other key but the refused one
    (applied but answered "space exceeded" when the check at apply refused it, as etcd does);
    a watch sees a delete; deletes work;
  - then space is freed (the file removed, the keys deleted, compact, defrag), the alarm
    disarmed, and a put succeeds; no fatal error was logged.
Before the disk guard the member exited with "No space left on device" (or EIO from LMDB) part
way through the puts.

Run: /usr/bin/python3 diskfull_test.py --dolmen PATH [unittest args]
"""

import base64
import json
import os
import subprocess
import sys

import harness
from harness import IntegrationTestCase

TMPFS_BYTES = 32 << 20
SEGMENT_BYTES = 1 << 20
RESERVE_BYTES = 2 * SEGMENT_BYTES + (16 << 20)  # DiskReserveBytes in src/server/disk_guard.h
VALUE_BYTES = 80000
MAX_PUTS = 400  # 32 MiB of 80 kB values: refused well before
LEAVE_FREE_BYTES = 6 << 20  # what the test's own file leaves free: below the reserve, not zero
WATCH_WAIT_S = 15.0
SPACE_EXCEEDED = "etcdserver: mvcc: database space exceeded"


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def value_of(i):
    """A distinct 80 kB value per key (checked byte for byte when read back)."""
    head = ("value-%04d-" % i).encode()
    return (head * (VALUE_BYTES // len(head) + 1))[:VALUE_BYTES].decode()


class DiskFullTest(IntegrationTestCase):

    def mount_tmpfs(self, path):
        os.makedirs(path, exist_ok=True)
        cmd = ["mount", "-t", "tmpfs", "-o", "size=%d" % TMPFS_BYTES, "tmpfs", path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            self.fail("cannot mount a tmpfs for the data dir (%s): rc=%d %s%s"
                      % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
        # Cleanups run last-registered first: this one after the server's stop (registered
        # later by new_server), so nothing holds the mount any more.
        self.addCleanup(self.unmount, path)

    def unmount(self, path):
        proc = subprocess.run(["umount", path], capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            # Still busy (a process we did not stop?): detach it so it goes once released.
            subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
            self.fail("umount %s: %s" % (path, proc.stderr))

    def assert_running(self, server):
        self.assertIsNone(server.proc.poll(), "the member exited:\n" + server.log_text()[-3000:])

    def test_fills_refuses_writes_keeps_serving_and_recovers(self):
        self.assertEqual(harness.CONFIG.dolmen_kind, "dolmen",
                         "dolmen only: etcd 3.4 exits when its disk fills")
        server = harness.dolmen_server(
            extra_flags=["--experimental-wal-segment-bytes", str(SEGMENT_BYTES)])
        self.mount_tmpfs(server.data_dir)
        self.start_servers(server)
        self.assertGreater(free_bytes(server.data_dir), RESERVE_BYTES + 4 * VALUE_BYTES)

        # 1. The member's own puts fill the disk down to the reserve.
        acknowledged = []
        refusal = None
        for i in range(MAX_PUTS):
            rc, _, err = server.etcdctl("put", "fill/%04d" % i, value_of(i))
            if rc != 0:
                refusal = err
                break
            acknowledged.append(i)
        self.assertIsNotNone(refusal, "no put refused after %d puts" % MAX_PUTS)
        sys.stderr.write("\n  %d puts of %d bytes acknowledged, then refused with %d bytes free\n"
                         % (len(acknowledged), VALUE_BYTES, free_bytes(server.data_dir)))
        self.assertIn(SPACE_EXCEEDED, refusal)
        self.assertGreater(len(acknowledged), 20)
        self.assert_running(server)
        rc, out, err = server.etcdctl("alarm", "list")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^memberID:\d+ alarm:NOSPACE \n$")
        self.assertRegex(server.log_text(), r'"msg":"free space on the data dir\'s file system is '
                         r'below the reserve; raising the NOSPACE alarm",.*"reserve-bytes":%d\b'
                         % RESERVE_BYTES)

        # 2. Another file takes most of what is left.
        filler = os.path.join(server.data_dir, "filler")
        room = free_bytes(server.data_dir) - LEAVE_FREE_BYTES
        self.assertGreater(room, 0)
        with open(filler, "wb") as f:
            chunk = b"\xa5" * (1 << 20)
            while room > 0:
                room -= f.write(chunk[:min(room, len(chunk))])
            f.flush()
            os.fsync(f.fileno())
        self.assertLess(free_bytes(server.data_dir), RESERVE_BYTES)
        rc, _, err = server.etcdctl("put", "small", "x")
        self.assertNotEqual(rc, 0)
        self.assertIn(SPACE_EXCEEDED, err)
        self.assert_running(server)

        # 3. Reads: every acknowledged key with its value.
        rc, out, err = server.etcdctl("get", "fill/", "--prefix", "-w", "json")
        self.assertEqual(rc, 0, err)
        kvs = json.loads(out).get("kvs", [])
        got = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
               for kv in kvs}
        # The refused put may be there too: when the guard's sample turned low between the
        # check before proposing and the apply, the put was applied but answered "space
        # exceeded" (etcd's quotaApplierV3; docs/maintenance.md). Nothing else may be.
        refused = len(acknowledged)
        want = ["fill/%04d" % i for i in acknowledged]
        if "fill/%04d" % refused in got:
            want.append("fill/%04d" % refused)
            sys.stderr.write("  the refused put fill/%04d was applied when refused\n" % refused)
        self.assertEqual(sorted(got), want)
        for key in want:
            self.assertEqual(got[key], value_of(int(key[len("fill/"):])), key)

        # 4. A watch sees a delete; deletes work. The watch starts at the next revision, so
        # it reports the delete however long it takes to be established.
        next_revision = int(json.loads(out)["header"]["revision"]) + 1
        log_path = os.path.join(server.tmp_dir, "watch.out")
        with open(log_path, "wb") as watch_out:
            watch = subprocess.Popen(
                harness._die_with_parent_prefix() +
                [harness.CONFIG.etcdctl, "--endpoints=" + server.endpoint, "watch", "fill/",
                 "--prefix", "--rev", str(next_revision)],
                stdout=watch_out, stderr=subprocess.STDOUT, env=harness._clean_env())
        self.addCleanup(self.stop_process, watch)
        first = "fill/%04d" % acknowledged[0]
        rc, out, err = server.etcdctl("del", first)
        self.assertEqual((rc, out), (0, "1\n"), err)
        watched = {"text": ""}

        def delete_reported():  # the watch's output file so far
            self.assertIsNone(watch.poll(), "etcdctl watch exited: %r" % watched["text"])
            with open(log_path, "rb") as f:
                watched["text"] = f.read().decode("utf-8", "replace")
            return "DELETE\n%s\n" % first in watched["text"]

        self.assertTrue(harness.poll_until(delete_reported, WATCH_WAIT_S),
                        "the watch reported no delete within %.0fs: %r"
                        % (WATCH_WAIT_S, watched["text"]))
        self.assert_running(server)

        # 5. Space is freed; writes resume once the alarm is disarmed.
        os.remove(filler)
        rc, _, err = server.etcdctl("del", "fill/", "--prefix")
        self.assertEqual(rc, 0, err)
        rc, out, err = server.etcdctl("get", "any", "-w", "json")
        self.assertEqual(rc, 0, err)
        revision = json.loads(out)["header"]["revision"]
        rc, _, err = server.etcdctl("compact", str(revision), "--physical")
        self.assertEqual(rc, 0, err)
        rc, _, err = server.etcdctl("defrag")
        self.assertEqual(rc, 0, err)
        self.assertGreater(free_bytes(server.data_dir), RESERVE_BYTES)
        rc, out, err = server.etcdctl("alarm", "disarm")
        self.assertEqual(rc, 0, err)
        self.assertIn("alarm:NOSPACE", out)
        rc, out, err = server.etcdctl("put", "after", "freed")
        self.assertEqual((rc, out), (0, "OK\n"), err)
        rc, out, err = server.etcdctl("alarm", "list")
        self.assertEqual((rc, out), (0, ""), err)
        rc, out, err = server.etcdctl("get", "after", "--print-value-only")
        self.assertEqual((rc, out), (0, "freed\n"), err)
        self.assert_running(server)
        # A clean stop: as etcd 3.4, dolmen re-raises SIGTERM once shut down (startup_test.py).
        self.assertEqual(server.stop(), -15, server.log_text()[-3000:])
        self.assertNotIn("fatal", server.log_text())

    @staticmethod
    def stop_process(proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


if __name__ == "__main__":
    harness.main()
