#!/usr/bin/python3
"""etcd 3.5's flags on dolmen (docs/flags.md): each implemented tuning flag changes what the
member does, next to a member without it; docs/flags.md's table matches the binary.

Dolmen only (most of these flags are etcd 3.5's, and the reference here is etcd 3.4). Every
server runs on loopback ports the harness picked and is stopped by its PID; every wait polls a
condition with a deadline.

Run: /usr/bin/python3 flags_test.py --dolmen PATH [unittest args]
"""

import os
import queue
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time

import grpc

from etcd3 import etcdrpc

import harness
from harness import IntegrationTestCase, wait_for

WAIT_S = 15.0
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "docs",
                    "flags.md")


def doc_rows():
    """(flag, status, default) for every row of docs/flags.md's tables."""
    rows = []
    with open(DOCS) as f:
        for line in f:
            m = re.match(r"\| `--([a-z0-9-]+)`(?:, `-h`)? \|([^|]*)\|([^|]*)\|", line)
            if m:
                rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
    return rows


def run_dolmen(*args, timeout=10):
    proc = subprocess.run([harness.CONFIG.dolmen] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, cwd=tempfile.gettempdir(),
                          env=harness._clean_env())
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


class RawHttp2:
    """A bare HTTP/2 connection to the client port: the preface, SETTINGS (acknowledged), and
    whatever frames come back, so the test sees the server's keepalive PINGs and GOAWAYs."""

    def __init__(self, server):
        self.sock = socket.create_connection((harness.LOOPBACK, server.client_port), timeout=5)
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(4, 0, b""))
        self.buffer = b""

    @staticmethod
    def frame(kind, flags, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + b"\0\0\0\0" + payload

    def ping(self):
        self.sock.sendall(self.frame(6, 0, b"12345678"))

    def next_frame(self, deadline):
        """(type, flags, payload), or None once the server closed the connection."""
        while len(self.buffer) < 9 or len(self.buffer) < 9 + int.from_bytes(self.buffer[:3], "big"):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("no HTTP/2 frame before the deadline")
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        length = int.from_bytes(self.buffer[:3], "big")
        kind, flags = self.buffer[3], self.buffer[4]
        payload = self.buffer[9:9 + length]
        self.buffer = self.buffer[9 + length:]
        if kind == 4 and not flags & 1:
            self.sock.sendall(self.frame(4, 1, b""))  # acknowledge the server's SETTINGS
        return kind, flags, payload

    def frames_for(self, seconds):
        """Every frame within `seconds` (never acknowledging a PING), and whether the server
        closed the connection meanwhile."""
        deadline = time.monotonic() + seconds
        frames = []
        while time.monotonic() < deadline:
            try:
                f = self.next_frame(deadline)
            except AssertionError:
                break
            if f is None:
                return frames, True
            frames.append(f)
        return frames, False

    def close(self):
        self.sock.close()


class WatchStream:
    """One open Watch stream on its own channel (a watch that is created and then idle)."""

    def __init__(self, channel):
        method = channel.stream_stream("/etcdserverpb.Watch/Watch",
                                       request_serializer=etcdrpc.WatchRequest.SerializeToString,
                                       response_deserializer=etcdrpc.WatchResponse.FromString)
        self.requests = queue.Queue()
        self.responses = queue.Queue()
        self.call = method(iter(self.requests.get, None))
        self.reader = threading.Thread(target=self._read)
        self.reader.start()
        self.requests.put(etcdrpc.WatchRequest(
            create_request=etcdrpc.WatchCreateRequest(key=b"flags-test-watch")))
        created = self.responses.get(timeout=WAIT_S)
        assert not isinstance(created, Exception) and created.created, created

    def _read(self):
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as e:
            self.responses.put(e)

    def close(self):
        self.requests.put(None)
        self.call.cancel()
        self.reader.join(WAIT_S)


def range_call(channel, timeout):
    method = channel.unary_unary("/etcdserverpb.KV/Range",
                                 request_serializer=etcdrpc.RangeRequest.SerializeToString,
                                 response_deserializer=etcdrpc.RangeResponse.FromString)
    return method(etcdrpc.RangeRequest(key=b"k"), timeout=timeout)


class FlagsTest(IntegrationTestCase):

    def start(self, *flag_lists):
        """One dolmen per flag list, started together."""
        return self.start_servers(*[harness.dolmen_server(extra_flags=flags)
                                    for flags in flag_lists])

    def test_docs_table_matches_the_binary(self):
        rows = doc_rows()
        self.assertGreater(len(rows), 100, "docs/flags.md parsed to too few rows")
        rc, usage, err = run_dolmen("--help")
        self.assertEqual(rc, 0, err)
        in_help = set(re.findall(r"^  --([a-z0-9-]+) '", usage, re.M))
        documented = {name for name, _, _ in rows} | {"h"}  # the `--help`, `-h` row
        self.assertEqual(sorted(in_help - documented), [],
                         "flags in `dolmen --help` missing from docs/flags.md")
        no_effect = []
        for name, status, default in rows:
            if status.startswith("see "):
                continue  # another work's flag; its row is filled in when it is merged
            self.assertIn(name, in_help, "docs/flags.md lists --%s, dolmen --help does not" % name)
            if status.startswith("refused: "):
                reason = re.split(r"; instead|\s\(`", status[len("refused: "):])[0]
                value = {"`false`": "true", "`0`": "100"}.get(default, "x-on")
                rc, out, err = run_dolmen("--%s=%s" % (name, value))
                self.assertEqual(rc, 2, "--%s=%s: %s" % (name, value, err))
                self.assertIn("--%s is not supported by dolmen: %s" % (name, reason),
                              harness.readable_log(err))
            elif status.startswith("no effect: "):
                no_effect.append((name, status[len("no effect: "):]))
            else:
                self.assertTrue(status.startswith("implemented"), "--%s: %s" % (name, status))
        # Every no-effect flag at once, on a member that must still serve; each is noted once.
        flags = []
        for name, _ in no_effect:
            shown = re.search(r"^  --%s '([^']*)'" % re.escape(name), usage, re.M).group(1)
            flags.append("--%s=%s" % (name, "true" if shown == "false" else shown))
        (server,) = self.start(flags)
        rc, out, err = server.etcdctl("put", "k", "v")
        self.assertEqual((rc, out.strip()), (0, "OK"), err)
        log = server.log_text()
        for name, reason in no_effect:
            self.assertIn("--%s is accepted with no effect: %s" % (name, reason), log)

    def test_max_learners(self):
        default, two = self.start([], ["--max-learners=2"])
        # Learners that never start: their peer URLs are only advertised, never dialled back.
        def peer():
            return "--peer-urls=http://%s:%d" % (harness.LOOPBACK, harness.pick_free_port())
        for server, allowed in ((default, 1), (two, 2)):
            for i in range(allowed):
                rc, out, err = server.etcdctl("member", "add", "l%d" % i, "--learner", peer())
                self.assertEqual(rc, 0, "%s learner %d: %s" % (server.label, i, err))
            rc, out, err = server.etcdctl("member", "add", "extra", "--learner", peer())
            self.assertNotEqual(rc, 0, out)
            self.assertIn("etcdserver: too many learner members in cluster", err)

    def test_warning_durations(self):
        default, warned = self.start(
            [], ["--experimental-warning-apply-duration=1ns",
                 "--warning-unary-request-duration=1ns"])
        for server in (default, warned):
            rc, out, err = server.etcdctl("put", "k", "v")
            self.assertEqual(rc, 0, err)
        wait_for(lambda: "apply request took too long" in warned.log_text(), "the apply warning")
        wait_for(lambda: re.search(r'"msg":"request stats","method":"/etcdserverpb\.KV/Put"',
                                   warned.log_text()), "the unary request warning")
        self.assertRegex(warned.log_text(),
                         r'"msg":"apply request took too long".*"expected-duration":"1ns",'
                         r'"index":\d+,"request":"put"')
        # The default thresholds (100 ms, 300 ms) are far above a put on loopback.
        rc, out, err = default.etcdctl("get", "k")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("took too long", default.log_text())
        self.assertNotIn("request stats", default.log_text())

    def test_max_concurrent_streams(self):
        default, one = self.start([], ["--max-concurrent-streams=1"])
        for server, limited in ((default, False), (one, True)):
            with grpc.insecure_channel(server.hostport) as channel:
                watch = WatchStream(channel)
                try:
                    if limited:
                        with self.assertRaises(grpc.RpcError) as caught:
                            range_call(channel, timeout=1.0)
                        self.assertEqual(caught.exception.code(),
                                         grpc.StatusCode.DEADLINE_EXCEEDED)
                    else:
                        range_call(channel, timeout=5.0)
                finally:
                    watch.close()
                range_call(channel, timeout=5.0)  # the stream is free again

    def test_keepalive_ping_and_timeout(self):
        default, pinging = self.start(
            [], ["--grpc-keepalive-interval=300ms", "--grpc-keepalive-timeout=700ms"])
        conn = RawHttp2(default)
        frames, closed = conn.frames_for(1.5)
        conn.close()
        self.assertFalse(closed)
        self.assertEqual([f for f in frames if f[0] == 6], [], "a PING within 1.5 s by default")
        conn = RawHttp2(pinging)
        frames, closed = conn.frames_for(8.0)
        conn.close()
        pings = [f for f in frames if f[0] == 6 and not f[1] & 1]
        self.assertTrue(pings, "no keepalive PING within 8 s: %r" % frames)
        self.assertTrue(closed, "an unanswered ping did not close the connection: %r" % frames)

    def test_keepalive_min_time(self):
        default, strict = self.start([], ["--grpc-keepalive-min-time=10s"])
        results = {}
        for server in (default, strict):
            conn = RawHttp2(server)
            goaway = None
            deadline = time.monotonic() + 5.0
            for _ in range(8):
                conn.ping()
                frames, closed = conn.frames_for(0.15)
                goaway = goaway or next((f for f in frames if f[0] == 7), None)
                if goaway or closed or time.monotonic() > deadline:
                    break
            conn.close()
            results[server.label + str(server.client_port)] = goaway
            if server is default:
                self.assertIsNone(goaway, "GOAWAY for pings without --grpc-keepalive-min-time")
            else:
                self.assertIsNotNone(goaway, "no GOAWAY for pings 150 ms apart")
                error_code = int.from_bytes(goaway[2][4:8], "big")
                self.assertEqual(error_code, 0xb)  # ENHANCE_YOUR_CALM
                self.assertIn(b"too_many_pings", goaway[2][8:])

    def test_socket_reuse_port(self):
        default, shared = self.start([], ["--socket-reuse-port"])
        for server, can_share in ((default, False), (shared, True)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if can_share:
                    s.bind((harness.LOOPBACK, server.client_port))
                else:
                    with self.assertRaises(OSError):
                        s.bind((harness.LOOPBACK, server.client_port))

    def test_wal_dir(self):
        wal_dir = tempfile.mkdtemp(prefix="dolmen-it-waldir-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", wal_dir], check=False))
        (server,) = self.start(["--wal-dir=" + wal_dir])
        rc, out, err = server.etcdctl("put", "k", "in-the-wal-dir")
        self.assertEqual(rc, 0, err)
        self.assertTrue([n for n in os.listdir(wal_dir) if n.endswith(".wal")], os.listdir(wal_dir))
        self.assertFalse(os.path.exists(os.path.join(server.data_dir, "member", "wal")))
        server.kill9()  # replay from the WAL in --wal-dir
        server.spawn()
        server.wait_ready()
        rc, out, err = server.etcdctl("get", "k", "--print-value-only")
        self.assertEqual((rc, out.strip()), (0, "in-the-wal-dir"), err)

    def test_unsafe_no_fsync(self):
        (server,) = self.start(["--unsafe-no-fsync"])
        self.assertIn("--unsafe-no-fsync: the write-ahead log and the backend are NEVER "
                      "fsynced", server.log_text())
        rc, out, err = server.etcdctl("put", "k", "v")
        self.assertEqual(rc, 0, err)
        server.restart()  # a clean stop still writes everything out (the OS keeps it)
        rc, out, err = server.etcdctl("get", "k", "--print-value-only")
        self.assertEqual((rc, out.strip()), (0, "v"), err)

    def test_bcrypt_cost_out_of_range_falls_back_with_etcds_warning(self):
        (server,) = self.start(["--bcrypt-cost", "3"])
        self.assertIn("use default bcrypt cost instead of the invalid given cost",
                      server.log_text())
        self.assertIn('"given-cost":3', server.log_text())
        rc, out, err = server.etcdctl("user", "add", "u:pw")  # hashed with the default cost
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    harness.main()
