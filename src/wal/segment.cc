#include "wal/segment.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace dolmen::wal {
namespace {

constexpr size_t kNameLength = 16 + 1 + 16 + 4;

// The preallocated tail of a segment is tens of MiB of zeros, checked at every start: memcmp
// against a zero block runs at memory speed, a byte-by-byte search several times slower.
bool AllZero(std::string_view bytes) {
  static constexpr char kZeros[4096] = {};
  while (bytes.size() >= sizeof(kZeros)) {
    if (std::memcmp(bytes.data(), kZeros, sizeof(kZeros)) != 0) return false;
    bytes.remove_prefix(sizeof(kZeros));
  }
  return std::memcmp(bytes.data(), kZeros, bytes.size()) == 0;
}

// First offset >= `from` (aligned) where a complete, valid record starts, if any. Only used
// after a damaged record, so its cost (a 12-byte checksum per aligned offset) is paid on the
// error path alone.
std::optional<uint64_t> FindValidRecord(std::string_view data, uint64_t from) {
  from = (from + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
  for (uint64_t q = from; q + kRecordHeaderBytes <= data.size(); q += kRecordAlignment) {
    if (ParseRecordAt(data, q).problem == RecordProblem::kNone) return q;
  }
  return std::nullopt;
}

// Disks write whole sectors; the smallest in use is 512 bytes.
constexpr uint64_t kDiskSectorBytes = 512;

// Whether the damaged bytes [from, to) of `data` show a disk sector whose write was lost: the
// part of some sector that lies in the range is zeros and runs to the sector's end, and is
// either the whole sector or, for the sector where the damage starts (its beginning holds the
// end of the last good record, written and synced before), at least a record header. The
// zeros are the segment's preallocated space, which no record header ever is.
bool ShowsALostSector(std::string_view data, uint64_t from, uint64_t to) {
  to = std::min<uint64_t>(to, data.size());
  for (uint64_t s = from / kDiskSectorBytes * kDiskSectorBytes; s + kDiskSectorBytes <= to;
       s += kDiskSectorBytes) {
    const uint64_t start = std::max(s, from);
    const uint64_t length = s + kDiskSectorBytes - start;
    if ((start == s || length >= kRecordHeaderBytes) && AllZero(data.substr(start, length))) {
      return true;
    }
  }
  return false;
}

Status SegmentCorruption(const std::string& path, uint64_t offset, const std::string& what) {
  return Corruption("wal segment " + path + " offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

std::string SegmentName(uint64_t sequence, uint64_t first_index) {
  char buf[kNameLength + 1];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64 "-%016" PRIx64 ".wal", sequence, first_index);
  return buf;
}

std::optional<SegmentHeader> ParseSegmentName(std::string_view name) {
  if (name.size() != kNameLength || name[16] != '-' || name.substr(33) != ".wal") {
    return std::nullopt;
  }
  auto parse_hex = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t v = 0;
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else {
        return std::nullopt;
      }
      v = (v << 4) | static_cast<uint64_t>(d);
    }
    return v;
  };
  auto seq = parse_hex(name.substr(0, 16));
  auto first = parse_hex(name.substr(17, 16));
  if (!seq || !first) return std::nullopt;
  return SegmentHeader{*seq, *first};
}

Result<SegmentScan> ScanSegment(std::string_view data, const std::string& path, bool is_last) {
  SegmentScan scan;
  auto header = DecodeSegmentHeader(data);
  if (!header.ok()) return SegmentCorruption(path, 0, header.status().message());
  scan.header = *header;

  uint64_t offset = kSegmentHeaderBytes;
  RecordParse parse;
  while (offset < data.size()) {
    parse = ParseRecordAt(data, offset);
    if (parse.problem != RecordProblem::kNone) break;
    scan.records.push_back(parse.record);
    offset = parse.end;
  }
  scan.valid_end = offset;
  if (offset == data.size()) return scan;

  std::string_view rest = data.substr(offset);
  if (is_last && AllZero(rest)) {
    // Space the file system extended but never filled, e.g. a crash after the size reached
    // the disk and before the data did. Zeros can never be a record: a header checksum of
    // zero bytes is not zero.
    scan.tail = SegmentScan::Tail::kZeros;
    return scan;
  }
  std::string what(RecordProblemName(parse.problem));
  // Where the next record would start if this one's header can be trusted; otherwise search
  // from the next aligned offset.
  bool header_trusted =
      parse.problem == RecordProblem::kBadPayload || parse.problem == RecordProblem::kIncomplete;
  uint64_t search_from = header_trusted ? parse.end : offset + kRecordAlignment;
  if (auto next = FindValidRecord(data, search_from)) {
    // A power cut can leave a later unsynced sector on disk and an earlier one as the
    // preallocated zeros: page write-back is not ordered. In the last segment, damage up to the
    // next valid record that shows such a lost sector is taken for a torn write (etcd's reader
    // looks for zero sectors in the damaged record the same way), and the log is cut there:
    // the records after it were written later, so no sync covered them and none was
    // acknowledged. Damage without a lost sector stays corruption.
    if (is_last && ShowsALostSector(data, offset, *next)) {
      scan.tail = SegmentScan::Tail::kTorn;
      scan.tail_note = what + " where a disk sector's write was lost (torn by a power cut), and " +
                       "unsynced records after it";
      return scan;
    }
    return SegmentCorruption(
        path, offset, what + ", followed by a valid record at offset " + std::to_string(*next));
  }
  if (!is_last) {
    return SegmentCorruption(path, offset, what + " in a segment that is not the last");
  }
  scan.tail = SegmentScan::Tail::kTorn;
  scan.tail_note = what;
  return scan;
}

}  // namespace dolmen::wal
