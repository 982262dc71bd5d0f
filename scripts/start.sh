#!/usr/bin/env bash
# Installs dependencies, builds the server, and starts a one-member dolmen on 127.0.0.1:2379 (peer
# port 2380) with its data in ./default.dolmen. Extra arguments are passed to dolmen (etcd's
# flags). DOLMEN_CLIENT_PORT and DOLMEN_PEER_PORT move the two ports.
#
# One line per phase; a failing phase shows its last lines of output. A port that is already
# taken is reported with what holds it before anything is installed or started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib/ports.sh
. "$root/scripts/lib/ports.sh"

client_port=${DOLMEN_CLIENT_PORT:-2379}
peer_port=${DOLMEN_PEER_PORT:-2380}
client_url="http://127.0.0.1:$client_port"
peer_url="http://127.0.0.1:$peer_port"

for port in "$client_port" "$peer_port"; do
  if port_in_use "$port"; then
    echo "start: port $port on 127.0.0.1 is already in use by $(port_holder "$port");" \
      "stop it (a system etcd: systemctl stop etcd) or pick another with" \
      "DOLMEN_CLIENT_PORT/DOLMEN_PEER_PORT" >&2
    exit 1
  fi
done

# run_step LOG COMMAND...: runs COMMAND with its output in LOG; on failure prints LOG's last lines.
run_step() {
  local log=$1 status=0
  shift
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    echo "start: '$*' failed with status $status; its last lines (all of it in $log):" >&2
    tail -n 30 "$log" >&2
    exit "$status"
  fi
}

# install-deps prints one line when it installs ("installing N Debian packages") and apt's last
# lines when that fails; it says nothing when everything is there.
"$root/scripts/install-deps.sh"

mkdir -p "$root/build"
if [ -x "$root/build/cmd/dolmen/dolmen" ]; then
  echo "start: building dolmen (up to date in seconds unless the sources changed)"
else
  echo "start: building dolmen (the first build takes about 10 minutes on 2 cores)"
fi
run_step "$root/build/start-build.log" "$root/scripts/build.sh" release dolmen

echo "start: serving clients on $client_url (peers on $peer_url), data in ./default.dolmen;" \
  "Ctrl-C stops it"
echo "start: try it: ETCDCTL_API=3 etcdctl --endpoints=$client_url put greeting hello"
exec "$root/build/cmd/dolmen/dolmen" \
  --listen-client-urls "$client_url" --advertise-client-urls "$client_url" \
  --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
  --initial-cluster "default=$peer_url" "$@"
