#!/usr/bin/python3
"""dolmen's container image (deploy/container/build.sh), run the way the lab runs etcd's.

Builds the image from the Release binary (or reuses the OCI archive built from the same binary and
build script, keyed by their sha256), then runs it as deploy/systemd/dolmen-container.service
does: `podman run --net host --volume DATA:/etcd-data:U IMAGE /usr/local/bin/etcd --data-dir=...`
with the unit's own etcd command line (read from the unit file, so the two cannot drift apart):
the lab's flags, TLS ones included (`--listen-client-urls https://IP:2379,http://127.0.0.1:2379`,
`--auto-tls`, `--peer-auto-tls`), with 127.0.0.2 for the instance's IP and ports this test
picked for 2379 and 2380. It checks that the member serves over https (etcdctl from the host
with --insecure-skip-tls-verify, and with --cacert set to the auto-TLS certificate the member
wrote into the data dir, as an operator would) and over the http loopback URL, that etcdctl
inside the container lists it, that a key and the certificate survive `podman restart`, and that
`podman stop` ends it with SIGTERM's status after dolmen logged a clean stop. It also checks
the image: user not root, /usr/local/bin/etcd is dolmen, no compiler, size below a bound.

Podman is confined to this test: its storage (vfs), run dir, temp dir and containers.conf live
in the test's temporary directory (CONTAINERS_STORAGE_CONF, CONTAINERS_CONF), so the host's
podman images and containers are never touched. Every container it starts it removes.

If podman cannot run a container on this machine (the first `podman run` fails), the test says
so loudly and runs the image's root file system, unpacked from the OCI archive (never from the
build folder), with `unshare --mount` + `chroot --userspec` as the image's user and with the
image's command semantics instead. It never passes without running the image.

  container_test.py --dolmen build/cmd/dolmen/dolmen --cache-dir build/container
"""

import argparse
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (pick_free_port, run_etcdctl)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_SCRIPT = os.path.join(REPO, "deploy", "container", "build.sh")
UNIT = os.path.join(REPO, "deploy", "systemd", "dolmen-container.service")
# The lab's ${INTERNAL_IP}: a second loopback address, so that its https URL and the http
# 127.0.0.1 one share a port on two sockets, as on the lab's instances.
INTERNAL_IP = "127.0.0.2"
# etcdctl over the https URL with a self-signed (auto-TLS) certificate.
HTTPS_FLAGS = ["--insecure-transport=false", "--insecure-skip-tls-verify"]
TAG = "localhost/dolmen:latest"
IMAGE_UID = 10001
# Measured 164 MB (uncompressed, podman's Size) for the bookworm image of December 2026: 119 MB
# before --discovery-aws-asg linked libcurl and libxml2, which bring libicu (its data alone is
# 30 MB). The bound leaves room for library updates, not for a compiler or a build tree.
SIZE_BOUND_BYTES = 180 * 1000 * 1000
BUILD_TIMEOUT_S = 900
PODMAN_TIMEOUT_S = 120
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30  # podman stop --time: SIGKILL after this; dolmen stops well within it
EXIT_BY_SIGTERM = 128 + 15


