#!/usr/bin/python3
"""Side-by-side benchmark of dolmen and etcd 3.4 on one machine (issue 6).

One run starts an N-member dolmen cluster and an N-member etcd cluster with the same flags, on
127.0.0.1 ports picked here, data dirs under one temp dir (same disk). Then:
  1. every workload of dolmen-bench runs on both, in turns (dolmen, etcd, dolmen, etcd, ...);
     each figure is the median over the turns, and the ratio is dolmen / etcd of the medians;
  2. --keys keys with 256-byte values are loaded into both; then each member's VmRSS
     (/proc/<pid>/status) and data-dir size (du) are read, range QPS over those keys is
     measured, and one member of each cluster is restarted (in turns) and timed until it
     answers a linearizable read.
With --sweep-clients N,N,... it runs a clients sweep instead: each --sweep-workloads workload
at each client count on both clusters (in turns), and writes the medians as JSON, a gnuplot
data file and two PNG plots (QPS and p99 latency by clients) into --sweep-out.
With --tls-variants it measures what TLS costs each system instead (bench/compare_tls.py:
put and range-l on plain, client-TLS and peer-TLS clusters, in rounds).
Writes a Markdown table (--md-out) and JSON (--json-out). Every process started here is
stopped by its PID (SIGTERM, then SIGKILL), also on failure, and dies with this process
(setpriv --pdeathsig) if it is killed. Every wait is bounded.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

# The tests' process helpers: ports below the ephemeral range (processes.pick_free_port, which
# never hands out the same port twice in one process) and a CA made with the openssl CLI.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "integration"))
import processes  # noqa: E402
import tls_certs  # noqa: E402

LOOPBACK = "127.0.0.1"
SETPRIV = "/usr/bin/setpriv"
READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.02
STOP_TERM_WAIT_S = 20.0
STOP_KILL_WAIT_S = 5.0
PROBE_TIMEOUT_S = 10.0
SYSTEMS = ("dolmen", "etcd")
ETCDCTL = "/usr/bin/etcdctl"  # Debian's etcd-client: asks each cluster who leads
GNUPLOT = "/usr/bin/gnuplot"  # Debian's gnuplot-nox (scripts/install-deps.sh)
WRK = "/usr/bin/wrk"  # Debian's wrk: the JSON gateway's HTTP/1.1 load (scripts/install-deps.sh)

_LIVE = set()  # Members whose process may be running; stopped by stop_all()


# --client-tls: (cert, key, ca) of a throwaway CA's server certificate; both systems then serve
# clients over https with it, and every client (dolmen-bench, etcdctl) verifies it.
CLIENT_TLS = None
# --peer-tls: the same for the peer URLs (https, mutual TLS between members as kubeadm runs
# them: the certificate names 127.0.0.1 and is good for server and client use).
PEER_TLS = None


def make_tls_files(directory):
    ca = tls_certs.TestCa(os.path.join(directory, "tls-ca"), "compare-ca")
    cert, key = ca.issue("server", "server", ips=[LOOPBACK])
    return cert, key, ca.cert


def client_scheme():
    return "https://" if CLIENT_TLS else "http://"


def clean_env():
    # ETCD_* variables would configure etcd behind our back (etcd reads flags from them).
    return {k: v for k, v in os.environ.items()
            if not k.startswith("ETCD_") and not k.startswith("ETCDCTL_")}


class Member:
    """One server process; ports are kept across restarts."""

    def __init__(self, binary, name, root):
        self.binary, self.name = binary, name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        self.client_port = processes.pick_free_port(LOOPBACK)
        self.peer_port = processes.pick_free_port(LOOPBACK)
        self.proc = None
        self.initial_cluster = None

    @property
    def endpoint(self):
        return "%s:%d" % (LOOPBACK, self.client_port)

    @property
    def peer_url(self):
        return "%s://%s:%d" % ("https" if PEER_TLS else "http", LOOPBACK, self.peer_port)

    def command(self):
        client_url = client_scheme() + self.endpoint
        tls = ["--cert-file", CLIENT_TLS[0], "--key-file", CLIENT_TLS[1]] if CLIENT_TLS else []
        if PEER_TLS:
            tls += ["--peer-cert-file", PEER_TLS[0], "--peer-key-file", PEER_TLS[1],
                    "--peer-trusted-ca-file", PEER_TLS[2], "--peer-client-cert-auth"]
        return [self.binary, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.initial_cluster,
                "--initial-cluster-state", "new",
                "--initial-cluster-token",
                "bench-" + os.path.basename(os.path.dirname(self.dir))] + tls

    def spawn(self):
        prefix = [SETPRIV, "--pdeathsig", "KILL", "--"] if os.access(SETPRIV, os.X_OK) else []
        with open(self.log_path, "ab") as log:
            log.write(("\n=== %s\n" % " ".join(self.command())).encode())
            log.flush()
            self.proc = subprocess.Popen(prefix + self.command(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=clean_env())
        _LIVE.add(self)

    def stop(self):
        """SIGTERM by PID, SIGKILL after a bounded wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TERM_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_KILL_WAIT_S)
        self.proc = None
        _LIVE.discard(self)

    def status_kib(self, field):
        """A kB field of /proc/<pid>/status: VmRSS, RssAnon (heap) or RssFile (mapped files,
        e.g. LMDB's or bbolt's database file)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def data_bytes(self):
        out = subprocess.run(["du", "-sb", self.data_dir], capture_output=True, text=True,
                             timeout=60).stdout
        return int(out.split()[0]) if out else 0

    def log_tail(self, chars=3000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""


def stop_all():
    for member in list(_LIVE):
        member.stop()


class Bench:
    """Runs dolmen-bench and returns its JSON report."""

    def __init__(self, binary, out_dir):
        self.binary, self.out_dir, self.runs = binary, out_dir, 0

    def run(self, endpoints, workload, args, timeout_s):
        self.runs += 1
        out = os.path.join(self.out_dir, "run-%04d.json" % self.runs)
        cmd = [self.binary, workload, "--endpoints", ",".join(endpoints), "--json-out", out,
               "--max-seconds", str(int(max(1, timeout_s - 15)))] + [str(a) for a in args]
        if CLIENT_TLS:
            cmd += ["--cacert", CLIENT_TLS[2]]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if not os.path.exists(out):
            raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), proc.returncode,
                                                         proc.stdout, proc.stderr))
        with open(out) as f:
            report = json.load(f)
        report["command"] = " ".join(cmd)
        return report

    def start(self, endpoints, workload, args, max_seconds):
        """Starts a run in the background; finish() waits for its report."""
        self.runs += 1
        out = os.path.join(self.out_dir, "run-%04d.json" % self.runs)
        cmd = [self.binary, workload, "--endpoints", ",".join(endpoints), "--json-out", out,
               "--max-seconds", str(int(max(1, max_seconds)))] + [str(a) for a in args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return proc, out, cmd

    def finish(self, started, timeout_s):
        proc, out, cmd = started
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if not os.path.exists(out):
            raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode, output))
        with open(out) as f:
            report = json.load(f)
        report["command"] = " ".join(cmd)
        return report

    def linearizable_read_ok(self, endpoint):
        cmd = [self.binary, "range", "--endpoints", endpoint, "--total", "1",
               "--range-key", "probe", "--request-timeout-ms", "500", "--max-seconds", "2"]
        if CLIENT_TLS:
            cmd += ["--cacert", CLIENT_TLS[2]]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_S).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def wait_read(bench, member, timeout_s):
    """Seconds until `member` answers a linearizable read; raises after timeout_s."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if member.proc.poll() is not None:
            raise RuntimeError("%s exited:\n%s" % (member.name, member.log_tail()))
        if bench.linearizable_read_ok(member.endpoint):
            return time.monotonic() - start
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError("%s gave no linearizable read in %.0f s:\n%s"
                       % (member.name, timeout_s, member.log_tail()))


