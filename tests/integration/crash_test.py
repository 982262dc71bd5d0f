#!/usr/bin/python3
"""Acknowledged writes survive kill -9.

Against dolmen only (etcd passes it too: run with --dolmen /usr/bin/etcd). Each round, WRITERS
threads (one python3-etcd3 client each) put distinct keys with known values; a put counts as
acknowledged once the server answered it. At a random moment while puts are in flight the server
gets SIGKILL, is restarted on the same data directory and ports, and then:
  - every acknowledged key of every round so far has its value, version 1 and the mod_revision
    the put was answered with;
  - every key present was written by a writer (acknowledged, or the one put in flight when the
    connection broke) with the value that writer sent;
  - the revision has not gone back below the highest acknowledged one, and new writes succeed.
The seed is printed; DOLMEN_CRASH_SEED=N replays the same kill delays and values (thread timing
still varies).

Run: /usr/bin/python3 crash_test.py --dolmen PATH [unittest args]
"""

import os
import random
import sys
import threading
import time

import etcd3
from etcd3 import etcdrpc

import harness
from harness import IntegrationTestCase

ROUNDS = 3
WRITERS = 4
MAX_PUTS_PER_WRITER = 1500      # per round; bounds the data even on a very fast server
FIRST_ACK_TIMEOUT_S = 10.0      # writers must get at least one answer before we kill
KILL_DELAY_S = (0.2, 1.2)       # after the first acknowledgement
CLIENT_TIMEOUT_S = 3
JOIN_TIMEOUT_S = 20.0
PREFIX = b"crash/"

SEED = int(os.environ.get("DOLMEN_CRASH_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)


class Writer(threading.Thread):
    """Puts crash/r<round>/w<id>/<n> until stopped, the server breaks the connection, or the
    bound is reached. `acked` maps key -> (value, revision of the put's answer); `in_flight` is
    the (key, value) whose put failed, whose outcome is unknown."""

    def __init__(self, server, round_no, writer_no, token):
        super().__init__(name="writer-%d-%d" % (round_no, writer_no), daemon=True)
        self.server = server
        self.round_no = round_no
        self.writer_no = writer_no
        self.token = token
        self.acked = {}
        self.attempted = {}
        self.in_flight = None
        self.error = None
        self.first_ack = threading.Event()
        self.stop = threading.Event()

    def run(self):
        client = etcd3.client(host=harness.LOOPBACK, port=self.server.client_port,
                              timeout=CLIENT_TIMEOUT_S)
        try:
            for n in range(MAX_PUTS_PER_WRITER):
                if self.stop.is_set():
                    return
                key = b"crash/r%d/w%d/%05d" % (self.round_no, self.writer_no, n)
                value = b"%s-%d-%d-%d" % (self.token, self.round_no, self.writer_no, n)
                self.attempted[key] = value
                try:
                    revision = client.put(key, value).header.revision
                except Exception as e:  # noqa: BLE001 - the kill makes puts fail; expected
                    self.in_flight = (key, value)
                    self.error = "%s: %s" % (type(e).__name__, e)
                    return
                self.acked[key] = (value, revision)
                self.first_ack.set()
        finally:
            client.close()


def read_all(server):
    """Every key under PREFIX with the header revision, through one raw RangeRequest."""
    client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
    try:
        request = etcdrpc.RangeRequest(key=PREFIX, range_end=b"crash0")
        response = client.kvstub.Range(request, client.timeout)
        return response.header.revision, {kv.key: kv for kv in response.kvs}
    finally:
        client.close()


class CrashTest(IntegrationTestCase):

    def test_acknowledged_writes_survive_kill9(self):
        rng = random.Random(SEED)
        sys.stderr.write("crash_test seed %d (replay: DOLMEN_CRASH_SEED=%d)\n" % (SEED, SEED))
        server = self.new_server(harness.dolmen_server())
        server.start()
        acked, attempted = {}, {}
        max_acked_revision = 0
        for round_no in range(ROUNDS):
            token = b"%08x" % rng.getrandbits(32)
            writers = [Writer(server, round_no, w, token) for w in range(WRITERS)]
            for writer in writers:
                writer.start()
            deadline = time.monotonic() + FIRST_ACK_TIMEOUT_S
            while not any(w.first_ack.is_set() for w in writers) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertTrue(any(w.first_ack.is_set() for w in writers),
                            "round %d: no put acknowledged within %.0fs; errors: %r"
                            % (round_no, FIRST_ACK_TIMEOUT_S, [w.error for w in writers]))
            time.sleep(rng.uniform(*KILL_DELAY_S))
            running = sum(w.is_alive() for w in writers)
            server.kill9()
            for writer in writers:
                writer.stop.set()
            for writer in writers:
                writer.join(JOIN_TIMEOUT_S)
                self.assertFalse(writer.is_alive(), "%s did not stop" % writer.name)

            round_acked = {k: v for w in writers for k, v in w.acked.items()}
            sys.stderr.write("round %d: %d puts acknowledged, %d writers running at the kill, "
                             "%d puts in flight\n" % (round_no, len(round_acked), running,
                                                      sum(w.in_flight is not None
                                                          for w in writers)))
            revisions = [rev for _, rev in round_acked.values()]
            self.assertEqual(len(revisions), len(set(revisions)),
                             "two acknowledged puts answered with the same revision")
            acked.update(round_acked)
            for writer in writers:
                attempted.update(writer.attempted)  # includes the put in flight, if any
            max_acked_revision = max([max_acked_revision] + revisions)

            server.spawn()  # same data directory, same ports
            server.wait_ready()
            revision, stored = read_all(server)
            self.check_state(round_no, acked, attempted, revision, stored, max_acked_revision)

            client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
            try:
                after = client.put(b"after-restart/%d" % round_no, b"ok").header.revision
            finally:
                client.close()
            self.assertGreater(after, revision, "a put after restart must advance the revision")
        server.stop()

    def check_state(self, round_no, acked, attempted, revision, stored, max_acked_revision):
        where = "after round %d restart" % round_no
        self.assertGreaterEqual(revision, max_acked_revision,
                                "%s: revision went back below an acknowledged put" % where)
        lost = [k for k in acked if k not in stored]
        self.assertEqual(lost[:10], [], "%s: %d acknowledged keys lost (first 10 shown)"
                         % (where, len(lost)))
        wrong = []
        for key, (value, put_revision) in acked.items():
            kv = stored[key]
            if (kv.value, kv.version, kv.mod_revision, kv.create_revision) != \
                    (value, 1, put_revision, put_revision):
                wrong.append((key, value, put_revision, kv.value, kv.version, kv.mod_revision,
                              kv.create_revision))
        self.assertEqual(wrong[:10], [], "%s: %d acknowledged keys read back wrong: (key, "
                         "value, revision, stored value, version, mod, create)"
                         % (where, len(wrong)))
        unexpected = [(k, kv.value) for k, kv in stored.items()
                      if attempted.get(k) != kv.value]
        self.assertEqual(unexpected[:10], [], "%s: keys no writer wrote with that value" % where)


if __name__ == "__main__":
    harness.main()