def log(msg):
    print(f"container_test: {msg}", flush=True)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd, timeout=PODMAN_TIMEOUT_S, check=True, env=None):
    """Runs cmd, returns CompletedProcess with text output; check=True fails on non-zero."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\n"
                             f"stderr: {p.stderr}")
    return p


def wait_until(what, fn, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s; last: {last}")


class PodmanSandbox:
    """podman with storage, run dir and config in `root`; never the host's."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root)
        storage_conf = os.path.join(root, "storage.conf")
        containers_conf = os.path.join(root, "containers.conf")
        with open(storage_conf, "w") as f:
            f.write('[storage]\ndriver = "vfs"\n'
                    f'graphroot = "{root}/graph"\nrunroot = "{root}/run"\n')
        # Limits podman would raise past what this (possibly containerised) machine allows make
        # the runtime fail with EPERM: ask for what we have. runc, not crun: crun refuses the
        # hybrid cgroup v1/v2 layout that Docker-style CI hosts have. cgroupfs and a file event
        # log: there may be no systemd to talk to.
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        runtime = "runc" if shutil.which("runc") else "crun"
        with open(containers_conf, "w") as f:
            f.write("[containers]\n"
                    f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
                    "[engine]\n"
                    'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'runtime = "{runtime}"\ntmp_dir = "{root}/tmp"\n')
        self.env = dict(os.environ, CONTAINERS_STORAGE_CONF=storage_conf,
                        CONTAINERS_CONF=containers_conf)

    def podman(self, *args, timeout=PODMAN_TIMEOUT_S, check=True):
        return run(["podman", *args], timeout=timeout, check=check, env=self.env)

    def cleanup(self):
        self.podman("rm", "--all", "--force", "--time", "5", check=False)
        self.podman("rmi", "--all", "--force", check=False)


def build_or_reuse(args, sandbox):
    """Returns the OCI archive of the image for this binary and build script; the image is in
    the sandbox's storage afterwards."""
    key = hashlib.sha256((sha256_of(args.dolmen) + sha256_of(BUILD_SCRIPT)).encode()).hexdigest()
    os.makedirs(args.cache_dir, exist_ok=True)
    archive = os.path.join(args.cache_dir, f"dolmen-{key[:16]}.oci.tar")
    if os.path.exists(archive):
        log(f"reusing {archive} (same binary and build script)")
        sandbox.podman("load", "--quiet", "--input", archive, timeout=300)
        return archive
    for old in os.listdir(args.cache_dir):
        if old.startswith("dolmen-") and old.endswith(".oci.tar"):
            os.remove(os.path.join(args.cache_dir, old))
    out = os.path.join(sandbox.root, "build-out")
    start = time.monotonic()
    p = run([BUILD_SCRIPT, "--dolmen", args.dolmen, "--tag", TAG, "--out", out, "--oci-archive"],
            timeout=BUILD_TIMEOUT_S, check=False, env=sandbox.env)
    print(p.stdout, p.stderr, sep="\n", flush=True)
    assert p.returncode == 0, f"build.sh failed with status {p.returncode}"
    log(f"image built in {time.monotonic() - start:.0f}s")
    shutil.move(os.path.join(out, "dolmen.oci.tar"), archive + ".part")
    os.rename(archive + ".part", archive)
    return archive


def unit_command(unit_path):
    """The etcd command line of the unit's ExecStart: everything from /usr/local/bin/etcd on,
    split as systemd splits it (the unit quotes nothing), ${VAR} left for lab_flags."""
    with open(unit_path) as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"^ExecStart=(.*)$", text, re.MULTILINE)
    assert m, f"{unit_path}: no ExecStart="
    words = shlex.split(m.group(1))
    assert "/usr/local/bin/etcd" in words, f"{unit_path}: ExecStart does not run /usr/local/bin/etcd"
    return words[words.index("/usr/local/bin/etcd"):]


def lab_flags(name, client_port, peer_port):
    """The unit's etcd command with the lab's values on loopback: the EnvironmentFile's
    variables filled in, and this test's ports for etcd's 2379 and 2380."""
    values = {"ETCD_NAME": name, "INTERNAL_IP": INTERNAL_IP,
              "ETCD_INITIAL_CLUSTER": f"{name}=http://${{INTERNAL_IP}}:2380",
              "ETCD_INITIAL_CLUSTER_TOKEN": "container-test"}
    out = []
    for word in unit_command(UNIT):
        for _ in range(2):  # ETCD_INITIAL_CLUSTER names ${INTERNAL_IP} itself
            word = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], word)
        word = harness.with_ports(word, {2379: client_port, 2380: peer_port})
        out.append(word)
    assert "--auto-tls" in out and f"https://{INTERNAL_IP}:{client_port}" in ",".join(out), out
    return out


def pick_lab_ports():
    """A client port free on both 127.0.0.1 and INTERNAL_IP (the lab binds 2379 on both), and
    a peer port free on INTERNAL_IP."""
    for _ in range(50):
        port = harness.pick_free_port()
        with socket.socket() as s:
            try:
                s.bind((INTERNAL_IP, port))
            except OSError:
                continue
        return port, harness.pick_free_port(INTERNAL_IP)
    raise AssertionError(f"no port free on both 127.0.0.1 and {INTERNAL_IP}")


