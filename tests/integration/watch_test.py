#!/usr/bin/python3
"""Watch against etcd 3.4 and dolmen: the same sessions, the same answers.

Three kinds of scenario, each on a fresh etcd and a fresh dolmen:
  - etcdctl 3.4 `watch` (with --prefix, --rev, --prev-kv, -w json, and interactive `watch -i`
    with commands on stdin) running as its own process while this test writes through separate
    etcdctl processes; stdout and stderr are compared after `harness.normalize` (only the
    cluster/member ids and the endpoint differ), plus the exit code where etcdctl exits itself;
  - raw etcdserverpb.Watch streams through python3-etcd3's generated stubs: every response
    field (header revision, watch_id, created, canceled, compact_revision, cancel_reason,
    fragment, events, prev_kv) is compared, with the header ids blanked;
  - python3-etcd3's own watch API (watch, watch_prefix, cancel, start_revision, compaction).

Every watch session writes its own revisions, so outputs never depend on timing: a watch starts
at an explicit revision, and the test waits (bounded) for a marker in the output instead of
sleeping. Every process started here is stopped by its PID.

Run: /usr/bin/python3 watch_test.py --dolmen PATH [unittest args]
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import grpc

import etcd3
from etcd3 import etcdrpc

import harness
from harness import IntegrationTestCase

WAIT_S = 15.0        # bound for any single wait for watch output
EXIT_WAIT_S = 10.0   # bound for an etcdctl watch that must exit by itself
STOP_WAIT_S = 5.0    # after SIGTERM, before SIGKILL

_default_excepthook = threading.excepthook


def _quiet_closed_watcher(args):
    # etcd3 0.12's watcher thread reopens its stream forever; once the client is closed that
    # ends in "Cannot invoke RPC: Channel closed!", which is how the thread is meant to stop.
    if args.exc_type is ValueError and "Channel closed" in str(args.exc_value):
        return
    _default_excepthook(args)


threading.excepthook = _quiet_closed_watcher


# -- etcdctl watch sessions ------------------------------------------------------------------

class Put:
    def __init__(self, key, value):
        self.args = ("put", key, value)


class Del:
    def __init__(self, key):
        self.args = ("del", key)


class Compact:
    def __init__(self, rev):
        self.args = ("compaction", str(rev))


class Stdin:
    """A line for `watch -i`."""

    def __init__(self, line):
        self.line = line


class WaitOut:
    """Waits until stdout holds `text` at least `count` times."""

    def __init__(self, text, count=1):
        self.text = text
        self.count = count


class WaitExit:
    """Waits until etcdctl exits by itself (e.g. its watch was canceled by the server)."""


class WatchProcess:
    """One `etcdctl watch` process with its output collected by reader threads."""

    def __init__(self, server, args, interactive):
        cmd = [harness.CONFIG.etcdctl, "--endpoints=" + server.endpoint, "--dial-timeout=2s",
               "watch"] + list(args)
        self.proc = subprocess.Popen(harness._die_with_parent_prefix() + cmd,
                                     stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=harness._clean_env())
        self.cond = threading.Condition()
        self.out = b""
        self.err = b""
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, "out")),
                        threading.Thread(target=self._read, args=(self.proc.stderr, "err"))]
        for t in self.readers:
            t.start()

    def _read(self, pipe, name):
        while True:
            chunk = os.read(pipe.fileno(), 65536)
            with self.cond:
                if chunk:
                    setattr(self, name, getattr(self, name) + chunk)
                self.cond.notify_all()
            if not chunk:
                return

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def wait_out(self, text, count):
        deadline = time.monotonic() + WAIT_S
        needle = text.encode()
        with self.cond:
            while self.out.count(needle) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %r (x%d) in watch output within %.0fs:\n%s\n%s"
                                         % (text, count, WAIT_S, self.out.decode(errors="replace"),
                                            self.err.decode(errors="replace")))
                self.cond.wait(left)

    def wait_exit(self):
        try:
            return self.proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError("etcdctl watch did not exit within %.0fs" % EXIT_WAIT_S)

    def stop(self):
        """Stops the process by its PID (SIGTERM, then SIGKILL); returns (rc, out, err)."""
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_WAIT_S)
            rc = None  # killed by us: the exit code says nothing about the server
        if self.proc.stdin:
            self.proc.stdin.close()
        for t in self.readers:
            t.join(STOP_WAIT_S)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, self.out.decode("utf-8", "replace"), self.err.decode("utf-8", "replace")


def run_session(server, ids, watch_args, steps, interactive=False):
    """Starts `etcdctl watch`, runs the steps, stops it; returns normalized (rc, out, err)."""
    w = WatchProcess(server, watch_args, interactive)
    try:
        for step in steps:
            if isinstance(step, Stdin):
                w.send(step.line)
            elif isinstance(step, WaitOut):
                w.wait_out(step.text, step.count)
            elif isinstance(step, WaitExit):
                w.wait_exit()
            else:
                rc, out, err = server.etcdctl(*step.args)
                if rc != 0:
                    raise AssertionError("%s: etcdctl %s failed: %s%s"
                                         % (server.label, step.args, out, err))
    finally:
        rc, out, err = w.stop()
    return rc, harness.normalize(out, server, ids), harness.normalize(err, server, ids)


def write_all(server, steps):
    for step in steps:
        rc, out, err = server.etcdctl(*step.args)
        if rc != 0:
            raise AssertionError("%s: etcdctl %s failed: %s%s"
                                 % (server.label, step.args, out, err))


def on_both(test, servers, fn):
    """fn(server) on each server at once; returns {label: result}."""
    return dict(zip((s.label for s in servers), test.on_each(servers, fn, WAIT_S * 10)))

def with_flags(server, flags):
    """The server, started with extra command-line flags."""
    base = server._command
    server._command = lambda: base() + list(flags)
    return server


class EtcdctlWatchTest(IntegrationTestCase):

    def session(self, before, watch_args, steps, interactive=False, etcd_out_has=None):
        """Writes `before`, then runs the watch session on both servers; the answers must be
        equal, and etcd's stdout must contain `etcd_out_has` (keeps the scenario honest)."""
        etcd, dolmen = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        servers = (etcd, dolmen)
        ids = on_both(self, servers, lambda s: s.header_ids())
        on_both(self, servers, lambda s: write_all(s, before))
        got = on_both(self, servers, lambda s: run_session(s, ids[s.label], watch_args, steps,
                                                           interactive))
        want = got[etcd.label]
        if etcd_out_has is not None:
            self.assertIn(etcd_out_has, want[1], "etcd's own answer")
        self.assertEqual(got[dolmen.label], want, "etcd (second) vs %s (first)" % dolmen.label)

    def test_prefix_rev_prev_kv_with_live_writes(self):
        self.session(
            [Put("k/a", "1"), Put("k/b", "2"), Put("x", "9"), Put("k/a", "3"), Del("k/b")],
            ["--prefix", "k/", "--rev", "2", "--prev-kv"],
            [WaitOut("k/b", 3),  # history: put k/b, prev of the delete, the delete
             Put("k/c", "4"), Put("other", "no"), Put("k/a", "5"), Del("k/a"),
             Put("k/end", "END"), WaitOut("END")],
            etcd_out_has="DELETE\nk/b\n2\nk/b\n")

    def test_single_key_json_headers(self):
        # -w json prints every response with its header: revisions of history and live batches.
        self.session(
            [Put("a", "1"), Put("b", "1"), Put("a", "2")],
            ["-w", "json", "--rev", "3", "a"],
            [WaitOut('"mod_revision":4'),
             Put("a", "3"), Put("b", "2"), Del("a"), Put("a", "END"), WaitOut("RU5E")],
            etcd_out_has='"Header"')

    def test_from_key_and_range(self):
        self.session(
            [Put("a", "1"), Put("m", "2"), Put("z", "3")],
            ["--rev", "2", "b", "y"],  # [b, y)
            [WaitOut("m"), Put("c", "4"), Put("y", "not-in"), Put("x", "END"), WaitOut("END")],
            etcd_out_has="PUT\nm\n2\n")

    def test_interactive(self):
        self.session(
            [Put("a", "v1"), Put("b", "w1")],
            ["-i"],
            [Stdin("watch --rev 2 a"), WaitOut("v1"),
             Put("a", "v2"), WaitOut("v2"),
             Stdin("progress"), WaitOut("progress notify:"),
             Stdin("watch --prev-kv --rev 3 b"), WaitOut("w1"),
             Put("b", "w2"), WaitOut("w2"),
             Stdin("watch --prefix --rev 1 nothing-here"),
             Stdin("bogus command"),
             Del("b"), WaitOut("DELETE"),
             Put("a", "END"), WaitOut("END")],
            interactive=True, etcd_out_has="progress notify: 4")

    def test_compacted_revision_cancels(self):
        # etcdctl prints the server's cancel and exits by itself: rc, stdout, stderr compared.
        self.session(
            [Put("a", "1"), Put("a", "2"), Put("a", "3"), Put("a", "4"), Compact(4)],
            ["--rev", "2", "a"],
            [WaitExit()])

    def test_rev_at_compaction_still_replays(self):
        self.session(
            [Put("a", "1"), Put("a", "2"), Put("a", "3"), Compact(3)],
            ["--rev", "3", "a"],
            [WaitOut("3"), Put("a", "END"), WaitOut("END")],
            etcd_out_has="PUT\na\n2\n")


