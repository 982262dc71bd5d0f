#!/usr/bin/python3
"""etcdctl 3.4 against etcd 3.4 and against dolmen: same commands, same outputs.

Each scenario starts a fresh etcd and a fresh dolmen, runs the same etcdctl commands against
both (one thread per server) and requires stdout, stderr and exit code to be identical after
`harness.normalize` (cluster_id/member_id, the test-picked endpoint, etcdctl's own log timestamp
and client uuid). Revisions, raft_term, counts, flags and error texts are compared as they are.
Each step may also state what etcd itself must answer (exit code, a substring), so a scenario
cannot pass by both sides failing in the same uninteresting way.

Run: /usr/bin/python3 etcdctl_compat_test.py --dolmen PATH [unittest args]
"""


import harness
from harness import IntegrationTestCase


class Step:
    """One etcdctl invocation. `rc`, `out_has`, `out_lacks`, `err_has` are checked on etcd's
    answer (JSON output omits false and zero fields, hence `out_lacks`);
    `proto` names the etcdserverpb message printed by `-w protobuf`."""

    def __init__(self, *args, stdin=None, rc=0, out_has=None, out_lacks=None, err_has=None,
                 proto=None):
        self.args = list(args)
        self.stdin = stdin
        self.rc = rc
        self.out_has = out_has
        self.out_lacks = out_lacks
        self.err_has = err_has
        self.proto = proto

    def __str__(self):
        text = "etcdctl " + " ".join(repr(a) if (not a or " " in a) else a for a in self.args)
        if self.stdin is not None:
            shown = self.stdin if len(self.stdin) < 300 else self.stdin[:300] + "...(%d bytes)" \
                % len(self.stdin)
            text += "  <<< %r" % shown
        return text


def put_steps(*pairs):
    return [Step("put", k, v, out_has="OK") for k, v in pairs]


def txn_stdin(compares, success, failure):
    """The text `etcdctl txn -i` reads: three sections, each ended by an empty line."""
    return "".join(line + "\n" for section in (compares, success, failure)
                   for line in list(section) + [""])


_TXN_PROMPTS = b"compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n"


def _proto_text(step, raw, ids):
    # -w protobuf prints the marshalled response. The header ids are varints whose length
    # depends on their value, so bytes cannot be compared directly: decode, blank exactly the
    # probed ids, and compare the text form (every field, in field order).
    from etcd3 import etcdrpc
    if raw.startswith(_TXN_PROMPTS):  # `txn -i` prints its prompts before the response
        raw = raw[len(_TXN_PROMPTS):]
    message = getattr(etcdrpc, step.proto)()
    try:
        message.ParseFromString(raw)
    except Exception as e:  # noqa: BLE001 - a decode failure is itself the finding
        return "<undecodable %s: %s; %d bytes: %r>" % (step.proto, e, len(raw), raw[:200])
    if message.header.cluster_id == ids[0] and ids[0]:
        message.header.cluster_id = 0
    if message.header.member_id == ids[1] and ids[1]:
        message.header.member_id = 0
    return "<protobuf %s>\n%s" % (step.proto, message)


class Restart:
    """Between steps: stop both servers (SIGTERM, or SIGKILL with kill=True) and start them
    again on the same data directories. Done from the main thread (see harness)."""

    rc, out_has, out_lacks, err_has = 0, None, None, None

    def __init__(self, kill=False):
        self.kill = kill

    def __str__(self):
        return "<restart both servers after %s>" % ("SIGKILL" if self.kill else "SIGTERM")


def run_steps(server, ids, steps):
    """Runs the etcdctl steps in order; returns the normalized (rc, stdout, stderr) of each."""
    results = []
    for step in steps:
        rc, out, err = server.etcdctl(*step.args, stdin=step.stdin, binary=bool(step.proto))
        if step.proto:
            out = _proto_text(step, out, ids)
        results.append((rc, harness.normalize(out, server, ids),
                        harness.normalize(err, server, ids)))
    return results


