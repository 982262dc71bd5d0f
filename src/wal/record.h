// Byte framing of WAL segments: the segment header and the checksummed record. The format is
// specified in docs/formats/wal.md; change the two together and bump kFormatVersion.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace dolmen::wal {

inline constexpr char kSegmentMagic[8] = {'D', 'O', 'L', 'M', 'N', 'W', 'A', 'L'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 40;
inline constexpr size_t kRecordHeaderBytes = 16;
// Records start at multiples of this, so a resync scan only looks at aligned offsets.
inline constexpr size_t kRecordAlignment = 8;
// Larger payloads are refused on write and treated as damage on read.
inline constexpr uint32_t kMaxRecordPayloadBytes = 1u << 30;

enum class RecordType : uint8_t {
  kMetadata = 1,   // opaque bytes given at Create; first record of every segment
  kEntry = 2,      // one raft::Entry
  kHardState = 3,  // raft::HardState
  kSnapshot = 4,   // raft::SnapshotMetadata: entries up to its index are in a snapshot
};
bool IsKnownRecordType(uint8_t type);

struct SegmentHeader {
  uint64_t sequence = 0;
  uint64_t first_index = 0;  // last log index + 1 when the segment was started
};

void EncodeSegmentHeader(const SegmentHeader& header, std::string* out);
// Error text (no file/offset) if `bytes` (at least kSegmentHeaderBytes) is not a valid header.
Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes);

// Appends one framed record (header, payload, zero padding to kRecordAlignment) to *out.
void EncodeRecord(RecordType type, std::string_view payload, std::string* out);

// Bytes a record with this payload occupies on disk.
inline uint64_t FramedRecordBytes(uint64_t payload_bytes) {
  uint64_t n = kRecordHeaderBytes + payload_bytes;
  return (n + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
}

// One decoded record; `payload` points into the segment's bytes.
struct RawRecord {
  RecordType type = RecordType::kMetadata;
  std::string_view payload;
  uint64_t offset = 0;  // where the record starts in its segment
};

// Why a record at some offset could not be read.
enum class RecordProblem {
  kNone,
  kHeaderIncomplete,  // fewer than kRecordHeaderBytes left
  kBadHeader,         // header checksum, reserved bytes or type wrong: the length is not trusted
  kIncomplete,        // header valid, but the record runs past the end of the data
  kBadPayload,        // header valid, record complete, payload checksum or padding wrong
};
std::string_view RecordProblemName(RecordProblem problem);

struct RecordParse {
  RecordProblem problem = RecordProblem::kNone;
  RawRecord record;  // valid when problem == kNone
  uint64_t end = 0;  // offset after the record (incl. padding); valid unless kHeaderIncomplete
                     // or kBadHeader
};

// Parses the record that starts at `offset` in `data`. Never reads outside `data`.
RecordParse ParseRecordAt(std::string_view data, uint64_t offset);

}  // namespace dolmen::wal
