#!/usr/bin/python3
"""--config-file, dolmen compared with etcd 3.4: both started from the same YAML file (etcd's
sample with this test's loopback ports and data dir) serve, and `etcdctl member list` shows the
name and URLs the file gives; the flags and ETCD_* variables also given are ignored, as etcd
ignores them. Then dolmen alone: a misspelt key is refused naming the key and its line (etcd
ignores unknown keys; dolmen refuses them on purpose, see src/embed/config_file.h).

Run: /usr/bin/python3 config_file_test.py --dolmen PATH [unittest args]
"""

import json
import os
import subprocess

import harness
from harness import IntegrationTestCase

EXIT_WAIT_S = 8.0

# etcd v3.4's etcd.conf.yml.sample (comments left out), shared with src/embed's unit test.
SAMPLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data",
                           "etcd-3.4.conf.yml")


def sample_for(name, data_dir, client_url, peer_url):
    """The sample with this test's member in it. enable-v2 is left out: etcd 3.4 would then
    serve v2 too, which does not change what this test looks at."""
    ours = {"name": "'%s'" % name, "data-dir": data_dir, "listen-peer-urls": peer_url,
            "listen-client-urls": client_url, "initial-advertise-peer-urls": peer_url,
            "advertise-client-urls": client_url, "initial-cluster": "%s=%s" % (name, peer_url)}
    lines = []
    with open(SAMPLE_PATH) as f:
        for line in f.read().splitlines():
            key = line.split(":", 1)[0]
            if key == "enable-v2":
                continue
            lines.append("%s: %s" % (key, ours[key]) if key in ours else line)
    return "\n".join(lines) + "\n"


class ConfigFileServer(harness.Server):
    """A Server started from a config file it writes at each spawn (ports are known then), with
    a conflicting flag and ETCD_* variable that the file must win over."""

    def __init__(self, kind, binary, label, extra_yaml=""):
        super().__init__(kind, binary, name="from-file-" + label, label=label)
        self.config_path = os.path.join(self.tmp_dir, "etcd.conf.yml")
        self.extra_yaml = extra_yaml

    @property
    def peer_url(self):
        return "http://" + self.peer_hostport

    def sample_text(self):
        return sample_for(self.name, self.data_dir, self.endpoint, self.peer_url)

    def _command(self):
        with open(self.config_path, "w") as f:
            f.write(self.sample_text())
            f.write(self.extra_yaml)
        # /usr/bin/env execs the server, so the PID the harness stops is still the server's.
        return ["/usr/bin/env", "ETCD_NAME=from-env", "ETCD_SNAPSHOT_COUNT=not-a-number",
                self.binary, "--name", "from-flag", "--config-file", self.config_path]


def members(server):
    rc, out, err = server.etcdctl("member", "list", "-w", "json")
    if rc != 0:
        raise AssertionError("%s: member list failed: %s" % (server.label, err))
    return [(m.get("name"), m.get("peerURLs"), m.get("clientURLs"))
            for m in json.loads(out)["members"]]


class ConfigFileTest(IntegrationTestCase):

    def test_same_file_same_member(self):
        sides = [ConfigFileServer("etcd", harness.CONFIG.etcd, "etcd"),
                 ConfigFileServer(harness.CONFIG.dolmen_kind, harness.CONFIG.dolmen, "dolmen")]
        for server in sides:
            with self.subTest(server=server.label):
                self.new_server(server).start()
                self.assertEqual(members(server),
                                 [(server.name, [server.peer_url], [server.endpoint])])
                rc, _, err = server.etcdctl("put", "k", "v")
                self.assertEqual(rc, 0, err)
                self.assertIn("other configuration command line flags and environment "
                              "variables will be ignored", server.log_text())
                server.stop()

    def test_misspelt_key_is_refused_with_its_line(self):
        if harness.CONFIG.dolmen_kind != "dolmen":
            self.skipTest("etcd ignores unknown keys; dolmen refuses them on purpose")
        server = self.new_server(ConfigFileServer("dolmen", harness.CONFIG.dolmen, "dolmen",
                                                  extra_yaml="listen-clients-urls: x\n"))
        server.spawn()
        try:
            status = server.proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            status = None
        server.stop()
        self.assertEqual(status, 2, server.log_text()[-1500:])
        line = server.sample_text().count("\n") + 1
        self.assertIn('%s:%d: unknown key "listen-clients-urls"' % (server.config_path, line),
                      server.log_text())


if __name__ == "__main__":
    harness.main()
