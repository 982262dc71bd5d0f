// Reading one segment file and naming segments.
//
// ScanSegment decides, for the bytes after the last good record, between the three cases the
// WAL must tell apart (docs/wal.md, "Repair versus corruption"):
// - nothing, or only zeros: the normal end of the log;
// - a damaged record that nothing valid follows, in the last segment: a torn write from a crash
//   before the data was synced; the caller truncates it away and notes a repair;
// - anything else (a damaged record followed by a valid one, or any damage in a segment that is
//   not the last): corruption, reported with the file and byte offset, never skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "wal/record.h"

namespace dolmen::wal {

// "%016x-%016x.wal" of sequence and first index, as etcd names its segments.
std::string SegmentName(uint64_t sequence, uint64_t first_index);
// Parses a name made by SegmentName; nullopt for anything else.
std::optional<SegmentHeader> ParseSegmentName(std::string_view name);

struct SegmentScan {
  enum class Tail {
    kClean,  // the records fill the file exactly
    kZeros,  // zero bytes follow the last record
    kTorn,   // the last segment only: a damaged record that nothing valid follows, or one
             // holding a whole zero disk sector (a write torn by a power cut; what follows it
             // was never synced)
  };
  SegmentHeader header;
  std::vector<RawRecord> records;  // payloads point into the scanned bytes
  uint64_t valid_end = 0;          // offset just after the last good record
  Tail tail = Tail::kClean;
  std::string tail_note;  // for kTorn: what was found at valid_end
};

// `path` only names the file in messages. Returns kCorruption ("wal segment <path> offset N:
// ...") if the segment is damaged in a way a crash cannot explain.
Result<SegmentScan> ScanSegment(std::string_view data, const std::string& path, bool is_last);

}  // namespace dolmen::wal
