"""A private network for a test cluster: one network namespace per member, joined by a bridge,
so that a member can be partitioned from everyone in both directions.

Layout (NAME = "dft<pid>", unique per test process; the /24 is picked among 10.213-10.252.x.0
and checked against every address and route of the host):

    root namespace                          namespace NAME-<i> (member i)
    bridge NAME-br, 10.a.b.1/24  ----  veth NAME-r<i>  <====>  eth0 10.a.b.(10+i)/24, lo

The test process, etcdctl and the clients stay in the root namespace and reach members through
the bridge; members listen on their own address, ports 2379/2380 (each namespace has its own
port space). Members are started with `ip netns exec`, which execs the server in place, so
their PIDs are the servers' PIDs (kill -9, SIGSTOP and SIGTERM by PID work as on loopback).

Partition: `isolate(i)` takes member i's veth off the bridge (`ip link set NAME-r<i> nomaster`):
nothing it sends reaches anyone and nothing reaches it, clients included, while its own link
stays up (no address or route changes inside, TCP connections stay open, as in a real switch
failure); `heal(i)` puts it back. Both sides of the partition see it at once.

Needs root and iproute2 (`ip`); a missing `ip`, or a kernel or container that refuses network
namespaces, veth pairs or bridges raises NetnsError with what failed, and the tests fail on it.
Everything is deleted by `close()` (namespaces, veths with them, the bridge), and namespaces and
links left by a dead test process (its pid in the name) are deleted at the next start.
"""

import ipaddress
import os
import re
import shutil
import subprocess

IP = shutil.which("ip") or "/usr/sbin/ip"
PREFIX = "dft"
CMD_TIMEOUT_S = 10


class NetnsError(Exception):
    pass


def _run(args, check=True):
    try:
        proc = subprocess.run([IP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=CMD_TIMEOUT_S)
    except FileNotFoundError:
        raise NetnsError("`ip` (iproute2) is not installed: run scripts/install-deps.sh")
    if check and proc.returncode != 0:
        raise NetnsError("`ip %s` failed (status %d): %s" % (" ".join(args), proc.returncode,
                                                              proc.stderr.decode().strip()))
    return proc.stdout.decode()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale():
    """Deletes namespaces and links named dft<pid>... whose test process is gone."""
    for line in _run(["netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"%s(\d+)-" % PREFIX, name)
        if m and not _pid_alive(int(m.group(1))):
            _run(["netns", "delete", name], check=False)
    for line in _run(["-o", "link", "show"], check=False).splitlines():
        m = re.match(r"\d+: (%s(\d+)-[^:@]+)" % PREFIX, line)
        if m and not _pid_alive(int(m.group(2))):
            _run(["link", "delete", m.group(1)], check=False)


def _pick_subnet():
    used = _run(["-4", "addr", "show"]) + _run(["-4", "route", "show", "table", "all"])
    networks = []
    for text in re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", used):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            pass
    pid = os.getpid()
    for k in range(200):
        a = 213 + (pid + k) % 40
        b = (pid // 40 + k * 7) % 256
        net = ipaddress.ip_network("10.%d.%d.0/24" % (a, b))
        if not any(net.overlaps(n) for n in networks if n.prefixlen > 0):
            return net
    raise NetnsError("no free 10.x.y.0/24 for the test network")


class Network:
    """The bridge and `size` member namespaces. Use as a context manager."""

    def __init__(self, size):
        self.name = "%s%d" % (PREFIX, os.getpid())
        self.size = size
        self.bridge = "%s-br" % self.name
        self.subnet = None
        self.namespaces = []
        self._created_bridge = False

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

    def ns(self, i):
        return "%s-%d" % (self.name, i)

    def host_veth(self, i):
        return "%s-r%d" % (self.name, i)

    def address(self, i):
        return str(self.subnet.network_address + 10 + i)

    def create(self):
        if os.geteuid() != 0:
            raise NetnsError("network namespaces need root (running as uid %d)" % os.geteuid())
        remove_stale()
        self.subnet = _pick_subnet()
        gateway = "%s/%d" % (self.subnet.network_address + 1, self.subnet.prefixlen)
        _run(["link", "add", self.bridge, "type", "bridge"])
        self._created_bridge = True
        _run(["addr", "add", gateway, "dev", self.bridge])
        _run(["link", "set", self.bridge, "up"])
        for i in range(self.size):
            ns = self.ns(i)
            _run(["netns", "add", ns])
            self.namespaces.append(ns)
            inner = "%s-n%d" % (self.name, i)
            _run(["link", "add", self.host_veth(i), "type", "veth", "peer", "name", inner])
            _run(["link", "set", inner, "netns", ns])
            _run(["-n", ns, "link", "set", inner, "name", "eth0"])
            _run(["-n", ns, "addr", "add", "%s/%d" % (self.address(i), self.subnet.prefixlen),
                  "dev", "eth0"])
            _run(["-n", ns, "link", "set", "eth0", "up"])
            _run(["-n", ns, "link", "set", "lo", "up"])
            _run(["link", "set", self.host_veth(i), "master", self.bridge])
            _run(["link", "set", self.host_veth(i), "up"])

    def isolate(self, i):
        _run(["link", "set", self.host_veth(i), "nomaster"])

    def heal(self, i):
        _run(["link", "set", self.host_veth(i), "master", self.bridge])

    def exec_prefix(self, i):
        """The command prefix that runs a program in member i's namespace (it execs in place)."""
        return [IP, "netns", "exec", self.ns(i)]

    def close(self):
        for ns in self.namespaces:
            _run(["netns", "delete", ns], check=False)  # deletes its end of the veth, and so both
        self.namespaces = []
        if self._created_bridge:
            _run(["link", "delete", self.bridge], check=False)
            self._created_bridge = False
