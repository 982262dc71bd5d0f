#!/usr/bin/env bash
# Installs everything Dolmen needs to build and test, from Debian 12 packages only.
# Idempotent and quiet when all is there. Run as root (or with sudo available).
#
# Exit status: 0 when every package is installed afterwards; apt-get's status otherwise, with
# the last lines of apt-get's output on stderr.
#
# DOLMEN_POLICY_RC_D overrides the path of Debian's policy-rc.d (tests/setup points it at a file
# of their own; everyone else leaves it alone).
set -euo pipefail

packages=(
  # toolchain; ccache keeps rebuilds of fresh clones short, shellcheck lints our shell scripts
  g++ cmake ninja-build pkg-config clang-format git ccache shellcheck
  # clang 16 and its compiler-rt build and run the libFuzzer targets (scripts/fuzz.sh); 16, not
  # Debian's default 14, because 14 lacks C++20 pieces the code uses (std::source_location with
  # libstdc++ 12, lambdas capturing structured bindings)
  clang-16 libclang-rt-16-dev
  # libraries we link
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libabsl-dev
  liblmdb-dev libssl-dev libsystemd-dev libcrypt-dev
  # yaml-cpp reads --config-file (etcd's YAML format); a maintained parser rather than our own
  libyaml-cpp-dev
  # spdlog writes the structured (zap-style JSON) logs; libmicrohttpd serves HTTP/1.1 on the
  # client and metrics ports (it adopts connections we accepted and classified ourselves);
  # nlohmann-json builds and reads the HTTP endpoints' JSON
  libspdlog-dev libmicrohttpd-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # reference clients and server the compatibility tests run against
  etcd-server etcd-client python3-etcd3
  # tools the tests use; gnuplot draws bench/compare.py's plots (docs/benchmarks.md);
  # systemd provides systemd-analyze, which verifies deploy/systemd's units (tests/systemd)
  curl procps iproute2 python3 gnuplot-nox systemd
  # promtool (Debian prometheus) checks /metrics and evaluates etcd's alert rules (tests/http)
  prometheus
  # wrk loads the JSON gateway over keep-alive HTTP/1.1 in bench/compare.py (docs/benchmarks.md)
  wrk
  # dnsmasq serves the SRV records of the DNS discovery tests (tests/discovery), on loopback
  dnsmasq-base
  # --discovery-aws-asg: libcurl carries the AWS calls, libxml2 reads their answers; the tests'
  # emulator verifies SigV4 with botocore and is checked with the lab's awscli procedure
  libcurl4-openssl-dev libxml2-dev awscli python3-botocore
  # deploy/container/build.sh makes the image (mmdebstrap: root file system from Debian
  # packages; buildah: OCI image); tests/container runs it with podman, on runc (crun refuses
  # the hybrid cgroup layout of Docker-style CI hosts); uidmap for podman's user namespaces
  podman buildah mmdebstrap runc uidmap
  # tests/patroni: Patroni, PostgreSQL's most used HA manager, runs two PostgreSQL 15 servers with
  # its etcd3 DCS on dolmen's JSON gateway (and on etcd 3.4's, the reference)
  patroni postgresql-15
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi

plural=s
if [ ${#missing[@]} -eq 1 ]; then plural=""; fi
echo "install-deps: installing ${#missing[@]} Debian package$plural: ${missing[*]}"
# Debian's etcd-server would start a system etcd on 127.0.0.1:2379 at install time, taking the
# port dolmen and the tests use; a policy-rc.d that forbids service starts prevents that. One that
# is already there (Docker-style images ship one) is left exactly as it was.
policy=${DOLMEN_POLICY_RC_D:-/usr/sbin/policy-rc.d}
placed_policy=0
apt_log=$(mktemp)
# shellcheck disable=SC2317  # run by the trap below; shellcheck 0.9 takes it for dead code
cleanup() {
  # Under set -e a command failing here would replace the script's exit status (a bare
  # `[ ... ] && ...` that is false did, once), so every step is an `if` or cannot fail.
  if [ "$placed_policy" -eq 1 ]; then
    $SUDO rm -f "$policy"
  fi
  rm -f "$apt_log"
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  placed_policy=1
  $SUDO chmod +x "$policy"
fi

# apt-get's output is kept out of sight unless it fails; then its last lines say why.
apt() {
  local status=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "$@" >"$apt_log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    echo "install-deps: 'apt-get $*' failed with status $status; its last lines:" >&2
    tail -n 25 "$apt_log" >&2
    exit "$status"
  fi
}
apt update -qq
apt install -y -qq --no-install-recommends "${missing[@]}"

# If a system etcd was started anyway (e.g. by systemd), stop it: tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
fi
exit 0