# -- raw etcdserverpb.Watch streams ------------------------------------------------------------

# python3-etcd3 0.12's generated messages predate WatchCreateRequest.watch_id and .fragment,
# WatchRequest.progress_request and WatchResponse.fragment, so requests are encoded here (its
# messages plus the missing fields in protobuf wire format) and responses are decoded with its
# WatchResponse plus a scan of the top-level fields for `fragment`.

def _varint(n):
    n &= (1 << 64) - 1  # negative int64 values are ten-byte varints
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field_varint(number, value):
    return _varint(number << 3) + _varint(value)


def _field_bytes(number, data):
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def create(watch_id=0, fragment=False, **fields):
    inner = etcdrpc.WatchCreateRequest(**fields).SerializeToString()
    if watch_id:
        inner += _field_varint(7, watch_id)
    if fragment:
        inner += _field_varint(8, 1)
    return _field_bytes(1, inner)


def cancel(watch_id):
    return _field_bytes(2, etcdrpc.WatchCancelRequest(watch_id=watch_id).SerializeToString())


def progress():
    return _field_bytes(3, b"")


def _read_varint(raw, i):
    shift = value = 0
    while True:
        byte = raw[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _top_level_fields(raw):
    fields, i = {}, 0
    while i < len(raw):
        key, i = _read_varint(raw, i)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = _read_varint(raw, i)
        elif wire_type == 2:
            length, i = _read_varint(raw, i)
            value, i = raw[i:i + length], i + length
        elif wire_type == 1:
            value, i = raw[i:i + 8], i + 8
        else:
            value, i = raw[i:i + 4], i + 4
        fields.setdefault(number, []).append(value)
    return fields


def _decode(raw):
    return etcdrpc.WatchResponse.FromString(raw), _top_level_fields(raw).get(7, [0])[-1] == 1


class RawStream:
    """One Watch stream: requests go in through a queue, responses are read by a thread."""

    def __init__(self, server):
        self.channel = grpc.insecure_channel(server.hostport)
        method = self.channel.stream_stream("/etcdserverpb.Watch/Watch",
                                            request_serializer=lambda b: b,
                                            response_deserializer=_decode)
        self.requests = queue.Queue()
        self.responses = queue.Queue()
        self.call = method(iter(self.requests.get, None))
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self):
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as e:
            self.responses.put(e)

    def send(self, request):
        self.requests.put(request)

    def next(self):
        try:
            response = self.responses.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError("no watch response within %.0fs" % WAIT_S)
        if isinstance(response, Exception):
            raise AssertionError("watch stream failed: %r" % response)
        return response

    def close(self):
        self.requests.put(None)
        self.call.cancel()
        self.reader.join(WAIT_S)
        self.channel.close()


