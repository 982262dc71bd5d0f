#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite: the release build through ctest
# (unit, simulation, integration, smoke; the layering and thread-safety checks are unit tests),
# the ASan+UBSan build through ctest, the ThreadSanitizer build of the tests where threads meet
# (scripts/tsan.sh), and the fuzzers for a bounded time (scripts/fuzz.sh). docs/testing.md.
# Opt-outs: DOLMEN_SKIP_ASAN=1, DOLMEN_TSAN=0, DOLMEN_FUZZ=0.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/install-deps.sh"
jobs=$(nproc)

echo "== release build"
scripts/build.sh release
echo "== release tests"
(cd build && ctest -j"$jobs" --output-on-failure --timeout 600)

if [ "${DOLMEN_SKIP_ASAN:-0}" != 1 ]; then
  echo "== asan+ubsan build"
  scripts/build.sh asan
  echo "== asan+ubsan tests"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # etcd_reference tests run etcd on both sides (they check the tests themselves): once is enough.
  # The thread-safety check compiles the sources with clang's -Wthread-safety whatever the build:
  # its verdict is the release pass's.
  # The container test (tests/container) is not registered in this build at all: the image takes
  # the Release binary, so it runs in the release pass only.
  (cd build-asan && ctest -j"$jobs" --output-on-failure --timeout 900 -LE 'smoke|etcd_reference|thread_safety')
fi

if [ "${DOLMEN_TSAN:-1}" != 0 ]; then
  echo "== tsan (the tests where threads meet)"
  scripts/tsan.sh
fi

# The fuzz build compiles only what the fuzzers drive (tests/fuzz/CMakeLists.txt), so it fits
# the budget even with a cold ccache (docs/testing.md has the times).
if [ "${DOLMEN_FUZZ:-1}" != 0 ]; then
  echo "== fuzz (clang libFuzzer, bounded)"
  scripts/fuzz.sh
fi
