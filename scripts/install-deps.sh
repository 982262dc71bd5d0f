#!/usr/bin/env bash
# Installs everything Dolmen needs to build and test, from Debian 12 packages only.
# Idempotent and quiet when all is there. Run as root (or with sudo available).
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config clang-format git ccache shellcheck
  # libraries we link
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libabsl-dev
  liblmdb-dev libssl-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # reference clients and server the compatibility tests run against
  etcd-server etcd-client python3-etcd3
  # tools the tests use; gnuplot draws bench/compare.py's plots (docs/benchmarks.md)
  curl procps iproute2 python3 gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

echo "install-deps: installing ${missing[*]}"
# Debian's etcd-server would start a system etcd on 127.0.0.1:2379 at install time, taking the
# port dolmen and the tests use; a policy-rc.d that forbids service starts prevents that.
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  placed_policy=1
fi
cleanup() { [ "$placed_policy" -eq 1 ] && $SUDO rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# If a system etcd was started anyway (e.g. by systemd), stop it: tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
fi