def response_text(decoded, ids):
    """Every field of a WatchResponse, header ids blanked (they differ by design)."""
    response, fragment = decoded
    response.header.cluster_id = 0 if response.header.cluster_id == ids[0] else 1
    response.header.member_id = 0 if response.header.member_id == ids[1] else 1
    text = str(response)
    if len(text) > 2000:  # values are long in the fragment test; their length is what matters
        text = "%s...(%d chars)" % (text[:1000], len(text))
    return text + ("fragment: true\n" if fragment else "")


class Record:
    """Collects a stream's responses as text for the comparison."""

    def __init__(self, stream, ids):
        self.stream = stream
        self.ids = ids
        self.texts = []

    def __call__(self, count, by_watcher=False):
        """The next `count` responses. Control responses (created, canceled, progress) come in
        request order; events are ordered per watcher only (etcd serves the watchers of a
        stream in map order), so with by_watcher the group is sorted by watch_id, stably."""
        group = [self.stream.next() for _ in range(count)]
        if by_watcher:
            group.sort(key=lambda decoded: decoded[0].watch_id)
        self.texts += [response_text(decoded, self.ids) for decoded in group]

    def skip_while(self, skip):
        """Drops responses while skip(response) holds (e.g. periodic progress notifications,
        whose number depends on timing), then records the first other one."""
        while True:
            decoded = self.stream.next()
            if not skip(decoded[0]):
                self.texts.append(response_text(decoded, self.ids))
                return