class Cluster:
    def __init__(self, system, binary, size, root):
        self.system = system
        self.members = [Member(binary, "%s%d" % (system, i + 1), os.path.join(root, system))
                        for i in range(size)]
        initial = ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)
        for m in self.members:
            m.initial_cluster = initial

    @property
    def endpoints(self):
        return [m.endpoint for m in self.members]

    def leader_endpoint(self):
        """The endpoint of the member that leads now (etcdctl endpoint status)."""
        env = clean_env()
        env["ETCDCTL_API"] = "3"
        tls = ["--cacert", CLIENT_TLS[2]] if CLIENT_TLS else []
        proc = subprocess.run([ETCDCTL, "--endpoints",
                               ",".join(client_scheme() + e for e in self.endpoints)] + tls +
                              ["--command-timeout=5s", "endpoint", "status", "-w", "json"],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env)
        if proc.returncode != 0:
            raise RuntimeError("endpoint status of %s failed: %s" % (self.system, proc.stderr))
        for st in json.loads(proc.stdout):
            if st["Status"]["header"]["member_id"] == st["Status"]["leader"]:
                return st["Endpoint"].split("://")[-1]
        raise RuntimeError("%s has no leader: %s" % (self.system, proc.stdout))

    def max_term(self):
        """The highest Raft term any member reports (etcdctl endpoint status)."""
        env = clean_env()
        env["ETCDCTL_API"] = "3"
        proc = subprocess.run([ETCDCTL, "--endpoints", ",".join(self.endpoints),
                               "--command-timeout=5s", "endpoint", "status", "-w", "json"],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env)
        terms = [st["Status"]["header"]["raft_term"] for st in json.loads(proc.stdout or "[]")]
        if not terms:
            raise RuntimeError("endpoint status of %s failed: %s" % (self.system, proc.stderr))
        return max(terms)

    def start(self, bench):
        for m in self.members:
            m.spawn()
        for m in self.members:
            wait_read(bench, m, READY_TIMEOUT_S)


# -- workloads -------------------------------------------------------------------------------

