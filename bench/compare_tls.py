"""compare.py --tls-variants: what TLS costs dolmen and etcd 3.4 (issue 14 item 8).

Three variants of the same two clusters (compare.py's, --size members each):
  plain        http client and peer URLs;
  client-tls   https client URLs with a throwaway CA's certificate, dolmen-bench verifying it;
  peer-tls     https peer URLs with mutual TLS between members (plaintext clients).
Each round starts both clusters of one variant, runs put and range-l on dolmen then etcd, and
stops them; the rounds go plain, client-tls, peer-tls, plain, ... (--turns rounds), so slow
phases of the shared machine spread over all variants. Ratios are taken within a round (dolmen
and etcd one after the other; a variant and plain a minute apart) and their median reported:
dolmen/etcd per variant, and each system's variant/plain, what TLS costs it.
"""

import json
import statistics
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


def paired_median(numerators, denominators):
    """The median of numerators[i] / denominators[i]: ratios of figures measured in the same
    round (None if there is none). A slow phase of the shared machine then moves both sides of
    a ratio, not just one."""
    ratios = [n / d for n, d in zip(numerators, denominators) if d]
    return statistics.median(ratios) if ratios else None


def summarize(cmp, results):
    """{"<variant> <workload> <figure>": {dolmen, etcd, turns, ratio, dolmen cost, etcd cost}}:
    each system's median over the rounds; ratio, the median over rounds of dolmen/etcd; a
    system's cost, the median over rounds of its variant figure / its plain figure of the same
    round (None for plain itself)."""
    out = {}
    for variant in VARIANTS:
        for w in WORKLOADS:
            for figure in ("qps", "p99 ms"):
                key = "%s %s" % (w, figure)
                turns = results[variant].get(key)
                if not turns:
                    continue
                row = {s: statistics.median(turns[s]) if turns.get(s) else None
                       for s in cmp.SYSTEMS}
                row["turns"] = turns
                row["ratio"] = paired_median(turns.get("dolmen", []), turns.get("etcd", []))
                plain = results["plain"].get(key) or {}
                for system in cmp.SYSTEMS:
                    row["%s cost" % system] = (
                        paired_median(turns.get(system, []), plain.get(system, []))
                        if variant != "plain" else None)
                out["%s %s" % (variant, key)] = row
    return out


def markdown(cmp, table, rounds):
    fmt = cmp.fmt
    lines = ["%d rounds. dolmen, etcd 3.4: medians over the rounds; dolmen/etcd: median of the "
             "rounds' ratios; cost: median over the rounds of the variant's figure / the same "
             "system's plain figure in that round" % rounds, "",
             "| variant | figure | dolmen | etcd 3.4 | dolmen/etcd | dolmen cost | etcd cost |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for key, row in table.items():
        variant, figure = key.split(" ", 1)
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            variant, figure, fmt(row["dolmen"]), fmt(row["etcd"]), fmt(row["ratio"]),
            fmt(row["dolmen cost"]), fmt(row["etcd cost"])))
    lines += ["", "| target | measured | met |", "| --- | ---: | --- |"]
    for variant in VARIANTS:
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