class RawWatchTest(IntegrationTestCase):

    def compare(self, scenario, server_flags=()):
        """scenario(client, stream, record) on both servers; record(n) collects the next n
        responses to compare."""
        etcd, dolmen = self.start_servers(with_flags(harness.etcd_server(), server_flags),
                                          with_flags(harness.dolmen_server(), server_flags))
        answers = {}
        for server in (etcd, dolmen):
            ids = server.header_ids()
            stream = RawStream(server)
            record = Record(stream, ids)
            client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
            try:
                scenario(client, stream, record)
            finally:
                stream.close()
                client.close()
            answers[server.label] = record.texts
        want, have = answers[etcd.label], answers[dolmen.label]
        diffs = ["response %d:\n  etcd: %s\n  %s: %s" % (i, a, dolmen.label, b)
                 for i, (a, b) in enumerate(zip(want, have)) if a != b]
        self.assertEqual(len(want), len(have))
        if diffs:
            self.fail("%d of %d responses differ:\n%s" % (len(diffs), len(want), "\n".join(diffs)))
        return want

    def test_create_ids_cancel_and_progress(self):
        def scenario(c, s, record):
            c.put("a", "1")
            s.send(create(key=b"a"))            # id 0
            s.send(create(key=b"a", watch_id=5))
            s.send(create(key=b"b", watch_id=5))  # dup
            s.send(create(key=b"b", range_end=b"a"))
            s.send(create(key=b"a"))            # id 1
            s.send(cancel(5))
            s.send(cancel(77))         # ignored
            record(6)
            s.send(progress())
            record(1)
            c.put("a", "2")
            record(2, by_watcher=True)  # watchers 0 and 1
        got = self.compare(scenario)
        self.assertIn("duplicate watch ID", got[2])
        self.assertIn("watcher range is empty", got[3])

    def test_filters_and_prev_kv(self):
        def scenario(c, s, record):
            c.put("k", "1")
            s.send(create(
                key=b"k", watch_id=1, prev_kv=True,
                filters=[etcdrpc.WatchCreateRequest.NOPUT]))
            record(1)
            s.send(create(
                key=b"k", watch_id=2, prev_kv=True,
                filters=[etcdrpc.WatchCreateRequest.NODELETE]))
            record(1)
            c.put("k", "2")
            record(1)  # only watcher 2
            c.delete("k")
            record(1)  # only watcher 1
            c.put("k", "3")
            record(1)  # watcher 2: a new key, so no prev_kv
        self.compare(scenario)

    def test_history_ranges_and_txn_revision(self):
        def scenario(c, s, record):
            c.put("a", "1")
            c.put("b", "2")
            c.transaction(compare=[], success=[c.transactions.put("a", "3"),
                                               c.transactions.put("c", "4")], failure=[])
            c.put("z", "5")
            s.send(create(
                key=b"a", range_end=b"c\x00", start_revision=2, watch_id=1))
            s.send(create(
                key=b"b", range_end=b"\x00", start_revision=3, watch_id=2))
            s.send(create(
                key=b"", range_end=b"\x00", start_revision=1, watch_id=3))
            record(6, by_watcher=True)  # each watcher: created, then its history
            c.transaction(compare=[], success=[c.transactions.put("a", "6"),
                                               c.transactions.delete("z")], failure=[])
            record(3, by_watcher=True)
        self.compare(scenario)

    def test_compacted_start_revision(self):
        def scenario(c, s, record):
            for i in range(5):
                c.put("a", str(i))
            c.compact(4)
            s.send(create(key=b"a", start_revision=2))
            record(2)  # created, then canceled with compact_revision
            s.send(create(key=b"a", start_revision=4,
                                                             watch_id=9))
            record(2)  # at the compact revision: history is there
        got = self.compare(scenario)
        self.assertIn("compact_revision: 4", got[1])

    def test_periodic_progress_notify(self):
        # --experimental-watch-progress-notify-interval on both servers: an idle watcher that
        # asked for progress_notify hears the current revision; after events, the next
        # notification comes once a whole interval passed without any.
        def scenario(c, s, record):
            s.send(create(key=b"p", watch_id=1, progress_notify=True))
            s.send(create(key=b"q", watch_id=2))  # did not ask: never notified
            record(2)
            record(1)
            c.put("p", "x")
            # More notifications at revision 1 may come before the event.
            record.skip_while(lambda r: not r.events and r.header.revision == 1)
            record.skip_while(lambda r: False)

        got = self.compare(scenario,
                           server_flags=["--experimental-watch-progress-notify-interval=300ms"])
        self.assertEqual([t.count("events") for t in got], [0, 0, 0, 1, 0])
        self.assertIn("revision: 2", got[-1])

    def test_fragment(self):
        big = b"x" * (1024 * 1024)

        def scenario(c, s, record):
            for key in (b"f1", b"f2", b"f3"):
                c.put(key, big)
            s.send(create(
                key=b"f", range_end=b"g", start_revision=2, fragment=True, watch_id=1))
            record(4)  # created + three fragments (one event each: 2 MiB limit)
            s.send(create(
                key=b"f", range_end=b"g", start_revision=2, watch_id=2))
            record(2)  # without fragment: one 3 MiB response
        got = self.compare(scenario)
        self.assertIn("fragment: true", got[1])


