#!/usr/bin/python3
"""Process-level behaviour of a member, dolmen compared with etcd 3.4: identity derived from the
flags, refusing a client port that is already taken, and the exit status after SIGTERM.

Each check runs against etcd first (it must pass there, which keeps the check honest) and then
against dolmen.

Run: /usr/bin/python3 startup_test.py --dolmen PATH [unittest args]
"""

import subprocess

import harness
from harness import IntegrationTestCase

EXIT_WAIT_S = 8.0


def wait_exit(server, timeout):
    """The exit status if the process ends within `timeout` seconds, else None."""
    try:
        return server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


class StartupTest(IntegrationTestCase):

    def both(self):
        return (harness.etcd_server, harness.dolmen_server)

    def test_ids_follow_from_the_flags_like_etcd(self):
        # etcd derives a new member's id from its peer URLs and the cluster token, and the
        # cluster id from the member ids, so the same flags give the same ids. Ran one after the
        # other on the same ports (etcd binds its peer port).
        ids = {}
        first = None
        for make in self.both():
            server = self.new_server(make())
            if first is not None:
                server.client_port, server.peer_port = first.client_port, first.peer_port
            server.start()
            ids[server.label] = server.header_ids()
            server.stop()
            first = first or server
        etcd_ids, dolmen_ids = ids.values()
        self.assertEqual(dolmen_ids, etcd_ids, "(cluster_id, member_id) for the same flags: "
                         "etcd %r, dolmen %r" % (etcd_ids, dolmen_ids))

    def test_a_taken_client_port_is_refused(self):
        for make in self.both():
            with self.subTest(server=make.__name__):
                first = self.new_server(make())
                first.start()
                second = self.new_server(make(name="m2"))
                second.client_port = first.client_port
                second.peer_port = harness.pick_free_port()
                second.spawn()
                status = wait_exit(second, EXIT_WAIT_S)
                tail = second.log_text()[-1500:]
                second.stop()
                self.assertIsNotNone(status, "%s started on a client port another member "
                                     "listens on (it should exit like etcd: 'bind: address "
                                     "already in use'); log:\n%s" % (second.label, tail))
                self.assertNotEqual(status, 0, "%s exited 0; log:\n%s" % (second.label, tail))
                # The first member still owns the port: every write reaches it.
                for i in range(10):
                    rc, _, err = first.etcdctl("put", "k%d" % i, "v")
                    self.assertEqual(rc, 0, err)
                rc, out, _ = first.etcdctl("get", "k", "--prefix", "-w", "json")
                self.assertIn('"revision":11', out)
                first.stop()

    def test_exit_status_after_sigterm(self):
        statuses = []
        for make in self.both():
            server = self.new_server(make())
            server.start()
            rc, _, err = server.etcdctl("put", "k", "v")
            self.assertEqual(rc, 0, err)
            statuses.append(server.stop())
        # etcd 3.4 re-raises the signal after shutting down, so it dies "by SIGTERM" (a shell
        # sees 143).
        self.assertEqual(statuses[0], -15)
        self.assertEqual(statuses[1], statuses[0], "exit status after SIGTERM (Popen "
                         "returncode; negative: killed by that signal)")


if __name__ == "__main__":
    harness.main()
