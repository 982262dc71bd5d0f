#!/usr/bin/env bash
# Builds the unit tests where threads meet with ThreadSanitizer (build-tsan/, only these targets,
# so that a cold build stays small) and runs them. A data race, a lock-order inversion or a
# thread leak reported by TSan fails the run. docs/testing.md, "ThreadSanitizer".
#   scripts/tsan.sh [GTEST_FILTER]      all of them, or only the tests matching the filter
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
filter=${1:-*}

# The binaries (under build-tsan/). The apply thread, the hub's worker and the stream consumers
# meet in the watch tests; the apply thread, gRPC readers and the expiry loop in the lessor's.
# Not yet here (docs/testing.md, "ThreadSanitizer"): the server tests (driver, read pool,
# checkpoint syncer), whose inbox and read-pool locks are absl::Mutex, invisible to TSan with
# Debian's uninstrumented Abseil, and the transport test; each also triples the build.
tests=(
  src/watch/dolmen_watch_test
  src/lease/dolmen_lease_test
)
targets=()
for t in "${tests[@]}"; do targets+=("$(basename "$t")"); done
scripts/build.sh tsan "${targets[@]}"

# halt_on_error: the first report fails the binary; exitcode 66 tells a report from a test
# failure. The suppressions cover uninstrumented third-party code only (tests/tsan/README.md).
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$root/tests/tsan/suppressions.txt"
failed=0
for t in "${tests[@]}"; do
  echo "== tsan $t"
  start=$SECONDS
  # Bounded: a binary that hangs under TSan (5-15x slower) is a failure, not a stuck suite.
  if ! timeout --kill-after=10 900 "build-tsan/$t" --gtest_filter="$filter" --gtest_brief=1 \
      >"build-tsan/$(basename "$t").log" 2>&1; then
    failed=1
    grep -A40 -m3 'WARNING: ThreadSanitizer\|FAILED\|Failure' "build-tsan/$(basename "$t").log" |
      head -n 150 || tail -n 60 "build-tsan/$(basename "$t").log"
    echo "FAILED: $t (log: build-tsan/$(basename "$t").log)"
  fi
  echo "$t: $((SECONDS - start)) s"
done
if [ "$failed" != 0 ]; then
  echo "tsan: FAILED" >&2
  exit 1
fi
echo "tsan: ${#tests[@]} test binaries ran without a report"
