#!/usr/bin/python3
"""Smoke run of bench/compare.py with tiny counts on 1-member clusters (dolmen and etcd 3.4).

Checks that it finished and wrote a table with every workload (the JSON gateway's put and
range under wrk too) and a dolmen/etcd ratio for each. Then --tls-variants on 2-member clusters
(plain, client TLS, peer TLS): a ratio and, for the TLS variants, each system's cost for put
and range-l. compare.py stops its own servers by PID. Usage: compare_smoke.py COMPARE DOLMEN
BENCH
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

TIMEOUT_S = 130
TLS_TIMEOUT_S = 100  # three variants, each starting two 2-member clusters
WORKLOADS = ["put", "put-1-client", "range-l", "range-s", "txn-put", "watch", "lease-keepalive"]
KEYS = 300
RANGE_KEYS = 100  # the loaded read is also measured part way through the load
MIXED_KEYS = 50  # listed by two readers while one client puts
DEFRAG_KEYS = 50  # written twice and compacted, then defragmented in a loop while one client puts
# (and the control window: etcdctl at the same pace, no defragmentation)


def main():
    compare, dolmen, bench = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="dolmen-compare-smoke-")
    try:
        md, js = os.path.join(tmp, "out.md"), os.path.join(tmp, "out.json")
        cmd = ["/usr/bin/python3", compare, "--dolmen", dolmen, "--bench", bench, "--size", "1",
               "--turns", "1", "--conns", "2", "--clients", "4", "--total", "40",
               "--total-1client", "10", "--key-space", "20", "--watchers", "4",
               "--watch-puts", "10", "--watch-clients", "2", "--keys", str(KEYS),
               "--range-keys", str(RANGE_KEYS), "--mixed-keys", str(MIXED_KEYS),
               "--mixed-seconds", "2", "--gateway-seconds", "1", "--gateway-conns", "4",
               "--defrag-keys", str(DEFRAG_KEYS), "--defrag-seconds", "1", "--defrag-control",
               "--load-clients", "8", "--settle-s", "0", "--run-timeout", "40",
               "--md-out", md, "--json-out", js]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        print(proc.stdout[-6000:], proc.stderr[-6000:])
        if proc.returncode != 0:
            print("FAIL: compare.py exited with", proc.returncode)
            return 1
        with open(js) as f:
            figures = json.load(f)["figures"]
        with open(md) as f:
            table = f.read()
        failures = []
        for w in WORKLOADS + ["range-l-1key-before-load", "range-l-1key-of-%dkeys" % RANGE_KEYS,
                              "range-l-1key-of-%dkeys" % KEYS,
                              "range-l-random-of-%dkeys" % KEYS,
                              "mixed %d keys put" % MIXED_KEYS,
                              "mixed %d keys range" % MIXED_KEYS, "gateway put", "gateway range"]:
            row = figures.get("%s qps" % w)
            if row is None or row["ratio"] is None or ("| %s qps |" % w) not in table:
                failures.append("no ratio for %s qps" % w)
        for key in ["watch events/s", "RSS member 1 MiB", "data dir member 1 MiB",
                    "restart to first read s", "defrag %d keys put qps without" % DEFRAG_KEYS,
                    "defrag %d keys put qps during" % DEFRAG_KEYS,
                    "defrag %d keys put qps control" % DEFRAG_KEYS,
                    "defrag %d keys leader backend commit mean ms during" % DEFRAG_KEYS,
                    "defrag %d keys defrags done" % DEFRAG_KEYS]:
            if (figures.get(key) or {}).get("ratio") is None:
                failures.append("no ratio for " + key)
        failures += tls_variants(compare, dolmen, bench, tmp)
        for f in failures:
            print("FAIL:", f)
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tls_variants(compare, dolmen, bench, tmp):
    """compare.py --tls-variants with tiny counts; returns what is missing from its output."""
    md, js = os.path.join(tmp, "tls.md"), os.path.join(tmp, "tls.json")
    cmd = ["/usr/bin/python3", compare, "--dolmen", dolmen, "--bench", bench, "--tls-variants",
           "--size", "2", "--turns", "1", "--conns", "2", "--clients", "4", "--total", "40",
           "--key-space", "20", "--settle-s", "0", "--run-timeout", "30", "--md-out", md,
           "--json-out", js]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TLS_TIMEOUT_S)
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    if proc.returncode != 0:
        return ["compare.py --tls-variants exited with %d" % proc.returncode]
    with open(js) as f:
        figures = json.load(f)["figures"]
    failures = []
    for variant in ("plain", "client-tls", "peer-tls"):
        for w in ("put", "range-l"):
            row = figures.get("%s %s qps" % (variant, w)) or {}
            wanted = ["ratio"] + (["dolmen cost", "etcd cost"] if variant != "plain" else [])
            failures += ["no %s for %s %s qps" % (k, variant, w) for k in wanted
                         if row.get(k) is None]
    return failures


if __name__ == "__main__":
    sys.exit(main())
