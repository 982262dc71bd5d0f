"""`etcdctl endpoint status|health --cluster -w table`: the shape of the tables (ids, sizes and
timings differ from run to run) and what they say about the cluster."""

import re

import cluster
from cluster import ClusterTestCase

STATUS_COLUMNS = ["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER", "RAFT TERM",
                  "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"]
HEALTH_COLUMNS = ["ENDPOINT", "HEALTH", "TOOK", "ERROR"]

BORDER = re.compile(r"\+(-+\+)+")
ROW = re.compile(r"\|( [^|]* \|)+")
SIZE = re.compile(r"\d+(\.\d+)? (B|kB|MB|GB)")        # humanize.Bytes, as etcdctl prints it
DURATION = re.compile(r"\d+(\.\d+)?(ns|µs|ms|s)")     # Go's time.Duration.String()


class Table:
    """A table as etcdctl (tablewriter) prints it: a border, a centred header row, a border,
    one row per endpoint, a border."""

    def __init__(self, test, text):
        lines = text.splitlines()
        test.assertGreaterEqual(len(lines), 5, text)
        for i in (0, 2, len(lines) - 1):
            test.assertRegex(lines[i], BORDER, "border line %d" % i)
        self.widths = [len(cell) for cell in lines[0].split("+")[1:-1]]
        for line in lines[1:2] + lines[3:-1]:
            test.assertRegex(line, ROW)
            test.assertEqual([len(cell) for cell in line.split("|")[1:-1]], self.widths,
                             "columns aligned: %r" % line)
        self.header = [cell.strip() for cell in lines[1].split("|")[1:-1]]
        self.rows = [dict(zip(self.header, (cell.strip() for cell in line.split("|")[1:-1])))
                     for line in lines[3:-1]]


class EndpointTablesTest(ClusterTestCase):

    def test_status_table(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        cluster.load([leader], "status/", 50)
        for via in c.members:
            rc, out, err = c.etcdctl("endpoint", "status", "--cluster", "-w", "table", via=via)
            self.assertEqual((rc, err), (0, ""), via.name)
            t = Table(self, out)
            self.assertEqual(t.header, STATUS_COLUMNS)
            self.assertEqual(sorted(r["ENDPOINT"] for r in t.rows),
                             sorted(m.endpoint for m in c.members))
            by_endpoint = {r["ENDPOINT"]: r for r in t.rows}
            for m in c.members:
                row = by_endpoint[m.endpoint]
                self.assertEqual(row["ID"], "%x" % c.member_id(m))
                self.assertRegex(row["VERSION"], r"^\d+\.\d+\.\d+$")
                self.assertRegex(row["DB SIZE"], SIZE)
                self.assertEqual(row["IS LEADER"], "true" if m is leader else "false", m.name)
                self.assertEqual(row["IS LEARNER"], "false")
                self.assertEqual(row["ERRORS"], "")
                self.assertGreaterEqual(int(row["RAFT INDEX"]), 50 + 3)
                self.assertGreaterEqual(int(row["RAFT APPLIED INDEX"]), 50 + 3)
            self.assertEqual(len({r["RAFT TERM"] for r in t.rows}), 1, out)
            self.assertGreaterEqual(int(t.rows[0]["RAFT TERM"]), 2)

    def test_health_table(self):
        c = self.new_cluster(3)
        leader = c.wait_leader()
        rc, out, err = c.etcdctl("endpoint", "health", "--cluster", "-w", "table", via=leader)
        self.assertEqual((rc, err), (0, ""))
        t = Table(self, out)
        self.assertEqual(t.header, HEALTH_COLUMNS)
        self.assertEqual(sorted(r["ENDPOINT"] for r in t.rows),
                         sorted(m.endpoint for m in c.members))
        for r in t.rows:
            self.assertEqual((r["HEALTH"], r["ERROR"]), ("true", ""), r)
            self.assertRegex(r["TOOK"], DURATION)

        # One member down: its row says false with an error, the command fails.
        down = next(m for m in c.members if m is not leader)
        down.kill9()
        rc, out, err = c.etcdctl("endpoint", "health", "--cluster", "-w", "table",
                                 "--command-timeout=2s", via=leader)
        self.assertEqual(rc, 1)
        self.assertEqual(err.splitlines()[-1], "Error: unhealthy cluster")
        t = Table(self, out)
        self.assertEqual(t.header, HEALTH_COLUMNS)
        rows = {r["ENDPOINT"]: r for r in t.rows}
        self.assertEqual(sorted(rows), sorted(m.endpoint for m in c.members))
        self.assertEqual(rows[down.endpoint]["HEALTH"], "false")
        self.assertNotEqual(rows[down.endpoint]["ERROR"], "")
        for m in c.members:
            if m is not down:
                self.assertEqual((rows[m.endpoint]["HEALTH"], rows[m.endpoint]["ERROR"]),
                                 ("true", ""), m.name)


if __name__ == "__main__":
    cluster.main()