def workloads(a):
    """(name, dolmen-bench workload, args, figures to report) for the turns phase."""
    common = ["--conns", a.conns, "--clients", a.clients]
    load = ["--key-size", 8, "--val-size", a.val_size]
    rng = ["--range-key", "0"]  # the one key main() writes
    return [
        ("put", "put", common + load + ["--total", a.total, "--key-space", a.key_space]),
        ("put-1-client", "put", ["--clients", 1, "--total", a.total_1client, "--key-space",
                                 a.key_space] + load),
        ("range-l", "range", common + rng + ["--total", a.total, "--consistency", "l"]),
        ("range-s", "range", common + rng + ["--total", a.total, "--consistency", "s"]),
        ("txn-put", "txn-put", common + load + ["--total", a.total, "--key-space", a.key_space]),
        ("watch", "watch", ["--conns", a.conns, "--clients", a.watch_clients, "--total",
                            a.watch_puts, "--watchers", a.watchers, "--watch-streams",
                            max(1, a.watchers // 10), "--val-size", 32]),
        ("lease-keepalive", "lease-keepalive", common + ["--total", a.total]),
    ]


def figures_of(name, report):
    """The figures a run contributes: name -> value."""
    req = report["requests"]
    lat = req["latency_ms"]
    out = {"%s qps" % name: req["per_second"], "%s p50 ms" % name: lat["p50"],
           "%s p99 ms" % name: lat["p99"], "%s errors" % name: report["errors"]}
    if "events" in report:
        out["%s events/s" % name] = report["events"]["per_second"]
        out["%s delivery p99 ms" % name] = report["events"]["latency_ms"]["p99"]
        responses = report["extra"].get("event_responses", 0)
        out["%s events per response" % name] = (report["events"]["count"] / responses
                                                 if responses else 0)
    return out


def record(results, system, figures):
    for key, value in figures.items():
        results.setdefault(key, {}).setdefault(system, []).append(value)


def check(report, what, errors):
    if report["errors"]:
        errors.append("%s: %d errors, first: %s" % (what, report["errors"], report["first_error"]))


def run_turns(a, bench, clusters, results, errors, commands):
    chosen = [w for w in workloads(a) if a.workloads is None or w[0] in a.workloads]
    for turn in range(a.turns):
        for name, workload, args in chosen:
            for system in SYSTEMS:
                endpoints = clusters[system].endpoints
                if name == "put-1-client":
                    # One connection goes to the first endpoint; which member that is to the
                    # leader differs between the clusters (elections are random), and a put
                    # through a follower takes one more hop. Both systems get their leader.
                    endpoints = [clusters[system].leader_endpoint()]
                report = bench.run(endpoints, workload, args, a.run_timeout)
                commands.setdefault(name, report["command"])
                check(report, "%s %s turn %d" % (system, name, turn + 1), errors)
                record(results, system, figures_of(name, report))
            print("turn %d: %s done" % (turn + 1, name), flush=True)


def run_one_key_reads(a, bench, clusters, results, errors, commands, name):
    """Turns of the linearizable one-key read, dolmen and etcd alternating."""
    for turn in range(a.turns):
        for system in SYSTEMS:
            report = bench.run(clusters[system].endpoints, "range",
                               ["--conns", a.conns, "--clients", a.clients, "--total", a.total,
                                "--range-key", "0"], a.run_timeout)
            commands.setdefault(name, report["command"])
            check(report, "%s %s" % (system, name), errors)
            record(results, system, figures_of(name, report))


def run_keys_phase(a, bench, clusters, results, errors, commands):
    # The baseline for "reads do not slow down as the store grows": the same one-key read
    # right before loading (the workload turns' range-l ran minutes earlier, under another
    # load of the machine; comparing against it mixed the machine's drift into the ratio).
    run_one_key_reads(a, bench, clusters, results, errors, commands, "range-l-1key-before-load")
    if 0 < a.range_keys < a.keys:
        # The issue states the read target at its own store size (100,000 keys): load that
        # many first and read, then load the full count (the first keys get a second version).
        for system in SYSTEMS:
            report = bench.run(clusters[system].endpoints, "put",
                               ["--conns", a.conns, "--clients", a.load_clients,
                                "--total", a.range_keys, "--key-space", a.range_keys,
                                "--sequential-keys", "--key-size", 12, "--val-size", 256],
                               a.load_timeout)
            check(report, "%s load %d keys" % (system, a.range_keys), errors)
        time.sleep(a.settle_s)
        run_one_key_reads(a, bench, clusters, results, errors, commands,
                          "range-l-1key-of-%dkeys" % a.range_keys)
    for system in SYSTEMS:
        c = clusters[system]
        start = time.monotonic()
        report = bench.run(c.endpoints, "put", ["--conns", a.conns, "--clients", a.load_clients,
                                                "--total", a.keys, "--key-space", a.keys,
                                                "--sequential-keys", "--key-size", 12,
                                                "--val-size", 256], a.load_timeout)
        commands.setdefault("load", report["command"])
        check(report, "%s load" % system, errors)
        record(results, system, {"load %d keys s" % a.keys: time.monotonic() - start})
        time.sleep(a.settle_s)  # let background work (checkpoints, compaction of logs) settle
        for i, m in enumerate(c.members):
            record(results, system, {
                "RSS member %d MiB" % (i + 1): m.status_kib("VmRSS") / 1024.0,
                "RSS anon member %d MiB" % (i + 1): m.status_kib("RssAnon") / 1024.0,
                "RSS file member %d MiB" % (i + 1): m.status_kib("RssFile") / 1024.0,
                "data dir member %d MiB" % (i + 1): m.data_bytes() / 2**20})
    # The same one-key read, now with the keys loaded (the issue's "range QPS with N keys vs
    # 1 key"), and reads of random keys among them.
    run_one_key_reads(a, bench, clusters, results, errors, commands,
                      "range-l-1key-of-%dkeys" % a.keys)
    name = "range-l-random-of-%dkeys" % a.keys
    for turn in range(a.turns):
        for system in SYSTEMS:
            report = bench.run(clusters[system].endpoints, "range",
                               ["--conns", a.conns, "--clients", a.clients, "--total", a.total,
                                "--key-size", 12, "--key-space", a.keys], a.run_timeout)
            commands.setdefault(name, report["command"])
            check(report, "%s %s" % (system, name), errors)
            record(results, system, figures_of(name, report))
    for turn in range(a.turns):
        for system in SYSTEMS:
            member = clusters[system].members[-1]
            member.stop()
            start = time.monotonic()
            member.spawn()
            wait_read(bench, member, READY_TIMEOUT_S)
            seconds = time.monotonic() - start
            record(results, system, {"restart to first read s": seconds})


def run_mixed_phase(a, bench, clusters, results, errors, commands):
    """Kubernetes' pattern: readers list a large prefix linearizably from the leader while one
    client writes. A read that runs on the Raft loop delays every write behind it; this phase
    shows it as put p99 and put rate under the readers' load, and counts elections."""
    key_size, prefix = 20, "0" * 15  # the loaded keys alone match the prefix
    for system in SYSTEMS:
        report = bench.run(clusters[system].endpoints, "put",
                           ["--conns", a.conns, "--clients", a.load_clients,
                            "--total", a.mixed_keys, "--key-space", a.mixed_keys,
                            "--sequential-keys", "--key-size", key_size,
                            "--val-size", a.mixed_val_size], a.load_timeout)
        check(report, "%s mixed load" % system, errors)
    time.sleep(a.settle_s)
    name = "mixed %d keys" % a.mixed_keys
    for turn in range(a.turns):
        for system in SYSTEMS:
            c = clusters[system]
            leader = c.leader_endpoint()
            term_before = c.max_term()
            readers = bench.start([leader], "range",
                                  ["--conns", 2, "--clients", 2, "--total", 10**9,
                                   "--range-key", prefix, "--prefix", "--consistency", "l",
                                   "--request-timeout-ms", 60000], a.mixed_seconds)
            put = bench.run([leader], "put",
                            ["--clients", 1, "--total", 10**9, "--key-space", 1000,
                             "--key-size", 8, "--val-size", a.mixed_val_size],
                            a.mixed_seconds + 15)
            ranges = bench.finish(readers, a.mixed_seconds + 90)
            commands.setdefault(name + " put", put["command"])
            commands.setdefault(name + " range", ranges["command"])
            check(put, "%s %s put turn %d" % (system, name, turn + 1), errors)
            check(ranges, "%s %s range turn %d" % (system, name, turn + 1), errors)
            lat = put["requests"]["latency_ms"]
            record(results, system, {
                "%s put qps" % name: put["requests"]["per_second"],
                "%s put p99 ms" % name: lat["p99"],
                "%s put max ms" % name: lat["max"],
                "%s range qps" % name: ranges["requests"]["per_second"],
                "%s elections" % name: c.max_term() - term_before})
        print("turn %d: %s done" % (turn + 1, name), flush=True)


# -- JSON gateway ----------------------------------------------------------------------------

# wrk scripts (Lua): every request a POST with a JSON body, on keep-alive connections. Puts
# write --gateway-key-space keys chosen at random (etcd's keys and values are base64 in JSON).
GATEWAY_SCRIPTS = {
    "put": """
math.randomseed(%(seed)d)
local value = string.rep("A", %(val_b64)d)
request = function()
  local key = string.format("gw%%08d", math.random(%(key_space)d))
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"},
    '{"key":"' .. base64(key) .. '","value":"' .. value .. '"}')
end
""",
    "range": """
request = function()
  return wrk.format("POST", "/v3/kv/range", {["Content-Type"] = "application/json"},
    '{"key":"MA=="}')
end
""",
}
# A base64 encoder in Lua (wrk has none built in).
GATEWAY_LUA_BASE64 = """
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b %% 2 ^ i - b %% 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%%d%%d%%d?%%d?%%d?%%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({"", "==", "="})[#data %% 3 + 1])
end
"""


def run_wrk(a, tmp, url, workload, seed):
    """One wrk run -> (requests/s, errors text or None, command)."""
    script = os.path.join(tmp, "gateway-%s.lua" % workload)
    with open(script, "w") as f:
        f.write(GATEWAY_LUA_BASE64.replace("%%", "%") + GATEWAY_SCRIPTS[workload] % {
            "seed": seed, "val_b64": 4 * ((a.val_size + 2) // 3),
            "key_space": a.gateway_key_space})
    cmd = [WRK, "-t", str(a.gateway_threads), "-c", str(a.gateway_conns),
           "-d", "%gs" % a.gateway_seconds, "--timeout", "10s", "-s", script, url]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=a.gateway_seconds + a.run_timeout)
    out = proc.stdout
    rate = None
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rate = float(line.split()[1])
    problems = [line.strip() for line in out.splitlines()
                if line.strip().startswith(("Non-2xx", "Socket errors"))]
    if proc.returncode != 0 or rate is None or problems:
        return rate, "%s: rc=%d %s %s" % (" ".join(cmd), proc.returncode, problems,
                                          (out + proc.stderr)[-500:]), cmd
    return rate, None, cmd


def run_gateway_phase(a, clusters, results, errors, commands, tmp):
    """Put and range QPS through the JSON gateway (POST /v3/kv/put, /v3/kv/range, keep-alive
    HTTP/1.1 connections from wrk) on each cluster's leader, in turns."""
    for turn in range(a.turns):
        for system in SYSTEMS:
            url = "http://" + clusters[system].leader_endpoint()
            for workload in ("put", "range"):
                rate, error, cmd = run_wrk(a, tmp, url, workload, seed=turn + 1)
                commands.setdefault("gateway %s" % workload, " ".join(cmd))
                if error:
                    errors.append("%s gateway %s turn %d: %s" % (system, workload, turn + 1,
                                                                 error))
                    continue
                record(results, system, {"gateway %s qps" % workload: rate})
        print("turn %d: gateway done" % (turn + 1), flush=True)


def etcdctl(endpoint, args, timeout_s):
    env = clean_env()
    env["ETCDCTL_API"] = "3"
    tls = ["--cacert", CLIENT_TLS[2]] if CLIENT_TLS else []
    return subprocess.run([ETCDCTL, "--endpoints", client_scheme() + endpoint] + tls + args,
                          capture_output=True, text=True, timeout=timeout_s, env=env)


# -- disk probe of the defragmentation phase -------------------------------------------------
# What the one shared disk does while puts run with and without defragmentations: the WAL
# fdatasync latency of every member (etcd_disk_wal_fsync_duration_seconds, scraped before and
# after the window), the page cache's dirty and writeback pages and the disk's written bytes
# (/proc/meminfo, /proc/diskstats, sampled every 50 ms), and how long each defragmentation took.

WAL_FSYNC = "etcd_disk_wal_fsync_duration_seconds"
# A backend commit runs in the member's apply path (dolmen: the driver's turn; etcd: its batch
# commit under the backend lock), so its tail is a put's tail.
BACKEND_COMMIT = "etcd_disk_backend_commit_duration_seconds"
DISK_SAMPLE_S = 0.05


def disk_histograms(endpoint):
    """{metric: {'le bound': cumulative count, ..., 'sum': s, 'count': n}} of one member for
    WAL_FSYNC and BACKEND_COMMIT, or None (also with --client-tls: the probe speaks plain HTTP
    only, and its figures are then left out)."""
    try:
        with urllib.request.urlopen("http://%s/metrics" % endpoint, timeout=5) as r:
            text = r.read().decode()
    except (OSError, ValueError):
        return None
    out = {WAL_FSYNC: {}, BACKEND_COMMIT: {}}
    for line in text.splitlines():
        metric = next((m for m in out if line.startswith(m)), None)
        if metric is None:
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith(metric + "_bucket"):
            out[metric][float(name.split('le="')[1].split('"')[0])] = float(value)
        elif name == metric + "_sum":
            out[metric]["sum"] = float(value)
        elif name == metric + "_count":
            out[metric]["count"] = float(value)
    return out if "count" in out[WAL_FSYNC] else None


def fsync_figures(before, after):
    """(mean ms, p99 ms as the upper bound of the bucket that holds it, count) of the syncs
    between two scrapes of one member."""
    if "count" not in (before or {}) or "count" not in (after or {}):
        return None
    n = after["count"] - before["count"]
    if n <= 0:
        return None
    mean_ms = 1000 * (after["sum"] - before["sum"]) / n
    bounds = sorted(k for k in after if isinstance(k, float))
    p99 = None
    for b in bounds:
        if after[b] - before.get(b, 0) >= 0.99 * n:
            p99 = 1000 * b if b != float("inf") else float("inf")
            break
    return mean_ms, p99, n


def disk_device():
    """The block device under the working directory, as named in /proc/diskstats."""
    try:
        dev = os.stat(tempfile.gettempdir()).st_dev
        with open("/sys/dev/block/%d:%d/uevent" % (os.major(dev), os.minor(dev))) as f:
            for line in f:
                if line.startswith("DEVNAME="):
                    return line.strip().split("=", 1)[1]
    except OSError:
        pass
    return None


class DiskSampler:
    """Samples dirty + writeback page cache (MiB) and the device's written sectors."""

    def __init__(self):
        self.device = disk_device()
        self.max_dirty_mib = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def written_sectors(self):
        try:
            with open("/proc/diskstats") as f:
                for line in f:
                    parts = line.split()
                    if parts[2] == self.device:
                        return int(parts[9])
        except (OSError, IndexError, ValueError):
            pass
        return 0

    def run(self):
        for _ in range(100000):  # bounded: 100000 samples of 50 ms
            if self.stop.wait(DISK_SAMPLE_S):
                return
            kib = 0
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith(("Dirty:", "Writeback:")):
                        kib += int(line.split()[1])
            self.max_dirty_mib = max(self.max_dirty_mib, kib / 1024.0)

    def __enter__(self):
        self.start_sectors, self.start_s = self.written_sectors(), time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        seconds = max(time.monotonic() - self.start_s, 1e-6)
        self.write_mib_s = (self.written_sectors() - self.start_sectors) * 512 / 2**20 / seconds


def probe_figures(name, what, leader, endpoints, before, after, sampler):
    """The figures of one window: the leader's and the followers' WAL fsyncs, the leader's
    backend commits, the disk's."""
    out = {"%s disk write MiB/s %s" % (name, what): sampler.write_mib_s,
           "%s dirty+writeback max MiB %s" % (name, what): sampler.max_dirty_mib}
    followers = []
    for ep in endpoints:
        if not before.get(ep) or not after.get(ep):
            continue
        f = fsync_figures(before[ep][WAL_FSYNC], after[ep][WAL_FSYNC])
        if f is None:
            continue
        if ep == leader:
            out["%s leader wal fsync mean ms %s" % (name, what)] = f[0]
            out["%s leader wal fsync p99 ms (bucket) %s" % (name, what)] = f[1]
            commits = fsync_figures(before[ep][BACKEND_COMMIT], after[ep][BACKEND_COMMIT])
            if commits is not None:
                out["%s leader backend commit mean ms %s" % (name, what)] = commits[0]
                out["%s leader backend commit p99 ms (bucket) %s" % (name, what)] = commits[1]
        else:
            followers.append(f)
    if followers:
        out["%s followers wal fsync mean ms %s" % (name, what)] = statistics.mean(
            f[0] for f in followers)
        out["%s followers wal fsync p99 ms (bucket, worst) %s" % (name, what)] = max(
            f[1] for f in followers)
    return out


def run_defrag_phase(a, bench, clusters, results, errors, commands):
    """Put latency during a defragmentation vs without (issue 18: at most 10% higher). Loads
    --defrag-keys keys twice and compacts, so the file has free pages; then per turn one client
    puts for --defrag-seconds without, and again while etcdctl defrag runs on the leader in a
    loop (bounded in count and time)."""
    for system in SYSTEMS:
        c = clusters[system]
        for _ in range(2):  # the same keys twice: the first versions become free pages
            report = bench.run(c.endpoints, "put",
                               ["--conns", a.conns, "--clients", a.load_clients,
                                "--total", a.defrag_keys, "--key-space", a.defrag_keys,
                                "--sequential-keys", "--key-size", 20,
                                "--val-size", a.mixed_val_size], a.load_timeout)
            check(report, "%s defrag load" % system, errors)
        got = etcdctl(c.leader_endpoint(), ["put", "defrag-probe", "x", "-w", "json"],
                      PROBE_TIMEOUT_S)
        rev = json.loads(got.stdout)["header"]["revision"] if got.returncode == 0 else None
        if rev is None or etcdctl(c.leader_endpoint(), ["compact", str(rev)],
                                  60).returncode != 0:
            errors.append("%s: compaction before the defrag phase failed" % system)
    time.sleep(a.settle_s)
    name = "defrag %d keys" % a.defrag_keys
    for turn in range(a.turns):
        for system in SYSTEMS:
            c = clusters[system]
            leader = c.leader_endpoint()
            term_before = c.max_term()
            put_args = ["--clients", 1, "--total", 10**9, "--key-space", 1000, "--key-size", 8,
                        "--val-size", a.mixed_val_size]

            def window(what, beside=None):
                """One client's puts for --defrag-seconds, with `beside` called in a loop on
                another thread meanwhile (bounded in count and time); records the window's
                figures and returns [(ok, seconds)] of those calls."""
                stop, calls = threading.Event(), []

                def loop():
                    deadline = time.monotonic() + a.defrag_seconds + 10
                    for _ in range(1000):
                        if stop.is_set() or time.monotonic() > deadline:
                            return
                        started = time.monotonic()
                        ok = beside(stop)
                        calls.append((ok, time.monotonic() - started))
                looper = threading.Thread(target=loop)
                before = {ep: disk_histograms(ep) for ep in c.endpoints}
                with DiskSampler() as sampler:
                    if beside:
                        looper.start()
                    report = bench.run([leader], "put", put_args, a.defrag_seconds + 15)
                    stop.set()
                    if beside:
                        looper.join(120)
                after = {ep: disk_histograms(ep) for ep in c.endpoints}
                record(results, system, probe_figures(name, what, leader, c.endpoints, before,
                                                      after, sampler))
                check(report, "%s %s put %s turn %d" % (system, name, what, turn + 1), errors)
                lat = report["requests"]["latency_ms"]
                record(results, system, {
                    "%s put qps %s" % (name, what): report["requests"]["per_second"],
                    "%s put p99 ms %s" % (name, what): lat["p99"],
                    "%s put max ms %s" % (name, what): lat["max"]})
                if what == "during":
                    commands.setdefault(name + " put", report["command"])
                return calls

            window("without")
            defrags = window("during", lambda stop: etcdctl(
                leader, ["--command-timeout=60s", "defrag"], 90).returncode == 0)
            if defrags:
                record(results, system, {"%s etcdctl defrag s (median)" % name:
                                         statistics.median(t for _, t in defrags)})
            if a.defrag_control and defrags:
                # The control: etcdctl processes at the same pace, without a defragmentation.
                # What they cost the puts is the harness's, not the member's.
                gap = statistics.median(t for _, t in defrags)

                def status_then_wait(stop):
                    ok = etcdctl(leader, ["endpoint", "status"], 90).returncode == 0
                    stop.wait(gap)
                    return ok
                window("control", status_then_wait)
            record(results, system, {"%s defrags done" % name: sum(ok for ok, _ in defrags),
                                     "%s elections" % name: c.max_term() - term_before})
            if not any(ok for ok, _ in defrags):
                errors.append("%s: no defrag succeeded in turn %d" % (system, turn + 1))
        print("turn %d: %s done" % (turn + 1, name), flush=True)


# -- clients sweep ---------------------------------------------------------------------------

SWEEP_WORKLOADS = {
    # name -> (dolmen-bench workload, args besides --clients/--conns/--total)
    "put": ("put", ["--key-size", 8, "--val-size", 256, "--key-space", 10000]),
    "range-l": ("range", ["--range-key", "0", "--consistency", "l"]),
    "range-s": ("range", ["--range-key", "0", "--consistency", "s"]),
    "txn-put": ("txn-put", ["--key-size", 8, "--val-size", 256, "--key-space", 10000]),
}


def sweep_total(a, clients):
    """Requests for one run at `clients`: enough for every client to send a few, at most
    --total, and --total-1client per client below that (1 client is latency-bound)."""
    return max(4 * clients, min(a.total, a.total_1client * clients))


def run_sweep(a, bench, clusters, errors, commands):
    """{workload: {clients: {system: {"qps": [..], "p99": [..]}}}} over the turns."""
    runs = {}
    for turn in range(a.turns):
        for name in a.sweep_workloads:
            workload, extra = SWEEP_WORKLOADS[name]
            for clients in a.sweep_clients:
                args = ["--conns", min(a.conns, clients), "--clients", clients,
                        "--total", sweep_total(a, clients)] + extra
                for system in SYSTEMS:
                    endpoints = clusters[system].endpoints
                    if clients == 1:  # as put-1-client: the one connection goes to the leader
                        endpoints = [clusters[system].leader_endpoint()]
                    report = bench.run(endpoints, workload, args, a.run_timeout)
                    commands.setdefault("%s %d clients" % (name, clients), report["command"])
                    check(report, "%s %s %d clients turn %d" % (system, name, clients, turn + 1),
                          errors)
                    cell = runs.setdefault(name, {}).setdefault(clients, {}).setdefault(
                        system, {"qps": [], "p99": []})
                    cell["qps"].append(report["requests"]["per_second"])
                    cell["p99"].append(report["requests"]["latency_ms"]["p99"])
                print("turn %d: %s %d clients done" % (turn + 1, name, clients), flush=True)
    return runs


def sweep_medians(runs):
    return {name: {clients: {system: {k: statistics.median(v) for k, v in cell.items()}
                             for system, cell in per_system.items()}
                   for clients, per_system in per_clients.items()}
            for name, per_clients in runs.items()}


def sweep_markdown(med):
    lines = ["| workload | clients | dolmen QPS | etcd QPS | QPS ratio | dolmen p99 ms | "
             "etcd p99 ms | p99 ratio |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, per_clients in med.items():
        for clients in sorted(per_clients):
            d, e = per_clients[clients]["dolmen"], per_clients[clients]["etcd"]
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
                name, clients, fmt(d["qps"]), fmt(e["qps"]),
                fmt(d["qps"] / e["qps"] if e["qps"] else None), fmt(d["p99"]), fmt(e["p99"]),
                fmt(d["p99"] / e["p99"] if e["p99"] else None)))
    return "\n".join(lines) + "\n"


def write_sweep_plots(med, out_dir, title):
    """sweep.dat (one gnuplot data block per workload) and sweep.gp; runs gnuplot, which
    writes sweep-qps.png and sweep-p99.png. Returns the PNG paths."""
    dat = os.path.join(out_dir, "sweep.dat")
    names = list(med)
    with open(dat, "w") as f:
        for i, name in enumerate(names):
            f.write("# %s\n# clients dolmen_qps etcd_qps dolmen_p99_ms etcd_p99_ms\n" % name)
            for clients in sorted(med[name]):
                d, e = med[name][clients]["dolmen"], med[name][clients]["etcd"]
                f.write("%d %.1f %.1f %.3f %.3f\n" % (clients, d["qps"], e["qps"], d["p99"],
                                                       e["p99"]))
            f.write("\n\n")  # gnuplot: a new data block (index i)
    pngs = [os.path.join(out_dir, "sweep-qps.png"), os.path.join(out_dir, "sweep-p99.png")]
    xtics = sorted({c for per in med.values() for c in per})

    def plots(col_dolmen, col_etcd):
        parts = []
        for i, name in enumerate(names):
            parts.append("'%s' index %d using 1:%d with linespoints lw 2 dt 1 lc %d "
                         "title 'dolmen %s'" % (dat, i, col_dolmen, i + 1, name))
            parts.append("'%s' index %d using 1:%d with linespoints lw 2 dt 2 lc %d "
                         "title 'etcd 3.4 %s'" % (dat, i, col_etcd, i + 1, name))
        return ", ".join(parts)

    script = "\n".join([
        "set terminal pngcairo size 900,560 font 'sans,10'",
        "set logscale x 2",
        "set xtics (%s)" % ", ".join('"%d" %d' % (c, c) for c in xtics),
        "set xlabel 'clients (closed loop, one request in flight each)'",
        "set grid",
        "set key outside right top",
        "set output '%s'" % pngs[0],
        "set title '%s: requests/s by clients'" % title,
        "set ylabel 'requests/s'",
        "set yrange [0:*]",
        "plot " + plots(2, 3),
        "set output '%s'" % pngs[1],
        "set title '%s: p99 latency by clients'" % title,
        "set ylabel 'p99 latency, ms (log)'",
        "set logscale y 10",
        "set yrange [*:*]",
        "plot " + plots(4, 5),
        ""])
    gp = os.path.join(out_dir, "sweep.gp")
    with open(gp, "w") as f:
        f.write(script)
    subprocess.run([GNUPLOT, gp], check=True, capture_output=True, timeout=60)
    return pngs


# -- report ----------------------------------------------------------------------------------

def medians(results):
    out = {}
    for key, per_system in results.items():
        d = statistics.median(per_system.get("dolmen", [0])) if per_system.get("dolmen") else None
        e = statistics.median(per_system.get("etcd", [0])) if per_system.get("etcd") else None
        ratio = (d / e) if d is not None and e else None
        out[key] = {"dolmen": d, "etcd": e, "ratio": ratio,
                    "turns": {s: per_system.get(s, []) for s in SYSTEMS}}
    return out


def targets(m, a):
    """The issue's targets: (text, measured ratio, met)."""
    def ratio(key):
        return (m.get(key) or {}).get("ratio")

    def within(system, keys):  # a system's one-key read with `keys` loaded vs just before
        one = (m.get("range-l-1key-before-load qps") or {}).get(system)
        many = (m.get("range-l-1key-of-%dkeys qps" % keys) or {}).get(system)
        return many / one if one and many is not None else None

    def loaded_read_row(keys):
        return ("range QPS (one key) with %d keys loaded >= 0.9x before loading (dolmen vs "
                "itself; etcd's own: %s)" % (keys, fmt(within("etcd", keys))),
                within("dolmen", keys), lambda r: r >= 0.9)

    rss = [ratio("RSS member %d MiB" % (i + 1)) for i in range(a.size)]
    rss = max(r for r in rss if r is not None) if any(r is not None for r in rss) else None
    rows = [
        ("put QPS >= 2x etcd", ratio("put qps"), lambda r: r >= 2),
        ("put p99 <= etcd's", ratio("put p99 ms"), lambda r: r <= 1),
        ("range linearizable QPS >= 2x", ratio("range-l qps"), lambda r: r >= 2),
        ("range serializable QPS >= 2x", ratio("range-s qps"), lambda r: r >= 2),
        ("txn-put QPS >= 2x", ratio("txn-put qps"), lambda r: r >= 2),
        ("watch events/s >= 2x (%d watchers)" % a.watchers, ratio("watch events/s"),
         lambda r: r >= 2),
        ("RSS <= 0.5x (worst member)", rss, lambda r: r <= 0.5),
        ("restart-to-first-read <= 0.5x", ratio("restart to first read s"), lambda r: r <= 0.5),
        ("1-client put p50 <= 0.5x", ratio("put-1-client p50 ms"), lambda r: r <= 0.5),
    ]
    if a.gateway_seconds > 0:
        rows += [("JSON gateway put QPS >= 2x", ratio("gateway put qps"), lambda r: r >= 2),
                 ("JSON gateway range QPS >= 2x", ratio("gateway range qps"),
                  lambda r: r >= 2)]
    if a.mixed_keys > 0:
        name = "mixed %d keys" % a.mixed_keys
        rows += [("%s: put p99 <= 0.5x etcd's" % name, ratio(name + " put p99 ms"),
                  lambda r: r <= 0.5),
                 ("%s: put rate >= 2x etcd's" % name, ratio(name + " put qps"),
                  lambda r: r >= 2)]
    if a.defrag_keys > 0:
        name = "defrag %d keys" % a.defrag_keys
        during = (m.get(name + " put p99 ms during") or {}).get("dolmen")
        without = (m.get(name + " put p99 ms without") or {}).get("dolmen")
        own = during / without if during is not None and without else None
        rows.append(("%s: put p99 during a defrag <= 1.1x without (dolmen vs itself)" % name,
                     own, lambda r: r <= 1.1))
    # The issue's own store size first, when measured; the full load's figure as well.
    if 0 < a.range_keys < a.keys:
        rows.append(loaded_read_row(a.range_keys))
    rows.append(loaded_read_row(a.keys))
    return [(text, r, (test(r) if r is not None else None)) for text, r, test in rows]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 100:
        return "%.3g" % v if abs(v) < 1 else "%.2f" % v
    return "%.0f" % v


def markdown(m, a, tgts):
    lines = ["| figure | dolmen | etcd 3.4 | dolmen/etcd |", "| --- | ---: | ---: | ---: |"]
    for key in m:
        lines.append("| %s | %s | %s | %s |" % (key, fmt(m[key]["dolmen"]), fmt(m[key]["etcd"]),
                                              fmt(m[key]["ratio"])))
    lines += ["", "| target | measured | met |", "| --- | ---: | --- |"]
    for text, r, met in tgts:
        lines.append("| %s | %s | %s |" % (text, fmt(r), {True: "yes", False: "**no**",
                                                          None: "not measured"}[met]))
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    p.add_argument("--dolmen", default=os.path.join(root, "build-bench/cmd/dolmen/dolmen"))
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--bench", default=os.path.join(root, "build-bench/bench/client/dolmen-bench"))
    p.add_argument("--size", type=int, default=3, help="members per cluster")
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--clients", type=int, default=256)
    p.add_argument("--total", type=int, default=5000, help="requests per workload run")
    p.add_argument("--total-1client", type=int, default=500)
    p.add_argument("--key-space", type=int, default=10000)
    p.add_argument("--val-size", type=int, default=256)
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--watch-puts", type=int, default=3000)
    # Enough writers that delivery, not one writer's put latency, bounds events/s.
    p.add_argument("--watch-clients", type=int, default=64)
    p.add_argument("--workloads", default=None,
                   help="comma-separated subset of: put, put-1-client, range-l, range-s, "
                        "txn-put, watch, lease-keepalive (default: all)")
    p.add_argument("--keys", type=int, default=100000,
                   help="keys (256-byte values) loaded before the memory/restart figures; "
                        "the issue's full target is 1000000; 0 skips that phase")
    p.add_argument("--range-keys", type=int, default=100000,
                   help="when below --keys: load this many keys first and measure the one-key "
                        "read there too (the issue's 'reads do not slow down' target is stated "
                        "at 100,000 keys); 0 skips it")
    p.add_argument("--mixed-keys", type=int, default=0,
                   help="keys (--mixed-val-size each) that two readers list linearizably from "
                        "the leader while one client puts, for --mixed-seconds per turn (issue "
                        "18: 20000); 0 skips that phase")
    p.add_argument("--gateway-seconds", type=float, default=10.0,
                   help="seconds of wrk load per turn on the JSON gateway (put, then range); "
                        "0 skips that phase")
    p.add_argument("--gateway-conns", type=int, default=64)
    p.add_argument("--gateway-threads", type=int, default=2)
    p.add_argument("--gateway-key-space", type=int, default=10000)
    p.add_argument("--mixed-val-size", type=int, default=1024)
    p.add_argument("--defrag-keys", type=int, default=0,
                   help="keys (--mixed-val-size each, written twice and compacted) for the "
                        "put-latency-during-defragmentation phase (issue 18); 0 skips it")
    p.add_argument("--defrag-seconds", type=float, default=15.0)
    p.add_argument("--defrag-control", action="store_true",
                   help="also a control window per turn: etcdctl endpoint status at the "
                        "defragmentations' pace, without one (the harness's own cost)")
    p.add_argument("--mixed-seconds", type=float, default=20.0)
    p.add_argument("--load-clients", type=int, default=64)
    p.add_argument("--settle-s", type=float, default=2.0)
    p.add_argument("--run-timeout", type=float, default=300.0, help="bound on each bench run")
    p.add_argument("--load-timeout", type=float, default=1800.0)
    p.add_argument("--md-out", default="compare.md")
    p.add_argument("--json-out", default="compare.json")
    p.add_argument("--client-tls", action="store_true",
                   help="both systems serve clients over https (a throwaway CA's certificate, "
                        "made with the openssl CLI); the clients verify it")
    p.add_argument("--peer-tls", action="store_true",
                   help="members talk to each other over https (mutual TLS, a throwaway CA's "
                        "certificate)")
    p.add_argument("--tls-variants", action="store_true",
                   help="instead of the phases: put and range-l with plain, client TLS and "
                        "peer TLS clusters, --turns rounds (bench/compare_tls.py)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs, runs)")
    p.add_argument("--sweep-clients", default=None,
                   help="comma-separated client counts (e.g. 1,16,64,256,1024): run the clients "
                        "sweep instead of the workloads and keys phases")
    p.add_argument("--sweep-workloads", default="put,range-l",
                   help="comma-separated subset of: %s" % ", ".join(SWEEP_WORKLOADS))
    p.add_argument("--sweep-out", default="sweep",
                   help="directory for sweep.json, sweep.dat, sweep.gp and the PNGs")
    p.add_argument("--sweep-title", default="dolmen vs etcd 3.4")
    a = p.parse_args(argv)
    for name in ("dolmen", "etcd", "bench"):
        if not os.access(getattr(a, name), os.X_OK):
            p.error("--%s %s is not executable" % (name, getattr(a, name)))
        # Members run in their own directories: a relative path would not be found there.
        setattr(a, name, os.path.abspath(getattr(a, name)))
    if a.size < 1 or a.turns < 1 or a.keys < 0 or a.total < 1:
        p.error("--size, --turns and --total must be at least 1, --keys at least 0")
    if a.sweep_clients is not None:
        try:
            a.sweep_clients = sorted({int(c) for c in a.sweep_clients.split(",") if c})
        except ValueError:
            p.error("--sweep-clients takes comma-separated integers")
        if not a.sweep_clients or min(a.sweep_clients) < 1:
            p.error("--sweep-clients needs client counts of at least 1")
        a.sweep_workloads = [w for w in a.sweep_workloads.split(",") if w]
        unknown = [w for w in a.sweep_workloads if w not in SWEEP_WORKLOADS]
        if unknown or not a.sweep_workloads:
            p.error("unknown --sweep-workloads %s; known: %s"
                    % (unknown, ", ".join(SWEEP_WORKLOADS)))
        if not os.access(GNUPLOT, os.X_OK):
            p.error("%s not found (Debian package gnuplot-nox)" % GNUPLOT)
    if a.tls_variants:  # the variants choose their own TLS and run put and range-l only
        if a.client_tls or a.peer_tls or a.sweep_clients is not None:
            p.error("--tls-variants chooses TLS itself: no --client-tls, --peer-tls or "
                    "--sweep-clients with it")
        a.gateway_seconds = a.keys = a.mixed_keys = a.defrag_keys = 0
    if a.gateway_seconds > 0 and a.client_tls:
        p.error("the gateway phase loads http:// URLs only: use --gateway-seconds 0 with "
                "--client-tls")
    if a.gateway_seconds > 0 and not os.access(WRK, os.X_OK):
        p.error("%s not found (Debian package wrk); or --gateway-seconds 0" % WRK)
    if a.workloads is not None:
        a.workloads = [w for w in a.workloads.split(",") if w]
        known = [w[0] for w in workloads(a)]
        unknown = [w for w in a.workloads if w not in known]
        if unknown:
            p.error("unknown workloads %s; known: %s" % (unknown, ", ".join(known)))
    return a


def start_clusters(a, tmp, bench):
    clusters = {"dolmen": Cluster("dolmen", a.dolmen, a.size, tmp),
                "etcd": Cluster("etcd", a.etcd, a.size, tmp)}
    for system in SYSTEMS:
        clusters[system].start(bench)
        print("%s cluster ready: %s" % (system, ",".join(clusters[system].endpoints)),
              flush=True)
    for system in SYSTEMS:  # the key that range-l/range-s read
        bench.run(clusters[system].endpoints, "put", ["--total", 1, "--key-size", 1], 30)
    return clusters


def run_servers(a, work):
    """Starts both clusters in a temp dir, runs work(bench, clusters, tmp) and always stops
    every server by PID. Returns what work returned."""
    tmp = tempfile.mkdtemp(prefix="dolmen-compare-")
    bench = Bench(a.bench, tmp)
    global CLIENT_TLS, PEER_TLS
    tls_files = make_tls_files(tmp) if a.client_tls or a.peer_tls else None
    CLIENT_TLS = tls_files if a.client_tls else None
    PEER_TLS = tls_files if a.peer_tls else None
    # SIGTERM (e.g. a ctest timeout) must still stop our servers by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    clusters = None
    ok = False
    try:
        clusters = start_clusters(a, tmp, bench)
        result = work(bench, clusters, tmp)
        ok = True
        return result
    finally:
        stop_all()
        if not ok and clusters is not None:
            for c in SYSTEMS:
                for m in clusters[c].members:
                    sys.stderr.write("--- %s log tail\n%s\n" % (m.name, m.log_tail()))
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


def main_sweep(a):
    errors, commands = [], {}
    runs = run_servers(a, lambda bench, clusters, _: run_sweep(a, bench, clusters, errors,
                                                               commands))
    med = sweep_medians(runs)
    os.makedirs(a.sweep_out, exist_ok=True)
    pngs = write_sweep_plots(med, a.sweep_out, a.sweep_title)
    table = sweep_markdown(med)
    with open(os.path.join(a.sweep_out, "sweep.md"), "w") as f:
        f.write(table)
    with open(os.path.join(a.sweep_out, "sweep.json"), "w") as f:
        json.dump({"args": vars(a), "medians": med, "turns": runs, "commands": commands,
                   "errors": errors, "plots": pngs}, f, indent=1)
    sys.stdout.write(table)
    for p in pngs:
        print("wrote", p)
    for e in errors:
        print("error:", e)
    return 1 if errors else 0


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.sweep_clients is not None:
        return main_sweep(a)
    if a.tls_variants:
        import compare_tls  # noqa: E402 - beside this file
        return compare_tls.main(a, sys.modules[__name__])
    results, errors, commands = {}, [], {}

    def work(bench, clusters, tmp):
        run_turns(a, bench, clusters, results, errors, commands)
        if a.gateway_seconds > 0:
            run_gateway_phase(a, clusters, results, errors, commands, tmp)
        if a.keys > 0:
            run_keys_phase(a, bench, clusters, results, errors, commands)
        if a.mixed_keys > 0:
            run_mixed_phase(a, bench, clusters, results, errors, commands)
        if a.defrag_keys > 0:
            run_defrag_phase(a, bench, clusters, results, errors, commands)

    run_servers(a, work)
    m = medians(results)
    tgts = targets(m, a)
    with open(a.md_out, "w") as f:
        f.write(markdown(m, a, tgts))
    with open(a.json_out, "w") as f:
        json.dump({"args": vars(a), "figures": m, "commands": commands, "errors": errors,
                   "targets": [{"target": t, "ratio": r, "met": met} for t, r, met in tgts]},
                  f, indent=1)
    sys.stdout.write(markdown(m, a, tgts))
    for e in errors:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
