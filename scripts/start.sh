#!/usr/bin/env bash
# Installs dependencies, builds, and starts a one-member dolmen on 127.0.0.1:2379 with its data
# in ./default.dolmen. Extra arguments are passed to dolmen (etcd's flags).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" release >/dev/null
exec "$root/build/cmd/dolmen/dolmen" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 "$@"
