"""Patroni (Debian's 3.0.2) managing two PostgreSQL 15 nodes with its etcd3 DCS, which speaks
etcd's JSON gateway, pointed at a 3-member cluster: etcd 3.4 (the reference) and dolmen, the
same scenario on each, side by side; the reference must pass and the outcomes must be the same.
See README.md.

The scenario, with short timings (ttl 10 s, loop_wait 1 s, retry_timeout 4 s):
  1. bootstrap: both nodes start at once and race for the initialize key; one becomes the leader
     (REST /leader 200), the other a streaming replica (/replica 200, the primary's
     pg_stat_replication says streaming); the leader key in the DCS names the leader and is on
     the lease of its member key; a row written on the primary is read on the replica;
  2. the cluster member the leader's Patroni talks to is killed (-9): Patroni moves to another
     member and keeps its leader key alive there, without a failover; the member restarts;
  3. `patronictl switchover`: the replica becomes the leader, the old primary rejoins as its
     replica (and reads a row written on the new primary); the leader key names the new leader;
  4. the new leader's node is killed (SIGKILL to Patroni, PostgreSQL with it): the survivor is
     promoted once the leader's lease expires, not before (lease TTL left at the kill - 1.5 s)
     and not long after (+ 6 s); the leader key names it; the dead node's member key went with
     its lease; the new primary takes writes;
  5. with --rejoin (not in ctest, to save time: step 2 already shows a former primary
     rejoining): the killed node starts again on its data dir and rejoins as a replica.
Every step polls with a deadline; nothing sleeps to synchronise.
"""

import argparse
import base64
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import harness  # noqa: E402
import cluster as cluster_harness  # noqa: E402
from patroni_node import PatroniNode  # noqa: E402

SCOPE = "dolmen-patroni"
TIMING = {"ttl": 10, "loop_wait": 1, "retry_timeout": 4}  # loop_wait + 2 * retry <= ttl
BOOTSTRAP_TIMEOUT_S = 90.0  # initdb, start, the replica's pg_basebackup
ROLE_TIMEOUT_S = 45.0  # a switchover or a rejoin (PostgreSQL restarts)
REPLICATION_TIMEOUT_S = 20.0
# Beyond the lease's expiry: the server's expiry check and revoke, the watch event waking the
# survivor's HA loop, its txn on the leader key (about 1 s measured on both servers).
FAILOVER_LATE_S = 6.0
FAILOVER_EARLY_S = 1.5  # lease TTLs are whole seconds
PATRONICTL_TIMEOUT_S = 60.0
SCENARIO_TIMEOUT_S = 240.0  # the whole scenario on one server, teardown included

CONFIG = argparse.Namespace(dolmen=None, etcd="/usr/bin/etcd", etcdctl="/usr/bin/etcdctl",
                            patroni="/usr/bin/patroni", patronictl="/usr/bin/patronictl",
                            pg_bin="/usr/lib/postgresql/15/bin", user="postgres", keep=False,
                            log_level="INFO", rejoin=False)



