// Fuzz entry point for the WAL decoder: runs the segment scanner and the log rebuild over
// arbitrary bytes, exactly as Wal::Open would over one (last) segment. It must never crash,
// hang or read out of bounds, only return a Status. Used by the unit tests' mutation runs and
// by the libFuzzer target tests/fuzz/wal_segment_fuzzer.cc.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace dolmen::wal {

Status FuzzDecodeSegment(std::string_view data);

// A valid segment (metadata, five entries, a snapshot record, a hard state) to start mutations
// from: random bytes alone almost never get past the segment magic.
std::string ExampleSegment();

}  // namespace dolmen::wal
