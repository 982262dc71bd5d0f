#!/usr/bin/env bash
# Configures and builds one flavour of Dolmen.
#   scripts/build.sh            release build in build/
#   scripts/build.sh asan       ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOLMEN_SANITIZE=ON) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
# ccache keys on paths relative to the checkout, so clones in other folders share one cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
ninja -C "$dir" ${NINJA_FLAGS:-}
