"""compare.py --tls-variants: what TLS costs dolmen and etcd 3.4 (issue 14 item 8).

Three variants of the same two clusters (compare.py's, --size members each):
  plain        http client and peer URLs;
  client-tls   https client URLs with a throwaway CA's certificate, dolmen-bench verifying it;
  peer-tls     https peer URLs with mutual TLS between members (plaintext clients).
Each round starts both clusters of one variant, runs put and range-l on dolmen then etcd, and
stops them; the rounds go plain, client-tls, peer-tls, plain, ... (--turns rounds), so slow
phases of the shared machine spread over all variants. Figures are medians over the rounds:
dolmen/etcd per variant (measured in the same round), and each system's variant/plain, what
TLS costs it.
"""

import json
import sys

VARIANTS = ("plain", "client-tls", "peer-tls")
WORKLOADS = ("put", "range-l")


def run_round(a, cmp, variant, results, errors, commands):
    """One round of one variant: put and range-l on each system, into results[variant]."""
    a.client_tls = variant == "client-tls"
    a.peer_tls = variant == "peer-tls"
    chosen = [w for w in cmp.workloads(a) if w[0] in WORKLOADS]

    def work(bench, clusters, _tmp):
        for name, workload, args in chosen:
            for system in cmp.SYSTEMS:
                report = bench.run(clusters[system].endpoints, workload, args, a.run_timeout)
                commands.setdefault("%s %s" % (variant, name), report["command"])
                cmp.check(report, "%s %s %s" % (variant, system, name), errors)
                cmp.record(results[variant], system, cmp.figures_of(name, report))
    cmp.run_servers(a, work)


def summarize(cmp, results):
    """{"<variant> <workload> qps": {dolmen, etcd, ratio, turns, dolmen cost, etcd cost}}:
    medians per variant, and each system's median over plain's (None for plain itself)."""
    per_variant = {v: cmp.medians(results[v]) for v in VARIANTS}
    out = {}
    for variant in VARIANTS:
        for w in WORKLOADS:
            for figure in ("qps", "p99 ms"):
                key = "%s %s" % (w, figure)
                row = dict(per_variant[variant].get(key) or {})
                if not row:
                    continue
                plain = per_variant["plain"].get(key) or {}
                for system in cmp.SYSTEMS:
                    cost = None
                    if variant != "plain" and row.get(system) and plain.get(system):
                        cost = row[system] / plain[system]
                    row["%s cost" % system] = cost
                out["%s %s" % (variant, key)] = row
    return out


def markdown(cmp, table, rounds):
    fmt = cmp.fmt
    lines = ["%d rounds (medians); cost = the variant's figure / the same system's plain "
             "figure" % rounds, "",
             "| variant | figure | dolmen | etcd 3.4 | dolmen/etcd | dolmen cost | etcd cost |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for key, row in table.items():
        variant, figure = key.split(" ", 1)
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            variant, figure, fmt(row["dolmen"]), fmt(row["etcd"]), fmt(row["ratio"]),
            fmt(row["dolmen cost"]), fmt(row["etcd cost"])))
    lines += ["", "| target | measured | met |", "| --- | ---: | --- |"]
    for variant in VARIANTS[1:]:
        for w in WORKLOADS:
            r = (table.get("%s %s qps" % (variant, w)) or {}).get("ratio")
            met = {True: "yes", False: "**no**"}[r >= 2] if r is not None else "not measured"
            lines.append("| %s %s QPS >= 2x etcd | %s | %s |" % (variant, w, fmt(r), met))
    return "\n".join(lines) + "\n"


def main(a, cmp):
    """Runs the rounds; writes --md-out and --json-out; 1 if a run had errors."""
    results = {v: {} for v in VARIANTS}
    errors, commands = [], {}
    for turn in range(a.turns):
        for variant in VARIANTS:
            run_round(a, cmp, variant, results, errors, commands)
            print("round %d: %s done" % (turn + 1, variant), flush=True)
    table = summarize(cmp, results)
    text = markdown(cmp, table, a.turns)
    with open(a.md_out, "w") as f:
        f.write(text)
    with open(a.json_out, "w") as f:
        json.dump({"args": vars(a), "figures": table, "commands": commands, "errors": errors},
                  f, indent=1)
    sys.stdout.write(text)
    for e in errors:
        print("error:", e)
    return 1 if errors else 0
