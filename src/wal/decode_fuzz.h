// Fuzz entry point for the WAL decoder: runs the segment scanner and the log rebuild over
// arbitrary bytes, exactly as Wal::Open would over one (last) segment. It must never crash,
// hang or read out of bounds, only return a Status. A libFuzzer target is a one-line wrapper:
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
//     dolmen::wal::FuzzDecodeSegment({reinterpret_cast<const char*>(d), n}).IgnoreError();
//     return 0;
//   }
#pragma once

#include <string_view>

#include "base/status.h"

namespace dolmen::wal {

Status FuzzDecodeSegment(std::string_view data);

}  // namespace dolmen::wal
