#!/usr/bin/python3
"""Smoke run of dolmen-bench: every workload with tiny counts against a 1-member dolmen.

Starts dolmen on free loopback ports (bench/compare.py's Cluster: stopped by PID, also on
failure), runs each workload with --total 50 --clients 2 and checks the JSON report: the
expected request count and zero errors. Usage: bench_smoke.py DOLMEN DOLMEN_BENCH
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from one_member import dolmen_member, print_log_tails, verdict  # noqa: E402

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
    failures = []
    with dolmen_member(dolmen, bench_binary, "dolmen-bench-smoke-") as (bench, cluster):
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
            print_log_tails(cluster)
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
