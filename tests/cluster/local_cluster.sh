#!/usr/bin/env bash
# Runs a local 3-member cluster on 127.0.0.1 in the foreground, laid out like etcd's Procfile:
#
#   infra1  client http://127.0.0.1:2379   peer http://127.0.0.1:2380
#   infra2  client http://127.0.0.1:22379  peer http://127.0.0.1:22380
#   infra3  client http://127.0.0.1:32379  peer http://127.0.0.1:32380
#
# Each member's output is prefixed with its name. Ctrl-C (or SIGTERM) stops all three by PID
# (SIGTERM, then SIGKILL after 10 s) and removes the data dirs unless --keep was given.
# If one member exits on its own, the others are stopped too.
#
# Usage: tests/cluster/local_cluster.sh [--keep] [BINARY]
#   BINARY   the server to run (default: $DOLMEN_BIN, else build/cmd/dolmen/dolmen, else the
#            newest build*/cmd/dolmen/dolmen); /usr/bin/etcd works too, for comparison.
#   --keep   keep the data dirs (printed at start) when stopping.
# Then, in another shell:
#   ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 \
#       endpoint status --cluster -w table
set -euo pipefail

keep=0
bin="${DOLMEN_BIN:-}"
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown flag $arg (see --help)" >&2; exit 2 ;;
    *) bin="$arg" ;;
  esac
done

repo="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ -z "$bin" ]]; then
  if [[ -x "$repo/build/cmd/dolmen/dolmen" ]]; then
    bin="$repo/build/cmd/dolmen/dolmen"
  else
    for candidate in "$repo"/build*/cmd/dolmen/dolmen; do  # the newest build of any flavour
      if [[ -x "$candidate" && (-z "$bin" || "$candidate" -nt "$bin") ]]; then bin="$candidate"; fi
    done
  fi
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "no server binary: build dolmen (ninja -C build dolmen) or pass its path" >&2
  exit 2
fi

names=(infra1 infra2 infra3)
client_ports=(2379 22379 32379)
peer_ports=(2380 22380 32380)
initial_cluster="infra1=http://127.0.0.1:2380,infra2=http://127.0.0.1:22380"
initial_cluster+=",infra3=http://127.0.0.1:32380"

# shellcheck source=scripts/lib/ports.sh
. "$repo/scripts/lib/ports.sh"
for port in "${client_ports[@]}" "${peer_ports[@]}"; do
  if port_in_use "$port"; then
    echo "127.0.0.1:$port is already in use by $(port_holder "$port")" >&2
    exit 1
  fi
done

data_root="$(mktemp -d /tmp/dolmen-local-cluster.XXXXXX)"
pids=()

# shellcheck disable=SC2317  # run by the trap below; shellcheck 0.9 takes it for dead code
stop_all() {
  trap - EXIT INT TERM
  local pid deadline
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "pid $pid still running after SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  if ((keep)); then
    echo "data kept in $data_root"
  else
    rm -rf "$data_root"
  fi
}
trap stop_all EXIT
trap 'echo; echo "stopping..."; exit 130' INT TERM

echo "server: $bin"
echo "data:   $data_root"
for i in 0 1 2; do
  name="${names[$i]}"
  client="http://127.0.0.1:${client_ports[$i]}"
  peer="http://127.0.0.1:${peer_ports[$i]}"
  # Process substitution keeps $! the server's own PID (a pipe would give sed's).
  "$bin" --name "$name" --data-dir "$data_root/$name" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$initial_cluster" --initial-cluster-state new \
    --initial-cluster-token local-cluster-1 \
    > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
  echo "$name: pid $!, client $client, peer $peer"
done
echo "Ctrl-C stops all three."

# Returns when the first member exits; the EXIT trap then stops the others.
set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "a member exited with status $status; stopping the others" >&2
exit "$status"
