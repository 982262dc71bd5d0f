#!/usr/bin/env bash
# Configures and builds one flavour of Dolmen.
#   scripts/build.sh                    release build in build/
#   scripts/build.sh asan               ASan+UBSan build in build-asan/
#   scripts/build.sh tsan               ThreadSanitizer build in build-tsan/ (scripts/tsan.sh)
#   scripts/build.sh fuzz               clang libFuzzer build in build-fuzz/ (scripts/fuzz.sh)
#   scripts/build.sh release dolmen     only the named ninja targets (here the server)
# NINJA_FLAGS (e.g. "-j1 -k0") is passed to ninja word by word.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
targets=("${@:2}")
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOLMEN_SANITIZE=ON) ;;
  tsan) dir=build-tsan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOLMEN_TSAN=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOLMEN_FUZZ=ON
                              -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16) ;;
  *) echo "usage: $0 [release|asan|tsan|fuzz] [ninja targets...]" >&2; exit 2 ;;
esac
# ccache keys on paths relative to the checkout, so clones in other folders share one cache.
# Preprocessor mode only: its key is the preprocessed text itself, so a header that differs
# between two checkouts can never be taken for the other's (direct mode once returned an object
# built against another worktree's older header).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1 CCACHE_NODIRECT=1
read -ra ninja_flags <<<"${NINJA_FLAGS:-}"
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
ninja -C "$dir" "${ninja_flags[@]}" "${targets[@]}"
