"""Shared by the tests that run dolmen-bench against a 1-member dolmen: the member's life
(free loopback ports, stopped by PID also on failure, its temp dir removed) and the verdict."""

import contextlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import compare  # noqa: E402  (Cluster, Bench)


@contextlib.contextmanager
def dolmen_member(dolmen, bench_binary, prefix):
    """Yields (bench, cluster) for one started dolmen member."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        bench = compare.Bench(bench_binary, tmp)
        cluster = compare.Cluster("dolmen", dolmen, 1, tmp)
        cluster.start(bench)
        yield bench, cluster
    finally:
        compare.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def print_log_tails(cluster):
    for m in cluster.members:
        print("--- %s log tail\n%s" % (m.name, m.log_tail()))


def verdict(failures):
    """Prints the failures; the exit code for them."""
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0