class PodmanMember:
    """The image run as the unit runs it, minus --rm (restart needs the container kept)."""

    def __init__(self, sandbox, data_dir, name, command):
        self.sandbox, self.data_dir, self.name, self.command = sandbox, data_dir, name, command
        self.kind = "podman"

    def start(self):
        self.sandbox.podman("run", "--detach", "--name", self.name, "--net", "host",
                            "--volume", f"{self.data_dir}:/etcd-data:U", TAG, *self.command)

    def exec(self, *cmd):
        return self.sandbox.podman("exec", self.name, *cmd, check=False)

    def oneshot(self, *cmd):
        """cmd in a fresh container of the image (the image's own user), removed after."""
        return self.sandbox.podman("run", "--rm", "--net", "host", TAG, *cmd, check=False)

    def restart(self):
        self.sandbox.podman("restart", "--time", str(STOP_TIMEOUT_S), self.name,
                            timeout=STOP_TIMEOUT_S + 60)

    def stop(self):
        """Returns (exit status, logs)."""
        self.sandbox.podman("stop", "--time", str(STOP_TIMEOUT_S), self.name,
                            timeout=STOP_TIMEOUT_S + 60)
        code = self.sandbox.podman("inspect", "--format", "{{.State.ExitCode}}",
                                   self.name).stdout.strip()
        logs = self.sandbox.podman("logs", self.name)
        return int(code), logs.stdout + logs.stderr

    def remove(self):
        self.sandbox.podman("rm", "--force", "--time", "5", "--ignore", self.name, check=False)


class ChrootMember:
    """Fallback: the image's root file system (unpacked from the OCI archive) run with
    unshare --mount (the data dir bind-mounted at /etcd-data) and chroot --userspec as the
    image's user, with the image's environment and no entrypoint, like the image's config."""

    def __init__(self, rootfs, config, data_dir, command, log_path):
        self.rootfs, self.config, self.data_dir = rootfs, config, data_dir
        self.command, self.log_path, self.proc = command, log_path, None
        self.kind = "unshare+chroot"
        self.user = config.get("User", "0")
        self.env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        for kv in config.get("Env", []):
            k, _, v = kv.partition("=")
            self.env[k] = v

    def _argv(self, cmd):
        script = ('mount --bind "$1" "$2/etcd-data" && shift 2 && '
                  f'exec chroot --userspec={self.user} "$0" "$@"')
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
                self.rootfs, self.data_dir, self.rootfs, *cmd]

    def start(self):
        os.chown(self.data_dir, *map(int, self.user.split(":")))
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(harness._die_with_parent_prefix() + self._argv(self.command),
                                         stdout=logf, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL)

    def exec(self, *cmd):
        return run(self._argv(list(cmd)), check=False, env=self.env)

    oneshot = exec

    def _terminate(self):
        self.proc.terminate()
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return 128 + 9

    def restart(self):
        self._terminate()
        self.start()

    def stop(self):
        rc = self._terminate()
        with open(self.log_path, errors="replace") as f:
            # Popen reports death by a signal as -N; a container runtime reports 128+N.
            return (128 - rc if rc < 0 else rc), f.read()

    def remove(self):
        if self.proc and self.proc.poll() is None:
            self._terminate()


def unpack_image(archive, dest):
    """The image's root file system, from the OCI archive's layers in order."""
    layout = os.path.join(dest, "layout")
    rootfs = os.path.join(dest, "rootfs")
    os.makedirs(layout)
    os.makedirs(rootfs)
    run(["tar", "-xf", archive, "-C", layout])

    def blob(digest):
        return os.path.join(layout, "blobs", *digest.split(":", 1))

    with open(os.path.join(layout, "index.json")) as f:
        manifest_digest = json.load(f)["manifests"][0]["digest"]
    with open(blob(manifest_digest)) as f:
        manifest = json.load(f)
    with open(blob(manifest["config"]["digest"])) as f:
        config = json.load(f).get("config", {})
    for layer in manifest["layers"]:
        run(["tar", "--numeric-owner", "-xpf", blob(layer["digest"]), "-C", rootfs], timeout=300)
    return rootfs, config


