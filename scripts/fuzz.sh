#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz/, writes their seeds, and
# runs each for a bounded time. A crash, leak, sanitizer report or timeout fails the run; the
# input that caused it is kept under build-fuzz/artifacts/ and the line to replay it is printed.
#   scripts/fuzz.sh [SECONDS]    seconds per fuzzer (default: DOLMEN_FUZZ_SECONDS or 20)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds=${1:-${DOLMEN_FUZZ_SECONDS:-20}}
fuzzers=(wal_segment_fuzzer peer_stream_fuzzer apply_fuzzer snapshot_image_fuzzer)

scripts/build.sh fuzz dolmen_fuzzers
bin="$root/build-fuzz/tests/fuzz"
work=$(mktemp -d /tmp/dolmen-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$bin/fuzz_seeds" "$work/seeds"
artifacts="$root/build-fuzz/artifacts"
mkdir -p "$artifacts"

failed=0
for f in "${fuzzers[@]}"; do
  mkdir -p "$work/corpus/$f"
  rm -f "$artifacts/$f-"*
  echo "== fuzz $f for ${seconds}s"
  # -timeout: one input running this long is a hang; -rss_limit_mb bounds memory per process.
  if ! "$bin/$f" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$f-" "$work/corpus/$f" "$work/seeds/$f" \
      >"$work/$f.log" 2>&1; then
    failed=1
    tail -n 60 "$work/$f.log"
    for a in "$artifacts/$f-"*; do
      [ -e "$a" ] && echo "replay: $bin/$f $a"
    done
  else
    # A fuzzer that ran almost nothing proved nothing.
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$f.log")
    echo "$f: ${runs:-0} inputs"
    if [ "${runs:-0}" -lt 1000 ]; then
      failed=1
      echo "$f ran fewer than 1000 inputs" >&2
      tail -n 20 "$work/$f.log"
    fi
  fi
done
if [ "$failed" != 0 ]; then
  echo "fuzz: FAILED" >&2
  exit 1
fi
echo "fuzz: ${#fuzzers[@]} fuzzers ran ${seconds}s each without a finding"
