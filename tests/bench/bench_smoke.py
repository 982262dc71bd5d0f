#!/usr/bin/python3
"""Smoke run of dolmen-bench: every workload with tiny counts against a 1-member dolmen.

Starts dolmen on free loopback ports (bench/compare.py's Cluster: stopped by PID, also on
failure), runs each workload with --total 50 --clients 2 and checks the JSON report: the
expected request count and zero errors. Usage: bench_smoke.py DOLMEN DOLMEN_BENCH
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import compare  # noqa: E402  (Cluster, Bench)

TOTAL = 50
WATCHERS = 3
RUN_TIMEOUT_S = 60

CASES = [
    ("put", ["--key-space", 10]),
    ("put", ["--key-space", 10, "--sequential-keys", "--conns", 2]),
    ("range", ["--consistency", "l", "--key-space", 10]),
    ("range", ["--consistency", "s", "--range-key", "0", "--prefix"]),
    ("txn-put", ["--key-space", 4]),
    ("watch", ["--watchers", WATCHERS, "--watch-streams", 2]),
    ("lease-keepalive", []),
]


def main():
    dolmen, bench_binary = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="dolmen-bench-smoke-")
    failures = []
    try:
        bench = compare.Bench(bench_binary, tmp)
        cluster = compare.Cluster("dolmen", dolmen, 1, tmp, set())
        cluster.start(bench)
        for workload, extra in CASES:
            args = ["--total", TOTAL, "--clients", 2] + extra
            report = bench.run(cluster.endpoints, workload, args, RUN_TIMEOUT_S)
            what = "%s %s" % (workload, " ".join(str(a) for a in extra))
            count = report["requests"]["count"]
            if report["errors"] or count != TOTAL:
                failures.append("%s: %d requests (want %d), %d errors, first: %s"
                                % (what, count, TOTAL, report["errors"], report["first_error"]))
            if workload == "watch" and report["events"]["count"] != TOTAL * WATCHERS:
                failures.append("%s: %d events, want %d"
                                % (what, report["events"]["count"], TOTAL * WATCHERS))
            print("%s: %.0f req/s, p99 %.3f ms" % (what, report["requests"]["per_second"],
                                                   report["requests"]["latency_ms"]["p99"]))
        if failures:
            print(json.dumps(report, indent=1))
            for m in cluster.members:
                print("--- %s log tail\n%s" % (m.name, m.log_tail()))
    finally:
        compare.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
