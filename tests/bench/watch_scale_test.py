#!/usr/bin/python3
"""Issue 5's scale guarantees, end to end through gRPC against a 1-member dolmen:

- 10,000 watchers on one Watch stream and a burst of writes: every watcher gets every event,
  once, in order;
- 1,000 Watch streams, one watcher each, the same.

dolmen-bench's watch workload does the checking: every watcher watches the key the puts write,
so it must see consecutive revisions, exactly as many as puts were acknowledged (a gap is a
skipped event, a repeat or step back a duplicate or reordering; any of these is an error in
its report). Usage: watch_scale_test.py DOLMEN DOLMEN_BENCH
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from one_member import dolmen_member, print_log_tails, verdict  # noqa: E402

PUTS = 100
RUN_TIMEOUT_S = 120

CASES = [
    ("10,000 watchers on one stream", ["--watchers", 10000, "--watch-streams", 1]),
    ("1,000 streams of one watcher", ["--watchers", 1000, "--watch-streams", 1000,
                                      "--conns", 4]),
]


def main():
    dolmen, bench_binary = sys.argv[1], sys.argv[2]
    failures = []
    with dolmen_member(dolmen, bench_binary, "dolmen-watch-scale-") as (bench, cluster):
        for what, extra in CASES:
            watchers = extra[1]
            args = ["--total", PUTS, "--clients", 4, "--val-size", 16,
                    "--max-seconds", RUN_TIMEOUT_S - 30] + extra
            began = time.monotonic()
            report = bench.run(cluster.endpoints, "watch", args, RUN_TIMEOUT_S)
            took = time.monotonic() - began
            puts = report["requests"]["count"]
            events = report["events"]["count"]
            print("%s: %d puts, %d events in %.1f s, %d errors%s"
                  % (what, puts, events, took, report["errors"],
                     (", first: " + report["first_error"]) if report["errors"] else ""))
            if puts != PUTS:
                failures.append("%s: %d puts acknowledged, want %d" % (what, puts, PUTS))
            if report["errors"]:
                failures.append("%s: %d errors, first: %s"
                                % (what, report["errors"], report["first_error"]))
            if events != PUTS * watchers:
                failures.append("%s: %d events, want %d" % (what, events, PUTS * watchers))
        if failures:
            print_log_tails(cluster)
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