def check_image(member, image_user, size_bytes, volumes):
    assert image_user and image_user.split(":")[0] not in ("0", "root"), \
        f"image's default user is {image_user!r}, must not be root"
    assert "/etcd-data" in (volumes or {}), f"the image declares no /etcd-data volume: {volumes}"
    # dolmen under its own name too, the CA certificates, and etcdctl for the lab's step.
    p = member.oneshot("sh", "-c", "/usr/local/bin/dolmen --version && "
                       "test -s /etc/ssl/certs/ca-certificates.crt && etcdctl version")
    assert p.returncode == 0 and "dolmen" in p.stdout.lower() and \
        "etcdctl version" in p.stdout, (p.stdout, p.stderr)
    p = member.oneshot("id", "-u")
    assert p.returncode == 0 and p.stdout.strip() == str(IMAGE_UID), (p.stdout, p.stderr)
    p = member.oneshot("/usr/local/bin/etcd", "--version")
    assert p.returncode == 0 and "dolmen" in p.stdout.lower(), (p.stdout, p.stderr)
    p = member.oneshot("sh", "-c", "for c in cc gcc g++ c++ clang cpp ld as make; do "
                    "command -v $c && exit 1; done; ls /usr/lib/gcc 2>/dev/null && exit 1; exit 0")
    assert p.returncode == 0, f"a compiler or toolchain is in the image: {p.stdout}"
    if size_bytes is not None:
        log(f"image size {size_bytes / 1e6:.0f} MB (bound {SIZE_BOUND_BYTES / 1e6:.0f} MB)")
        assert size_bytes < SIZE_BOUND_BYTES, f"image is {size_bytes} bytes"


