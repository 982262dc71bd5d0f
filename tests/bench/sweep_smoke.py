#!/usr/bin/python3
"""Smoke run of bench/compare.py's clients sweep with tiny counts on 1-member clusters.

Checks that it finished, that every (workload, clients) cell has a QPS and a p99 for dolmen
and etcd, that the gnuplot data has one row per cell, and that both plots are PNG files.
compare.py stops its own servers by PID. Usage: sweep_smoke.py COMPARE DOLMEN BENCH
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

TIMEOUT_S = 60
CLIENTS = [1, 4]
WORKLOADS = ["put", "range-l"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def main():
    compare, dolmen, bench = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="dolmen-sweep-smoke-")
    try:
        out = os.path.join(tmp, "sweep")
        cmd = ["/usr/bin/python3", compare, "--dolmen", dolmen, "--bench", bench, "--size", "1",
               "--turns", "1", "--conns", "2", "--total", "40", "--total-1client", "10",
               "--sweep-clients", ",".join(map(str, CLIENTS)),
               "--sweep-workloads", ",".join(WORKLOADS), "--sweep-out", out,
               "--run-timeout", "30"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        print(proc.stdout[-4000:], proc.stderr[-4000:])
        if proc.returncode != 0:
            print("FAIL: compare.py exited with", proc.returncode)
            return 1
        failures = []
        with open(os.path.join(out, "sweep.json")) as f:
            medians = json.load(f)["medians"]
        for w in WORKLOADS:
            for c in CLIENTS:
                cell = medians.get(w, {}).get(str(c), {})
                for system in ("dolmen", "etcd"):
                    fig = cell.get(system)
                    if not fig or not fig["qps"] > 0 or not fig["p99"] > 0:
                        failures.append("no QPS/p99 for %s %s at %d clients" % (system, w, c))
        with open(os.path.join(out, "sweep.dat")) as f:
            rows = [l for l in f if l.strip() and not l.startswith("#")]
        if len(rows) != len(WORKLOADS) * len(CLIENTS):
            failures.append("sweep.dat has %d rows, want %d"
                            % (len(rows), len(WORKLOADS) * len(CLIENTS)))
        for png in ("sweep-qps.png", "sweep-p99.png"):
            path = os.path.join(out, png)
            head = b""
            if os.path.exists(path):
                with open(path, "rb") as f:
                    head = f.read(len(PNG_MAGIC))
            if head != PNG_MAGIC:
                failures.append("%s is missing or not a PNG" % png)
        for f in failures:
            print("FAIL:", f)
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
