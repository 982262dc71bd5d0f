// libFuzzer target: a WAL segment as read back at start-up (scan, then rebuild the log). Bytes
// on disk can be anything after a bad disk or a partial write: the only allowed outcome is a
// Status, never a crash, a hang or an out-of-bounds read.
#include <cstddef>
#include <cstdint>

#include "wal/decode_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dolmen::wal::FuzzDecodeSegment({reinterpret_cast<const char*>(data), size}).IgnoreError();
  return 0;
}