def check_member(member, client_port, data_dir):
    https_endpoint = f"https://{INTERNAL_IP}:{client_port}"
    http_endpoint = f"127.0.0.1:{client_port}"
    cert = os.path.join(data_dir, "fixtures", "client", "cert.pem")

    def healthy():
        rc, out, err = harness.run_etcdctl(https_endpoint, HTTPS_FLAGS + ["endpoint", "health"])
        return rc == 0 and "is healthy" in out + err, out + err  # 3.4 prints it on stderr

    member.start()
    wait_until("etcdctl endpoint health over https from the host", healthy, READY_TIMEOUT_S)
    rc, out, err = harness.run_etcdctl(https_endpoint, HTTPS_FLAGS + ["put", "container-key",
                                                                      "survives"])
    assert rc == 0 and "OK" in out, (out, err)
    # As an operator would: trust the auto-TLS certificate the member wrote (it names the IP).
    rc, out, err = harness.run_etcdctl(https_endpoint, [f"--cacert={cert}", "get",
                                                        "container-key", "--print-value-only"])
    assert rc == 0 and out.strip() == "survives", ("--cacert", out, err)
    # The http loopback URL serves the same member.
    rc, out, err = harness.run_etcdctl(http_endpoint, ["get", "container-key",
                                                       "--print-value-only"])
    assert rc == 0 and out.strip() == "survives", ("http loopback", out, err)
    # Plaintext on the https URL is refused.
    rc, out, err = harness.run_etcdctl(f"{INTERNAL_IP}:{client_port}", ["get", "container-key"],
                                       timeout=30)
    assert rc != 0, ("plaintext served on the https URL", out)
    with open(cert, "rb") as f:
        first_cert = f.read()
    # The lab's verification step, with the image's own etcdctl (the lab runs it on the host,
    # where the http loopback URL is etcdctl's default endpoint's address).
    p = member.exec("etcdctl", f"--endpoints={http_endpoint}", "member", "list")
    want = f", started, container-0, http://{INTERNAL_IP}:"
    assert p.returncode == 0 and want in p.stdout, (p.stdout, p.stderr)
    # etcdctl joins a member's client URLs with ","; both advertised URLs are listed.
    assert f"https://{INTERNAL_IP}:{client_port},http://127.0.0.1:{client_port}" in p.stdout, \
        p.stdout
    log(f"etcdctl member list inside the image: {p.stdout.strip()}")

    member.restart()
    wait_until("etcdctl endpoint health over https after restart", healthy, READY_TIMEOUT_S)
    rc, out, err = harness.run_etcdctl(https_endpoint, HTTPS_FLAGS + ["get", "container-key",
                                                                      "--print-value-only"])
    assert rc == 0 and out.strip() == "survives", (out, err)
    with open(cert, "rb") as f:
        assert f.read() == first_cert, "the auto-TLS certificate changed across the restart"
    assert os.listdir(data_dir), "the host data dir is empty: data did not land on the volume"

    start = time.monotonic()
    code, logs = member.stop()
    log(f"stopped in {time.monotonic() - start:.1f}s with status {code}")
    assert code == EXIT_BY_SIGTERM, f"exit status {code}, want {EXIT_BY_SIGTERM}\n{logs}"
    # The last log line (JSON, docs/logging.md) says the member stopped.
    last = json.loads(logs.rstrip().splitlines()[-1])
    assert "received SIGTERM, shutting down" in logs and last["msg"] == "stopped", logs
    # Two starts in the log: the restart reused the container and its data.
    assert logs.count("received SIGTERM, shutting down") == 2, logs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dolmen", required=True, help="the Release dolmen binary")
    parser.add_argument("--cache-dir", required=True, help="where built OCI archives are kept")
    args = parser.parse_args()
    args.dolmen = os.path.abspath(args.dolmen)
    args.cache_dir = os.path.abspath(args.cache_dir)
    for tool in ("podman", "buildah", "mmdebstrap", "unshare", "chroot"):
        assert shutil.which(tool), f"{tool} is missing: scripts/install-deps.sh installs it"

    tmp = tempfile.mkdtemp(prefix="dolmen-container-test-")
    sandbox = None
    member = None
    try:
        sandbox = PodmanSandbox(os.path.join(tmp, "podman"))
        archive = build_or_reuse(args, sandbox)
        client_port, peer_port = pick_lab_ports()
        data_dir = os.path.join(tmp, "etcd-data")
        os.makedirs(data_dir)
        command = lab_flags("container-0", client_port, peer_port)
        name = f"dolmen-test-{os.getpid()}-{int(time.time())}"
        probe = sandbox.podman("run", "--rm", "--net", "host", TAG, "/usr/local/bin/etcd",
                               "--version", check=False)
        # DOLMEN_CONTAINER_TEST_FALLBACK=1 takes the fallback path on purpose (to check it).
        forced = os.environ.get("DOLMEN_CONTAINER_TEST_FALLBACK") == "1"
        if probe.returncode == 0 and not forced:
            inspect = json.loads(sandbox.podman("image", "inspect", TAG).stdout)[0]
            member = PodmanMember(sandbox, data_dir, name, command)
            image_user = inspect["Config"].get("User", "")
            volumes = inspect["Config"].get("Volumes")
            size = inspect["Size"]
        else:
            why = ("DOLMEN_CONTAINER_TEST_FALLBACK=1" if forced else
                   "PODMAN CANNOT RUN CONTAINERS HERE:\n" + probe.stderr.strip())
            print("=" * 78 + f"\ncontainer_test: {why}\ncontainer_test: FALLING BACK to the image's root "
                  "file system (from the OCI archive) under unshare + chroot\n" + "=" * 78,
                  flush=True)
            rootfs, config = unpack_image(archive, os.path.join(tmp, "unpacked"))
            member = ChrootMember(rootfs, config, data_dir, command,
                                  os.path.join(tmp, "dolmen.log"))
            image_user = config.get("User", "")
            volumes = config.get("Volumes")
            size = None
        log(f"running the image with {member.kind}")
        check_image(member, image_user, size, volumes)
        check_member(member, client_port, data_dir)
        log("PASS: the image serves, keeps its data across a restart and stops cleanly "
            f"({member.kind})")
    finally:
        if member is not None:
            member.remove()
        if sandbox is not None:
            sandbox.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