class Scenario:
    """One run of the scenario against one server kind; `observed` is what gets compared."""

    def __init__(self, label, binary, root):
        self.label = label
        self.binary = binary
        self.root = root
        self.cluster = None
        self.nodes = []
        self.observed = {}
        self.timings = {}

    def wait(self, what, predicate, timeout):
        """Polls predicate() until truthy (returned); fails naming the server and `what`."""
        return harness.wait_for(predicate, "%s: %s" % (self.label, what), timeout)

    # -- the DCS, read with etcdctl ------------------------------------------------------------

    def etcdctl(self, *args):
        rc, out, err = harness.run_etcdctl(self.cluster.endpoints(), list(args), timeout=20)
        if rc != 0:
            raise AssertionError("%s: etcdctl %s failed: %s" % (self.label, " ".join(args), err))
        return out

    def dcs(self):
        """{key relative to the scope's prefix: (value, lease id)} of Patroni's keys."""
        prefix = "/service/%s/" % SCOPE
        out = json.loads(self.etcdctl("get", "--prefix", prefix, "-w", "json"))
        result = {}
        for kv in out.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            value = base64.b64decode(kv.get("value", "")).decode()
            result[key[len(prefix):]] = (value, int(kv.get("lease", 0)))
        return result

    def lease_ttl_left(self, lease_id):
        out = json.loads(self.etcdctl("lease", "timetolive", "%x" % lease_id, "-w", "json"))
        return int(out.get("ttl", -1))

    # -- nodes ---------------------------------------------------------------------------------

    def node_by_role(self, path):
        """The node whose REST API answers 200 on `path` (/leader, /replica), if exactly one."""
        found = [n for n in self.nodes if n.running and n.rest_status(path) == 200]
        return found[0] if len(found) == 1 else None

    def wait_roles(self, leader, replica, timeout):
        self.wait("%s leader (/leader 200) and %s replica (/replica 200)"
                  % (leader.name, replica.name),
                  lambda: leader.rest_status("/leader") == 200
                  and replica.rest_status("/replica") == 200, timeout)

    def wait_leader_key(self, node, timeout=ROLE_TIMEOUT_S):
        return self.wait("the leader key naming %s" % node.name,
                         lambda: self.dcs().get("leader", ("",))[0] == node.name, timeout)

    def wait_row(self, node, value, timeout=REPLICATION_TIMEOUT_S):
        def seen():
            rc, out, _ = node.psql("SELECT count(*) FROM patroni_test WHERE v = '%s'" % value)
            return rc == 0 and out == "1"
        self.wait("row %r on %s" % (value, node.name), seen, timeout)

    def wait_writable(self, node):
        """Waits until `node`'s PostgreSQL is out of recovery: Patroni answers /leader as soon
        as it holds the leader key, while its promote of PostgreSQL may still be running."""
        self.wait("%s out of recovery (pg_is_in_recovery() false)" % node.name,
                  lambda: node.psql("SELECT pg_is_in_recovery()")[1] == "f", ROLE_TIMEOUT_S)

    def write_row(self, node, value):
        rc, out, err = node.psql("INSERT INTO patroni_test (v) VALUES ('%s')" % value)
        if rc != 0:
            raise AssertionError("%s: insert on %s failed: %s %s" % (self.label, node.name,
                                                                      out, err))

    def streaming_to(self, primary, replica):
        """True if the primary's pg_stat_replication shows the replica streaming."""
        rc, out, _ = primary.psql("SELECT state FROM pg_stat_replication WHERE "
                                  "application_name = '%s'" % replica.name)
        return rc == 0 and out == "streaming"

    def check_leader_key(self, leader, step):
        keys = self.dcs()
        value, lease = keys["leader"]
        member_lease = keys.get("members/" + leader.name, ("", None))[1]
        if value != leader.name or not lease or lease != member_lease:
            raise AssertionError("%s, %s: leader key %r (lease %x), %s's member key lease %r"
                                 % (self.label, step, value, lease, leader.name, member_lease))
        return keys

    @staticmethod
    def watch_saw(node, key, old, new):
        """True if `node`'s Patroni logged a watch event changing `key` (relative to the scope)
        from `old` to `new` (None: deleted); etcd3.py's KVCache logs them at DEBUG with base64
        keys and values."""
        def b64(text):
            return None if text is None else base64.b64encode(text.encode()).decode()
        line = "%s changed from %s to %s" % (b64("/service/%s/%s" % (SCOPE, key)), b64(old),
                                             b64(new))
        return line in node.log_text()

    def patronictl(self, node, *args):
        cmd = [CONFIG.patronictl, "-c", node.config_path] + list(args)
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PATRONICTL_TIMEOUT_S, env=node.env())
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise AssertionError("%s: %s -> %d\n%s%s" % (self.label, " ".join(cmd),
                                                          proc.returncode, out,
                                                          proc.stderr.decode("utf-8", "replace")))
        return out

    def list_roles(self, node):
        """{member name: role} from `patronictl list -f json`."""
        rows = json.loads(self.patronictl(node, "list", "-f", "json", SCOPE))
        return {row["Member"]: row["Role"] for row in rows}

    # -- the scenario --------------------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        self.cluster = cluster_harness.Cluster(3, binary=self.binary)
        self.cluster.start()
        hosts = ["%s:%d" % (harness.LOOPBACK, m.client_port) for m in self.cluster.members]
        for name in ("p1", "p2"):
            self.nodes.append(PatroniNode(name, SCOPE, self.root, hosts, TIMING,
                                          CONFIG.patroni, CONFIG.pg_bin, CONFIG.user,
                                          CONFIG.log_level))
        for node in self.nodes:
            node.start()
        first = self.bootstrap()
        self.timings["bootstrap_s"] = time.monotonic() - started
        mark = time.monotonic()
        self.lose_dcs_member(first)
        self.timings["dcs_member_lost_s"] = time.monotonic() - mark
        mark = time.monotonic()
        second = self.switchover(first)
        self.timings["switchover_s"] = time.monotonic() - mark
        survivor = self.failover(killed=second, survivor=first)
        if CONFIG.rejoin:
            mark = time.monotonic()
            self.rejoin(second, survivor)
            self.timings["rejoin_s"] = time.monotonic() - mark
        self.timings["total_s"] = time.monotonic() - started

    def bootstrap(self):
        leader = self.wait("a leader (/leader 200 on one node)",
                           lambda: self.node_by_role("/leader"), BOOTSTRAP_TIMEOUT_S)
        replica = next(n for n in self.nodes if n is not leader)
        self.wait_roles(leader, replica, BOOTSTRAP_TIMEOUT_S)
        self.wait_leader_key(leader)
        # The leader writes its status key (optime) in a later HA loop than the one that took
        # the leader key: the keys are compared once it is there, on either server.
        self.wait("%s's status key" % leader.name, lambda: "status" in self.dcs(), ROLE_TIMEOUT_S)
        keys = self.check_leader_key(leader, "bootstrap")
        self.wait("%s streaming to %s" % (leader.name, replica.name),
                  lambda: self.streaming_to(leader, replica), REPLICATION_TIMEOUT_S)
        self.wait_writable(leader)
        rc, _, err = leader.psql("CREATE TABLE patroni_test (id serial PRIMARY KEY, v text)")
        if rc != 0:
            raise AssertionError("%s: create table on %s: %s" % (self.label, leader.name, err))
        self.write_row(leader, "bootstrap")
        self.wait_row(replica, "bootstrap")
        self.observed["bootstrap"] = {
            "keys": sorted(k.replace(leader.name, "<leader>").replace(replica.name, "<replica>")
                           for k in keys),
            "initialize_is_sysid": keys["initialize"][0].isdigit(),
            "roles": sorted(self.list_roles(leader).values()),
        }
        return leader

    SELECTED = "Selected new etcd server "

    def lose_dcs_member(self, leader):
        """Kills (-9) the cluster member the leader's Patroni talks to: Patroni must move to
        another member and keep its leader key alive there (each HA loop's "the leader with the
        lock" needs a lease keepalive and a put that succeeded); the member then restarts."""
        replica = next(n for n in self.nodes if n is not leader)
        text = leader.log_text()
        url = text[text.rindex(self.SELECTED) + len(self.SELECTED):].split()[0]
        member = next(m for m in self.cluster.members if m.endpoint == url)
        offset = len(text)
        member.kill9()

        def moved():
            after = leader.log_text()[offset:]
            if self.SELECTED not in after:
                return None
            new_url = after[after.rindex(self.SELECTED) + len(self.SELECTED):].split()[0]
            held = after[after.rindex(self.SELECTED):].count(
                "I am (%s), the leader with the lock" % leader.name)
            return new_url if held >= 2 else None
        new_url = self.wait("%s's Patroni moving from the killed member %s to another and "
                            "keeping its lock there" % (leader.name, url), moved,
                            TIMING["ttl"] + 10)
        self.wait_roles(leader, replica, 1)
        self.check_leader_key(leader, "member lost")
        member.spawn()
        self.cluster.wait_healthy()
        self.observed["dcs_member_lost"] = {
            "moved_to_live_member": new_url != url and new_url in
            [m.endpoint for m in self.cluster.members],
        }

    def switchover(self, old):
        new = next(n for n in self.nodes if n is not old)
        out = self.patronictl(old, "switchover", "--leader", old.name, "--candidate", new.name,
                              "--force", SCOPE)
        self.wait_roles(new, old, ROLE_TIMEOUT_S)
        self.wait_leader_key(new)
        # The new leader records the timeline switch in the history key in a later HA loop than
        # the one that took the leader key: the keys are compared once it is there.
        self.wait("%s's history key" % new.name, lambda: "history" in self.dcs(), ROLE_TIMEOUT_S)
        keys = self.check_leader_key(new, "switchover")
        self.wait_writable(new)
        self.write_row(new, "switchover")
        self.wait_row(old, "switchover")
        self.observed["switchover"] = {
            "patronictl_says_switched": ("Successfully switched over to \"%s\"" % new.name) in out,
            "keys": sorted(k.replace(new.name, "<leader>").replace(old.name, "<replica>")
                           for k in keys),
            "history_entries": len(json.loads(keys["history"][0])) if "history" in keys else 0,
        }
        return new

    def failover(self, killed, survivor):
        lease = self.dcs()["leader"][1]
        killed.kill9()
        killed_at = time.monotonic()
        ttl_left = self.lease_ttl_left(lease)
        self.wait("%s promoted after %s was killed" % (survivor.name, killed.name),
                  lambda: survivor.rest_status("/leader") == 200, ttl_left + FAILOVER_LATE_S)
        took = time.monotonic() - killed_at
        self.timings["failover_s"] = took
        self.timings["lease_ttl_left_s"] = ttl_left
        if took < ttl_left - FAILOVER_EARLY_S:
            raise AssertionError("%s: %s promoted %.1fs after the kill, but the leader's lease "
                                 "had %ds left" % (self.label, survivor.name, took, ttl_left))
        self.wait_leader_key(survivor)
        keys = self.check_leader_key(survivor, "failover")
        self.wait_writable(survivor)
        self.write_row(survivor, "failover")
        self.observed["failover"] = {
            # the leader key's delete by the lease's expiry reached the survivor's watch
            "watch_saw_leader_key_expire": self.watch_saw(survivor, "leader", killed.name, None),
            "lease_expired": self.lease_ttl_left(lease) == -1,
            "dead_member_key_gone": "members/" + killed.name not in keys,
        }
        return survivor

    def rejoin(self, node, leader):
        node.start()
        self.wait_roles(leader, node, ROLE_TIMEOUT_S)
        self.wait_row(node, "failover")
        self.wait("%s streaming to %s" % (leader.name, node.name),
                  lambda: self.streaming_to(leader, node), REPLICATION_TIMEOUT_S)
        self.observed["rejoin"] = {"roles": sorted(self.list_roles(leader).values())}

    # -- teardown ------------------------------------------------------------------------------

    def close(self, failed):
        for node in self.nodes:  # both at once: Patroni's shutdown waits on PostgreSQL's
            node.terminate()
        errors = []
        for node in self.nodes:
            try:
                node.wait_stopped()
            except AssertionError as e:
                errors.append(str(e))
        if failed or errors:
            for node in self.nodes:
                # without the DEBUG lines of each watch event (see watch_saw)
                text = "\n".join(line for line in node.log_text().splitlines()
                                 if " DEBUG: " not in line)
                sys.stderr.write("\n----- %s: Patroni %s log (%s) -----\n%s\n----- end -----\n"
                                 % (self.label, node.name, node.log_path, text[-15000:]))
        if self.cluster is not None:
            if failed or errors:
                self.cluster.dump_logs(sys.stderr, tail_chars=6000)
            self.cluster.close()
        if errors:
            raise AssertionError("; ".join(errors))