# -- python3-etcd3's watch API -------------------------------------------------------------------

class ShortLivedWatchTest(IntegrationTestCase):
    """Many short-lived watch streams with history, each on a new connection: every one is
    answered (created, then its event) within a bound. A stream whose first response carries
    its initial metadata once waited 10 s or more for an unrelated write to flush it."""

    STREAMS = 300
    BOUND_S = 2.0  # etcd 3.4 answers each in well under 0.1 s on 2 cores

    def worst_first_answer(self, server):
        """Opens STREAMS streams one after the other, each from revision 1 on a new channel;
        returns the slowest time to the event, failing on the first that exceeds BOUND_S."""
        worst = 0.0
        for i in range(self.STREAMS):
            stream = RawStream(server)
            try:
                began = time.monotonic()
                stream.send(create(key=b"sample", start_revision=1))
                for want in ("created", "event"):
                    try:
                        response = stream.responses.get(timeout=self.BOUND_S)
                    except queue.Empty:
                        raise AssertionError("stream %d of %d: no %s response within %.1fs"
                                             % (i + 1, self.STREAMS, want, self.BOUND_S))
                    self.assertNotIsInstance(response, Exception)
                    decoded = response[0]
                    if want == "created":
                        self.assertTrue(decoded.created, str(decoded))
                    else:
                        self.assertEqual([e.kv.value for e in decoded.events], [b"value"])
                worst = max(worst, time.monotonic() - began)
            finally:
                stream.close()
        return worst

    def test_each_new_stream_with_history_is_answered_promptly(self):
        servers = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        for server in servers:
            client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
            try:
                client.put("sample", "value")
            finally:
                client.close()
        worst = self.on_each(servers, self.worst_first_answer)
        sys.stderr.write("slowest of %d streams: %s\n" % (self.STREAMS, ", ".join(
            "%s %.3fs" % (s.label, w) for s, w in zip(servers, worst))))


