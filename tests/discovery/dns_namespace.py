"""A private DNS for a test: one network namespace with its own loopback, a real DNS server
(dnsmasq) on 127.0.0.1:53 inside it, and its own /etc/resolv.conf.

`ip netns exec NS cmd` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf for `cmd`
(and execs it in place, so the PID is cmd's), so every resolver in there (glibc's libresolv and
getaddrinfo in dolmen, Go's in etcd and etcdctl) asks our dnsmasq on port 53 without touching
the host's DNS. Inside, the whole 127.0.0.0/8 is on `lo`: members use 127.0.0.1, .2, .3.

Needs root, iproute2 and dnsmasq (Debian dnsmasq-base); anything missing raises NetnsError with
what failed, and the test fails on it. `close()` stops dnsmasq by PID, deletes the namespace and
/etc/netns/NS; namespaces of a dead test process (its pid in the name) are removed at the next
start.
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
from netns import IP, NetnsError, _pid_alive, _run  # noqa: E402  (iproute2 helpers)

DNSMASQ = "/usr/sbin/dnsmasq"
PREFIX = "dsrv"
DNS_READY_TIMEOUT_S = 10.0
STOP_WAIT_S = 5.0


def remove_stale():
    """Deletes namespaces (and their /etc/netns dirs) named dsrv<pid> whose process is gone."""
    for line in _run(["netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"%s(\d+)$" % PREFIX, name)
        if m and not _pid_alive(int(m.group(1))):
            _run(["netns", "delete", name], check=False)
            shutil.rmtree("/etc/netns/" + name, ignore_errors=True)


class DnsNamespace:
    """The namespace and its dnsmasq. Use as a context manager."""

    def __init__(self, domain, log_dir):
        self.name = "%s%d" % (PREFIX, os.getpid())
        self.domain = domain
        self.log_dir = log_dir
        self.etc_dir = "/etc/netns/" + self.name
        self.dnsmasq = None
        self._created = False

    def __enter__(self):
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def create(self):
        if os.geteuid() != 0:
            raise NetnsError("network namespaces and port 53 need root (uid %d)" % os.geteuid())
        if not os.access(DNSMASQ, os.X_OK):
            raise NetnsError("%s missing: run scripts/install-deps.sh (dnsmasq-base)" % DNSMASQ)
        remove_stale()
        _run(["netns", "add", self.name])
        self._created = True
        _run(["-n", self.name, "link", "set", "lo", "up"])
        os.makedirs(self.etc_dir, exist_ok=True)
        with open(os.path.join(self.etc_dir, "resolv.conf"), "w") as f:
            # One quick try: a missing server answers "connection refused" at once anyway.
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def exec_prefix(self):
        return [IP, "netns", "exec", self.name]

    def start_dns(self, hosts, srv):
        """Starts dnsmasq with `hosts` ({name: ip}) and `srv` ([(service, target, port)], e.g.
        ("_etcd-server._tcp", "m1", 2380); names are relative to the domain). Names of the
        domain it has no record for are answered NXDOMAIN (--local), as by an authoritative
        server. Returns once it answers."""
        self.stop_dns()
        d = self.domain
        args = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                "--no-resolv", "--no-hosts", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--port=53", "--local=/%s/" % d, "--log-queries", "--log-facility=-",
                "--host-record=ns.%s,127.0.0.1" % d]
        args += ["--host-record=%s.%s,%s" % (h, d, ip) for h, ip in sorted(hosts.items())]
        args += ["--srv-host=%s.%s,%s.%s,%d" % (s, d, t, d, p) for s, t, p in srv]
        log = open(os.path.join(self.log_dir, "dnsmasq.log"), "ab")
        log.write(("\n=== %s\n" % " ".join(args)).encode())
        log.flush()
        self.dnsmasq = subprocess.Popen(
            ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] + self.exec_prefix() + args,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + DNS_READY_TIMEOUT_S
        while True:
            if self.dnsmasq.poll() is not None:
                rc = self.dnsmasq.returncode
                self.dnsmasq = None
                raise NetnsError("dnsmasq exited with status %s (see %s/dnsmasq.log)"
                                 % (rc, self.log_dir))
            probe = subprocess.run(self.exec_prefix() + ["getent", "hosts", "ns." + d],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            if probe.returncode == 0 and b"127.0.0.1" in probe.stdout:
                return
            if time.monotonic() > deadline:
                raise NetnsError("dnsmasq does not answer after %.0f s" % DNS_READY_TIMEOUT_S)
            time.sleep(0.05)

    def stop_dns(self):
        if self.dnsmasq is None:
            return
        proc, self.dnsmasq = self.dnsmasq, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_WAIT_S)

    def close(self):
        self.stop_dns()
        if self._created:
            _run(["netns", "delete", self.name], check=False)
            self._created = False
        shutil.rmtree(self.etc_dir, ignore_errors=True)