def run_scenario(label, binary):
    """The scenario on one server kind: (observed, timings). Raises what failed, after the
    scenario's processes are stopped (and their logs printed)."""
    root = tempfile.mkdtemp(prefix="dolmen-patroni-%s-" % label)
    os.chmod(root, 0o755)  # the nodes' user must reach its own directory below
    scenario = Scenario(label, binary, root)
    failed = True
    try:
        scenario.run()
        failed = False
    finally:
        closing = time.monotonic()
        scenario.close(failed)
        scenario.timings["teardown_s"] = time.monotonic() - closing
        if not CONFIG.keep:
            shutil.rmtree(root, ignore_errors=True)
        print("\n%s: %s" % (label, ", ".join("%s %.1f" % kv for kv in scenario.timings.items())),
              flush=True)
    return scenario.observed


class PatroniTest(unittest.TestCase):
    """The scenario on etcd 3.4 and on dolmen at once, each in a thread of its own that starts
    and stops all of its processes (their parent-death signal is tied to that thread): most of
    a run is waiting on Patroni's loop and on lease TTLs, so side by side they take the time of
    one (the timed bounds have seconds of slack; the clusters' elections are not timed here)."""

    def test_same_outcome_on_etcd_and_dolmen(self):
        outcomes, errors = {}, {}

        def side(label, binary):
            try:
                outcomes[label] = run_scenario(label, binary)
            except BaseException as e:  # noqa: BLE001 - reported below, in the main thread
                errors[label] = e

        threads = [threading.Thread(target=side, args=run, daemon=True)
                   for run in (("etcd", CONFIG.etcd), ("dolmen", CONFIG.dolmen))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SCENARIO_TIMEOUT_S)
            self.assertFalse(t.is_alive(), "a scenario still runs after %.0fs"
                             % SCENARIO_TIMEOUT_S)
        # The reference must pass first, or the comparison proves nothing.
        if "etcd" in errors:
            self.fail("the reference, etcd 3.4, failed the scenario: %r" % errors["etcd"])
        obs = outcomes["etcd"]
        self.assertEqual(obs["bootstrap"]["roles"], ["Leader", "Replica"], obs)
        self.assertTrue(obs["switchover"]["patronictl_says_switched"], obs)
        self.assertEqual(obs["failover"], {"lease_expired": True, "dead_member_key_gone": True,
                                           "watch_saw_leader_key_expire": True}, obs)
        if CONFIG.rejoin:
            self.assertEqual(obs["rejoin"]["roles"], ["Leader", "Replica"], obs)
        if "dolmen" in errors:
            self.fail("dolmen failed the scenario: %r" % errors["dolmen"])
        self.assertEqual(outcomes["dolmen"], obs)
        print("\noutcome (both): %s" % json.dumps(obs, sort_keys=True), flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dolmen", default=os.environ.get("DOLMEN_BIN"))
    for name in ("etcd", "etcdctl", "patroni", "patronictl"):
        parser.add_argument("--" + name, default=getattr(CONFIG, name))
    parser.add_argument("--pg-bin", default=CONFIG.pg_bin, dest="pg_bin")
    parser.add_argument("--user", default=CONFIG.user,
                        help="the unprivileged user Patroni and PostgreSQL run as")
    parser.add_argument("--keep", action="store_true", help="keep temp dirs for inspection")
    parser.add_argument("--rejoin", action="store_true",
                        help="step 4: restart the killed node and wait for it to rejoin (about "
                             "15 s more per server; the switchover already shows a demoted "
                             "primary rejoining)")
    parser.add_argument("--patroni-log-level", default="INFO", dest="log_level",
                        help="Patroni's log level (DEBUG shows every DCS request and watch event)")
    args, rest = parser.parse_known_args(argv)
    if not args.dolmen:
        parser.error("--dolmen PATH (or DOLMEN_BIN) is required")
    # A missing program fails: the test never skips for want of its subject or reference.
    for path in (args.dolmen, args.etcd, args.etcdctl, args.patroni, args.patronictl,
                 os.path.join(args.pg_bin, "postgres"), "/usr/bin/unshare", "/usr/bin/setpriv"):
        if not os.access(path, os.X_OK):
            parser.error("%s is not an executable file (run scripts/install-deps.sh)" % path)
    # PostgreSQL refuses to run as root; only root can start it as another user, in a PID
    # namespace of its own (patroni_node.py). A non-root run fails rather than skips.
    if os.geteuid() != 0:
        parser.error("must run as root: Patroni and PostgreSQL run as --user %s in PID "
                     "namespaces (setpriv, unshare)" % args.user)
    try:
        pwd.getpwnam(args.user)
    except KeyError:
        parser.error("no user %r to run PostgreSQL as (Debian's postgresql-common creates "
                     "'postgres')" % args.user)
    vars(CONFIG).update(vars(args))
    harness.CONFIG.etcdctl = args.etcdctl
    harness.CONFIG.keep = args.keep
    cluster_harness.CONFIG.server = "patroni"  # only names the clusters' temp dirs
    cluster_harness.CONFIG.etcdctl = args.etcdctl
    cluster_harness.CONFIG.keep = args.keep
    # Election timings as in tests/cluster (the Raft side is not what is timed here).
    cluster_harness.CONFIG.heartbeat_ms = 50
    cluster_harness.CONFIG.election_ms = 500
    return rest


if __name__ == "__main__":
    rest = parse_args(sys.argv[1:])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