class Events:
    """Collects what etcd3 hands to watch callbacks."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def callback(self, response):
        with self.cond:
            if isinstance(response, etcd3.exceptions.RevisionCompactedError):
                self.items.append(("compacted", response.compacted_revision))
            elif isinstance(response, Exception):
                self.items.append(("error", repr(response)))
            else:
                for ev in response.events:
                    self.items.append((type(ev).__name__, ev.key, ev.value, ev.mod_revision,
                                       ev.version, ev.prev_value))
            self.cond.notify_all()

    def wait(self, count):
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while len(self.items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.items)


def scenario_client_watch(c):
    record = []
    c.put("w/a", "1")  # rev 2
    c.put("w/b", "2")  # rev 3
    prefix = Events()
    prefix_id = c.add_watch_prefix_callback("w/", prefix.callback, start_revision=2)
    record.append(("watch_prefix from 2", prefix.wait(2)))
    key = Events()
    key_id = c.add_watch_callback("w/a", key.callback, prev_kv=True)
    c.put("w/a", "3")  # rev 4
    c.put("x", "no")   # rev 5
    c.delete("w/b")    # rev 6
    record.append(("watch_prefix live", prefix.wait(4)[2:]))
    record.append(("watch key live", key.wait(1)))
    c.cancel_watch(prefix_id)
    c.put("w/a", "4")  # rev 7
    record.append(("after cancel: key watcher still live", key.wait(2)[1:]))
    c.cancel_watch(key_id)
    # The iterator API, from a past revision.
    events, cancel = c.watch("w/a", start_revision=4)
    try:
        got = [next(events) for _ in range(2)]
        record.append(("iterator from 4", [(type(e).__name__, e.key, e.value, e.mod_revision)
                                           for e in got]))
    finally:
        cancel()
    c.compact(6)
    compacted = Events()
    try:
        c.add_watch_callback("w/a", compacted.callback, start_revision=3)
    except etcd3.exceptions.RevisionCompactedError as e:  # the answer came with "created"
        compacted.callback(e)
    record.append(("compacted start", compacted.wait(1)))
    return record


class ClientWatchTest(IntegrationTestCase):

    def test_watch_api(self):
        etcd, dolmen = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        records = {}
        for server in (etcd, dolmen):
            client = etcd3.client(host=harness.LOOPBACK, port=server.client_port, timeout=10)
            try:
                records[server.label] = scenario_client_watch(client)
            finally:
                client.close()
        want = records[etcd.label]
        self.assertEqual(want[0][1], [("PutEvent", b"w/a", b"1", 2, 1, b""),
                                      ("PutEvent", b"w/b", b"2", 3, 1, b"")])
        self.assertEqual(want[-1][1], [("compacted", 6)])
        self.assertEqual(records[dolmen.label], want)


if __name__ == "__main__":
    harness.main()
