#!/usr/bin/python3
"""Acknowledged writes survive kill -9.

Against dolmen only (etcd passes it too: run with --dolmen /usr/bin/etcd). Each round, WRITERS
threads (one python3-etcd3 client each) write distinct keys with known values: plain puts,
put-if-absent transactions, and put-then-delete; a write counts as acknowledged once the server
answered it. At a random moment while writes are in flight the server gets SIGKILL, is restarted
on the same data directory and ports, and then:
  - every key of every round so far is in the state of its last acknowledged write (a value with
    version 1 and the mod_revision the put was answered with, or deleted), or in the state the
    one write in flight when the connection broke would have left;
  - no key exists that no writer put with that value;
  - the revision has not gone back below the highest acknowledged one, and new writes succeed.
(kill -9 leaves the page cache alone, so this checks the write-ahead order and replay, not fsync.)
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
MAX_PUTS_PER_WRITER = 3000      # per round; bounds the data even on a very fast server
FIRST_ACK_TIMEOUT_S = 10.0      # writers must get at least one answer before we kill
KILL_DELAY_S = (0.1, 0.9)       # after the first acknowledgement
CLIENT_TIMEOUT_S = 3
JOIN_TIMEOUT_S = 20.0
PREFIX = b"crash/"

SEED = int(os.environ.get("DOLMEN_CRASH_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)


# Writer kinds, by writer number modulo 3: plain puts; put-if-absent transactions (compare
# version == 0); and "churn", which puts a key and then deletes it, so deletions are replayed too.
KINDS = ("put", "txn", "churn")


class Writer(threading.Thread):
    """Writes keys crash/r<round>/w<id>/<n> that no other writer touches, until stopped, the
    server breaks the connection, or the bound is reached. Every key is put at most once.

    `acked` maps key -> (state, revision of the answer), state being the value or None for
    deleted, for the last acknowledged write of that key; `in_flight` is (key, state) for the
    write that failed, whose outcome is unknown; `attempted` maps key -> value put."""

    def __init__(self, server, round_no, writer_no, token, first_ack):
        super().__init__(name="writer-%d-%d" % (round_no, writer_no), daemon=True)
        self.server = server
        self.round_no = round_no
        self.writer_no = writer_no
        self.kind = KINDS[writer_no % len(KINDS)]
        self.token = token
        self.acked = {}
        self.attempted = {}
        self.in_flight = None
        self.error = None
        self.first_ack = first_ack  # shared by the round's writers: set at the first ack
        self.stop = threading.Event()

    def operations(self, client):
        """Yields (key, state after, function returning the answer's revision)."""
        t = client.transactions
        for n in range(MAX_PUTS_PER_WRITER):
            key = b"crash/r%d/w%d/%05d" % (self.round_no, self.writer_no, n)
            value = b"%s-%d-%d-%d" % (self.token, self.round_no, self.writer_no, n)
            self.attempted[key] = value
            if self.kind == "txn":
                def put_if_absent(key=key, value=value):
                    ok, responses = client.transaction(compare=[t.version(key) == 0],
                                                       success=[t.put(key, value)], failure=[])
                    if not ok:
                        raise AssertionError("put-if-absent of a new key failed: %r" % key)
                    return responses[0].response_put.header.revision
                yield key, value, put_if_absent
            else:
                yield key, value, lambda key=key, value=value: \
                    client.put(key, value).header.revision
            if self.kind == "churn":
                def delete(key=key):
                    response = client.delete(key, return_response=True)
                    if response.deleted != 1:
                        raise AssertionError("delete of a key just put deleted %d"
                                             % response.deleted)
                    return response.header.revision
                yield key, None, delete

    def run(self):
        client = etcd3.client(host=harness.LOOPBACK, port=self.server.client_port,
                              timeout=CLIENT_TIMEOUT_S)
        try:
            for key, state, write in self.operations(client):
                if self.stop.is_set():
                    return
                try:
                    revision = write()
                except AssertionError as e:  # a wrong answer from a live server
                    self.error = "wrong answer: %s" % e
                    self.in_flight = (key, state)
                    return
                except Exception as e:  # noqa: BLE001 - the kill makes writes fail; expected
                    self.in_flight = (key, state)
                    self.error = "%s: %s" % (type(e).__name__, e)
                    return
                self.acked[key] = (state, revision)
                self.first_ack.set()
        finally:
            client.close()


def read_all(server, rounds):
    """Every key of rounds 0..rounds-1 and the lowest header revision seen; one raw
    RangeRequest per round keeps each answer well under gRPC's 4 MiB receive limit."""
    client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
    try:
        revision, stored = None, {}
        for round_no in range(rounds):
            prefix = b"%sr%d/" % (PREFIX, round_no)
            request = etcdrpc.RangeRequest(key=prefix, range_end=prefix[:-1] + b"0")
            response = client.kvstub.Range(request, client.timeout)
            if revision is None:
                revision = response.header.revision
            stored.update((kv.key, kv) for kv in response.kvs)
        return revision, stored
    finally:
        client.close()


class CrashTest(IntegrationTestCase):

    def test_acknowledged_writes_survive_kill9(self):
        rng = random.Random(SEED)
        sys.stderr.write("crash_test seed %d (replay: DOLMEN_CRASH_SEED=%d)\n" % (SEED, SEED))
        server = self.new_server(harness.dolmen_server())
        server.start()
        acked, attempted, in_flight = {}, {}, {}
        max_acked_revision = 0
        for round_no in range(ROUNDS):
            token = b"%08x" % rng.getrandbits(32)
            first_ack = threading.Event()
            writers = [Writer(server, round_no, w, token, first_ack) for w in range(WRITERS)]
            for writer in writers:
                writer.start()
            self.assertTrue(first_ack.wait(FIRST_ACK_TIMEOUT_S),
                            "round %d: no put acknowledged within %.0fs; errors: %r"
                            % (round_no, FIRST_ACK_TIMEOUT_S, [w.error for w in writers]))
            time.sleep(rng.uniform(*KILL_DELAY_S))  # the seeded kill moment: the subject
            running = sum(w.is_alive() for w in writers)
            server.kill9()
            for writer in writers:
                writer.stop.set()
            for writer in writers:
                writer.join(JOIN_TIMEOUT_S)
                self.assertFalse(writer.is_alive(), "%s did not stop" % writer.name)

            wrong_answers = [w.error for w in writers if (w.error or "").startswith("wrong")]
            self.assertEqual(wrong_answers, [], "a live server answered wrongly")
            round_acked = {k: v for w in writers for k, v in w.acked.items()}
            writes = sum(len(w.acked) + sum(1 for _, (st, _) in w.acked.items() if st is None)
                         for w in writers)
            sys.stderr.write("round %d: %d writes acknowledged, %d writers running at the kill, "
                             "%d writes in flight\n" % (round_no, writes, running,
                                                         sum(w.in_flight is not None
                                                             for w in writers)))
            revisions = [rev for _, rev in round_acked.values()]
            self.assertEqual(len(revisions), len(set(revisions)),
                             "two acknowledged writes answered with the same revision")
            acked.update(round_acked)
            for writer in writers:
                attempted.update(writer.attempted)
                if writer.in_flight:
                    in_flight[writer.in_flight[0]] = writer.in_flight[1]
            max_acked_revision = max([max_acked_revision] + revisions)

            server.spawn()  # same data directory, same ports
            server.wait_ready()
            revision, stored = read_all(server, round_no + 1)
            self.check_state(round_no, acked, in_flight, attempted, revision, stored,
                             max_acked_revision)

            client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
            try:
                after = client.put(b"after-restart/%d" % round_no, b"ok").header.revision
            finally:
                client.close()
            self.assertGreater(after, revision, "a put after restart must advance the revision")
        server.stop()

    def check_state(self, round_no, acked, in_flight, attempted, revision, stored,
                    max_acked_revision):
        """Each key is in its last acknowledged state, or in the state its in-flight write
        would have left; a present key was put once, with the value its writer sent."""
        where = "after round %d restart" % round_no
        self.assertGreaterEqual(revision, max_acked_revision,
                                "%s: revision went back below an acknowledged write" % where)
        bad = []
        for key in set(acked) | set(in_flight) | set(stored):
            kv = stored.get(key)
            got = None if kv is None else kv.value
            state, acked_revision = acked.get(key, (None, None))
            allowed = {state}
            if key in in_flight:
                allowed.add(in_flight[key])
            if got not in allowed:
                bad.append((key, "stored %r, acknowledged %r, in flight %r"
                            % (got, state, in_flight.get(key, "-"))))
            elif kv is not None:
                if got != attempted.get(key) or kv.version != 1 or \
                        kv.create_revision != kv.mod_revision:
                    bad.append((key, "stored %r version %d create %d mod %d"
                                % (got, kv.version, kv.create_revision, kv.mod_revision)))
                elif got == state and kv.mod_revision != acked_revision:
                    bad.append((key, "mod_revision %d, acknowledged at %d"
                                % (kv.mod_revision, acked_revision)))
        bad.sort()
        self.assertEqual(bad[:10], [], "%s: %d keys not in an acknowledged (or in-flight) state "
                         "(first 10 shown)" % (where, len(bad)))


if __name__ == "__main__":
    harness.main()