def assert_as_etcd(test, steps, want, got, label):
    """etcd's answers `want` must meet each step's expectations, and the other server's `got`
    (named `label`) must equal them step by step."""
    # What etcd itself must answer: keeps the scenario honest.
    for step, (rc, out, err) in zip(steps, want):
        test.assertEqual(rc, step.rc, "etcd: %s\nstdout:%s\nstderr:%s" % (step, out, err))
        if step.out_has is not None:
            test.assertIn(step.out_has, out, "etcd: %s" % step)
        if step.out_lacks is not None:
            test.assertNotIn(step.out_lacks, out, "etcd: %s" % step)
        if step.err_has is not None:
            test.assertIn(step.err_has, err, "etcd: %s" % step)

    diffs = []
    for i, (step, a, b) in enumerate(zip(steps, want, got)):
        if a != b:
            diffs.append("step %d: %s\n  etcd:   rc=%r\n    stdout=%r\n    stderr=%r\n"
                         "  %s: rc=%r\n    stdout=%r\n    stderr=%r"
                         % (i, step, a[0], a[1], a[2], label, b[0], b[1], b[2]))
    if diffs:
        test.fail("%d of %d steps differ:\n%s" % (len(diffs), len(steps), "\n".join(diffs)))


class EtcdctlCompatTest(IntegrationTestCase):

    def on_both(self, servers, fn):
        """fn(server) for each server at once; returns {label: result}."""
        return dict(zip((s.label for s in servers), self.on_each(servers, fn)))

    def check(self, steps):
        servers = self.start_servers(harness.etcd_server(), harness.dolmen_server())
        etcd, dolmen = servers
        ids = self.on_both(servers, lambda server: server.header_ids())
        answers = {etcd.label: [], dolmen.label: []}
        segment = []
        for step in steps + [None]:
            if isinstance(step, Step):
                segment.append(step)
                continue
            part = self.on_both(servers, lambda server: run_steps(server, ids[server.label],
                                                                  segment))
            for label, results in part.items():
                answers[label] += results
            segment = []
            if step is None:
                break
            for server in servers:  # a Restart
                server.kill9() if step.kill else server.stop()
            for server in servers:
                server.spawn()
            for server in servers:
                server.wait_ready()
            for label in answers:
                answers[label].append((0, "", ""))
        assert_as_etcd(self, steps, answers[etcd.label], answers[dolmen.label], dolmen.label)

    # -- put --------------------------------------------------------------------------------

    def test_put(self):
        self.check([
            Step("put", "a", "1", out_has="OK"),
            Step("put", "a", "2", "--prev-kv", out_has="a\n1"),
            Step("put", "a", "3", "--prev-kv", "-w", "json", out_has='"prev_kv"'),
            Step("put", "b", "10", "-w", "fields", out_has='"Revision" : 5'),
            Step("put", "b", "11", "-w", "protobuf", proto="PutResponse"),
            Step("put", "a", "--ignore-value", out_has="OK"),
            Step("put", "missing", "--ignore-value", rc=1, err_has="etcdserver: key not found"),
            Step("put", "v", stdin="from stdin", out_has="OK"),
            Step("get", "", "--prefix", "-w", "json", out_has='"revision":8'),
            Step("put", "new", "1", "--prev-kv", "-w", "json", out_lacks="prev_kv"),
            Step("put", "new", "2", "--prev-kv", "-w", "fields", out_has='"PrevValue" : "1"'),
            Step("get", "", "--prefix", "-w", "fields", out_has='"Count" : 4'),
        ])

    # -- get ----------------------------------------------------------------------------------

    def test_get_output_formats(self):
        self.check(put_steps(("foo", "bar"), ("foo2", "baz\nwith newline")) + [
            Step("get", "foo", out_has="foo\nbar"),
            Step("get", "foo", "-w", "simple", out_has="foo\nbar"),
            Step("get", "foo", "-w", "json", out_has='"raft_term":2'),
            Step("get", "foo2", "-w", "fields", out_has='"Value" : "baz\\nwith newline"'),
            Step("get", "foo", "--prefix", "-w", "protobuf", proto="RangeResponse"),
            Step("get", "nothing"),
            Step("get", "nothing", "-w", "json", out_has='"revision":3'),
            Step("get", "nothing", "-w", "fields", out_has='"Count" : 0'),
            Step("get", "nothing", "-w", "protobuf", proto="RangeResponse"),
        ])

    def test_get_prefix_from_key_limit_range(self):
        self.check(put_steps(("a", "1"), ("foo", "2"), ("foo1", "3"), ("foo2", "4"),
                             ("fop", "5"), ("z", "6")) + [
            Step("get", "foo", "--prefix", out_has="foo2\n4"),
            Step("get", "foo", "--from-key", out_has="z\n6"),
            Step("get", "foo", "--prefix", "--limit", "2", "-w", "json", out_has='"more":true'),
            Step("get", "foo", "--prefix", "--limit", "3", "-w", "json"),
            Step("get", "foo", "--prefix", "--limit", "4", "-w", "json"),
            Step("get", "foo", "--from-key", "--limit", "1", "-w", "fields",
                 out_has='"More" : true'),
            Step("get", "foo1", "fop", out_has="foo2"),
            Step("get", "fop", "foo1"),
            Step("get", "", "--prefix", "--keys-only", out_has="fop"),
            Step("get", "", "--from-key", "--limit", "2"),
        ])

    def test_get_rev(self):
        self.check(put_steps(("a", "1"), ("a", "2"), ("b", "1")) + [
            Step("del", "a", out_has="1"),
            Step("put", "a", "3", out_has="OK"),
            Step("get", "a", "--rev", "2", out_has="a\n1"),
            Step("get", "a", "--rev", "3", out_has="a\n2"),
            Step("get", "a", "--rev", "5"),
            Step("get", "a", "--rev", "6", "-w", "json", out_has='"version":1'),
            Step("get", "", "--prefix", "--rev", "4", "-w", "json", out_has='"count":2'),
            Step("get", "a", "--rev", "0", "-w", "json", out_has='"create_revision":6'),
            Step("get", "a", "--rev", "7", rc=1,
                 err_has="etcdserver: mvcc: required revision is a future revision"),
            Step("get", "a", "--rev", "1000", "-w", "json", rc=1),
        ])

    def test_get_sort(self):
        # Writes chosen so no two keys tie in version, create, mod or value: with ties the
        # order among equals would be an implementation detail of the sort, not of the API.
        # Final state: k1=v4 ver4 create3 mod11, k2=m2 ver2 create5 mod9,
        #              k3=c1 ver1 create2 mod2,  k4=x3 ver3 create4 mod10.
        steps = put_steps(("k3", "c1"), ("k1", "v1"), ("k4", "x1"), ("k2", "m1"), ("k1", "v2"),
                          ("k4", "x2"), ("k1", "v3"), ("k2", "m2"), ("k4", "x3"), ("k1", "v4"))
        for target in ("KEY", "VERSION", "CREATE", "MODIFY", "VALUE"):
            for order in ("ASCEND", "DESCEND"):
                steps.append(Step("get", "k", "--prefix", "--sort-by=" + target,
                                  "--order=" + order, "--keys-only", out_has="k"))
        steps += [
            Step("get", "k", "--prefix", "--sort-by=VERSION", "--order=ASCEND",
                 out_has="k3\nc1\nk2\nm2\nk4\nx3\nk1\nv4"),
            Step("get", "k", "--prefix", "--sort-by=VALUE", out_has="k3\nc1\nk2\nm2\nk1"),
            Step("get", "k", "--prefix", "--order=DESCEND", out_has="k4\nx3\nk3"),
            Step("get", "k", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--limit", "2",
                 "-w", "json", out_has='"more":true'),
            Step("get", "k", "--prefix", "--sort-by=CREATE", "--order=DESCEND", "--limit", "3",
                 "-w", "fields", out_has='"Count" : 4'),
            Step("get", "k", "--prefix", "--sort-by=KEY", "--order=ASCEND", "--limit", "1",
                 "-w", "json"),
        ]
        self.check(steps)

    def test_keys_only_print_value_only(self):
        self.check(put_steps(("foo", "bar"), ("foo1", "baz"), ("g", "h")) + [
            Step("get", "foo", "--prefix", "--keys-only", out_has="foo\n\nfoo1"),
            Step("get", "foo", "--prefix", "--print-value-only", out_has="bar\nbaz"),
            Step("get", "foo", "--prefix", "--keys-only", "-w", "json"),
            Step("get", "foo", "--keys-only", "-w", "fields"),
            Step("get", "foo", "--prefix", "--keys-only", "--print-value-only"),
            Step("get", "foo", "--prefix", "--keys-only", "-w", "protobuf", proto="RangeResponse"),
        ])

    # -- del ----------------------------------------------------------------------------------

    def test_del(self):
        self.check(put_steps(("a", "1"), ("b", "2"), ("c", "3"), ("foo1", "x"), ("foo2", "y"),
                             ("z", "9")) + [
            Step("del", "a", out_has="1"),
            Step("del", "a", out_has="0"),
            Step("del", "never", "-w", "json", out_has='"revision":8'),
            Step("del", "never", "-w", "fields"),
            Step("del", "b", "--prev-kv", out_has="1\nb\n2"),
            Step("del", "foo", "--prefix", "--prev-kv", "-w", "json", out_has='"deleted":2'),
            Step("del", "foo", "--prefix", out_has="0"),
            Step("del", "c", "z", out_has="1"),
            Step("del", "x", "--from-key", "--prev-kv", out_has="z\n9"),
            Step("get", "", "--prefix", "-w", "json", out_has='"revision":12'),
            Step("del", "", "--prefix", "-w", "json"),
            Step("del", "", rc=1, err_has="etcdserver: key is not provided"),
        ])

    # -- txn ----------------------------------------------------------------------------------

    _TXN_SETUP = put_steps(("a", "1"), ("b", "2"), ("b", "3"))  # a: rev 2; b: create 3, mod 4

    def test_txn_success_branch(self):
        true_compares = ['value("a") = "1"', 'version("b") = "2"', 'create("b") = "3"',
                         'mod("b") > "3"']
        ops = ["put c 1", "get b", "del nothing", "get a --prefix"]
        failure = ["put failed yes"]
        self.check(self._TXN_SETUP + [
            Step("txn", "-i", stdin=txn_stdin(true_compares, ops, failure), out_has="SUCCESS"),
            Step("txn", "-i", "-w", "json", stdin=txn_stdin(true_compares, ops, failure),
                 out_has='"succeeded":true'),
            Step("txn", "-i", "-w", "fields", stdin=txn_stdin(true_compares, ops, failure),
                 out_has='"Succeeded" : true'),
            Step("txn", "-i", "-w", "json", stdin=txn_stdin(
                ['value("a") != "2"', 'version("b") < "3"', 'create("a") < "3"', 'mod("a") = "2"',
                 'version("nokey") = "0"', 'create("nokey") = "0"', 'value("b") > "2"'],
                ["put d 1 --prev-kv"], []), out_has='"succeeded":true'),
            Step("txn", "-i", stdin=txn_stdin([], [], []), out_has="SUCCESS"),
            Step("txn", stdin=txn_stdin(true_compares, ["get c"], []), out_has="SUCCESS\n\nc\n"),
            Step("txn", "-w", "json", stdin=txn_stdin(['value("c") = "1"'], [], ["get c"]),
                 out_has='"succeeded":true'),
            Step("txn", "-i", "-w", "protobuf", stdin=txn_stdin(true_compares, ops, []),
                 proto="TxnResponse"),
            Step("get", "", "--prefix", "-w", "json", out_has='"revision":9'),
            Step("get", "failed", "-w", "json", out_lacks='"kvs"'),
        ])

    def test_txn_failure_branch(self):
        failure_ops = ["put f 1", "get a", "del b", "get zzz"]
        cases = [['value("a") = "2"'], ['version("b") = "1"'], ['create("b") = "4"'],
                 ['mod("b") < "4"'], ['value("a") = "1"', 'mod("a") > "2"'],
                 ['value("nokey") = ""']]
        steps = list(self._TXN_SETUP)
        last = len(cases) - 1  # the case whose failure branch deletes b
        for i, compares in enumerate(cases):
            steps.append(Step("txn", "-i", "-w", "json",
                              stdin=txn_stdin(compares, ["put never 1"],
                                              failure_ops if i == last else ["put f%d x" % i]),
                              out_has="ResponsePut", out_lacks='"succeeded"'))
        steps += [
            Step("txn", "-i", stdin=txn_stdin(['value("a") = "9"'], ["put never 1"],
                                               ["get a", "put g 2"]), out_has="FAILURE"),
            Step("get", "", "--prefix", "-w", "json"),
            Step("get", "never", "-w", "json", out_lacks='"kvs"'),
        ]
        self.check(steps)

    def test_txn_limits(self):
        puts = ["put k%03d v" % i for i in range(129)]
        self.check([
            Step("txn", "-i", stdin=txn_stdin([], puts[:128], []), out_has="SUCCESS"),
            Step("txn", "-i", stdin=txn_stdin([], puts, []), rc=1,
                 err_has="etcdserver: too many operations in txn request"),
            Step("txn", "-i", stdin=txn_stdin(['value("k000") = "v"'], [], puts), rc=1,
                 err_has="etcdserver: too many operations in txn request"),
            Step("txn", "-i", stdin=txn_stdin([], ["put dup 1", "put dup 2"], []), rc=1,
                 err_has="etcdserver: duplicate key given in txn request"),
            Step("txn", "-i", stdin=txn_stdin([], ["put dup 1", "del dup"], []), rc=1,
                 err_has="etcdserver: duplicate key given in txn request"),
            Step("txn", "-i", stdin=txn_stdin([], ["put k005 1", "del k --prefix"], []), rc=1,
                 err_has="etcdserver: duplicate key given in txn request"),
            Step("txn", "-i", stdin=txn_stdin([], ["put dup 1"], ["put dup 2"]),
                 out_has="SUCCESS"),
            Step("txn", "-i", stdin=txn_stdin([], ["get dup", "get dup", "put other 1"], []),
                 out_has="SUCCESS"),
            Step("get", "dup", "-w", "json", out_has='"revision":4'),
        ])

    # -- compaction ---------------------------------------------------------------------------

    def test_compaction(self):
        self.check(put_steps(*[("a", str(i)) for i in range(1, 6)]) + [  # a at revs 2..6
            Step("compaction", "4", out_has="compacted revision 4"),
            Step("get", "a", "--rev", "3", rc=1,
                 err_has="etcdserver: mvcc: required revision has been compacted"),
            Step("get", "a", "--rev", "4", out_has="a\n3"),
            Step("get", "a", "--rev", "4", "-w", "json", out_has='"mod_revision":4'),
            Step("get", "a", "--rev", "7", rc=1,
                 err_has="etcdserver: mvcc: required revision is a future revision"),
            Step("compaction", "4", rc=1,
                 err_has="etcdserver: mvcc: required revision has been compacted"),
            Step("compaction", "2", rc=1,
                 err_has="etcdserver: mvcc: required revision has been compacted"),
            Step("compaction", "100", rc=1,
                 err_has="etcdserver: mvcc: required revision is a future revision"),
            Step("compaction", "5", "--physical", out_has="compacted revision 5"),
            Step("get", "a", "--rev", "4", rc=1, err_has="required revision has been compacted"),
            Step("txn", "-i", stdin=txn_stdin([], ["get a --rev 4"], []), rc=1,
                 err_has="required revision has been compacted"),
            Step("put", "a", "6", out_has="OK"),
            Step("get", "a", "-w", "json", out_has='"revision":7'),
        ])

    def test_hashkv(self):
        # The KV hash covers every stored revision of every key, so equal hashes mean equal
        # MVCC histories, not just equal latest values.
        self.check([
            Step("endpoint", "hashkv", "-w", "json", out_has='"hash":'),
        ] + put_steps(("a", "1"), ("b", "2"), ("a", "3")) + [
            Step("del", "b", out_has="1"),
            Step("endpoint", "hashkv", "-w", "json", out_has='"revision":5'),
            Step("compaction", "3", out_has="compacted revision 3"),
            Step("endpoint", "hashkv", "-w", "json", out_has='"compact_revision":3'),
            Step("endpoint", "hashkv", out_has="<endpoint>, "),
        ])

    # -- restart ------------------------------------------------------------------------------

    def test_restart_keeps_state(self):
        # A single member elects itself again on every start: raft_term goes 2, 3, 4.
        self.check(put_steps(("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")) + [
            Step("del", "c", out_has="1"),
            Step("compaction", "3", out_has="compacted revision 3"),
            Restart(),
            Step("get", "", "--prefix", "-w", "json", out_has='"raft_term":3'),
            Step("get", "a", "--rev", "2", rc=1, err_has="required revision has been compacted"),
            Step("get", "c", "--rev", "5", "-w", "json", out_has='"value":"NA=="'),
            Step("endpoint", "hashkv", "-w", "json", out_has='"compact_revision":3'),
            Step("put", "d", "5", out_has="OK"),
            Restart(kill=True),
            Step("get", "", "--prefix", "-w", "json", out_has='"raft_term":4'),
            Step("get", "d", "-w", "json", out_has='"mod_revision":7'),
            Step("put", "e", "6", "-w", "json", out_has='"revision":8'),
            Step("compaction", "2", rc=1, err_has="required revision has been compacted"),
            Step("member", "list", "-w", "json", out_has='"name":"m1"'),
        ])

    # -- membership as a client sees it --------------------------------------------------------

    def test_member_list(self):
        self.check([
            Step("member", "list", out_has="started, m1, http://<peer>, http://<endpoint>"),
            Step("member", "list", "-w", "json", out_has='"peerURLs":["http://<peer>"]'),
            Step("member", "list", "-w", "fields", out_has='"Name" : "m1"'),
        ])

    # -- byte-level keys and odd values ---------------------------------------------------------

    def test_key_and_value_edge_cases(self):
        top = "\udcff"  # a lone 0xff byte on the command line (surrogateescape)
        self.check([
            Step("put", top, "ff", out_has="OK"),
            Step("put", top + "\udcff", "ffff", out_has="OK"),
            Step("put", "\udcfe", "fe", out_has="OK"),
            Step("get", top, "--prefix", "-w", "json", out_has='"count":2'),
            Step("get", top, "--from-key", "--keys-only", "--hex"),
            Step("put", "empty", "", out_has="OK"),
            Step("get", "empty", "-w", "json", out_has='"version":1'),
            Step("put", "same", "v", out_has="OK"),
            Step("put", "same", "v", out_has="OK"),
            Step("get", "same", "-w", "json", out_has='"version":2'),
            Step("get", "same", "--hex", out_has="\\x73\\x61\\x6d\\x65"),
            Step("get", "same", "--consistency=s", "-w", "json", out_has='"mod_revision":7'),
            Step("put", "leased", "v", "--lease=1234", rc=1,
                 err_has="etcdserver: requested lease not found"),
            Step("put", "ünïcødé/ключ", "значение", out_has="OK"),
            Step("get", "ünïcødé", "--prefix", out_has="значение"),
            Step("get", "", "--from-key", "--keys-only", "-w", "json", out_has='"count":6'),
        ])

    # -- request validation -------------------------------------------------------------------

    def test_put_empty_key_and_oversized_value(self):
        mib = 1024 * 1024
        self.check([
            Step("put", "", "x", rc=1, err_has="etcdserver: key is not provided"),
            Step("put", "big", stdin="v" * (mib * 16 // 10), rc=1,
                 err_has="etcdserver: request is too large"),
            Step("put", "fits", stdin="v" * mib, out_has="OK"),
            Step("get", "fits", "--keys-only", "-w", "json", out_has='"revision":2'),
            Step("get", "", rc=1, err_has="etcdserver: key is not provided"),
            Step("get", "big", "-w", "json", out_has='"revision":2,', out_lacks='"kvs"'),
        ])


if __name__ == "__main__":
    harness.main()
