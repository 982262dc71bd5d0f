#include "wal/record.h"

#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace dolmen::wal {

bool IsKnownRecordType(uint8_t type) { return type >= 1 && type <= 4; }

void EncodeSegmentHeader(const SegmentHeader& header, std::string* out) {
  size_t start = out->size();
  out->append(kSegmentMagic, sizeof(kSegmentMagic));
  coding::PutFixed32(out, kFormatVersion);
  coding::PutFixed32(out, 0);  // reserved
  coding::PutFixed64(out, header.sequence);
  coding::PutFixed64(out, header.first_index);
  coding::PutFixed32(out, crc32c::Value(out->data() + start, 32));
  coding::PutFixed32(out, 0);  // reserved
  CHECK_EQ(out->size() - start, kSegmentHeaderBytes);
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderBytes) {
    return Corruption("segment shorter than its " + std::to_string(kSegmentHeaderBytes) +
                      "-byte header");
  }
  const char* p = bytes.data();
  if (std::memcmp(p, kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return Corruption("bad magic: not a dolmen WAL segment");
  }
  uint32_t version = coding::DecodeFixed32(p + 8);
  if (version != kFormatVersion) {
    return Corruption("unsupported WAL format version " + std::to_string(version) +
                      " (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  if (coding::DecodeFixed32(p + 32) != crc32c::Value(p, 32)) {
    return Corruption("segment header checksum mismatch");
  }
  if (coding::DecodeFixed32(p + 12) != 0 || coding::DecodeFixed32(p + 36) != 0) {
    return Corruption("segment header reserved bytes are not zero");
  }
  SegmentHeader header;
  header.sequence = coding::DecodeFixed64(p + 16);
  header.first_index = coding::DecodeFixed64(p + 24);
  return header;
}

void EncodeRecord(RecordType type, std::string_view payload, std::string* out) {
  CHECK_LE(payload.size(), kMaxRecordPayloadBytes);
  auto type_byte = static_cast<char>(type);
  uint32_t payload_crc =
      crc32c::Extend(crc32c::Value(&type_byte, 1), payload.data(), payload.size());
  size_t start = out->size();
  coding::PutFixed32(out, payload_crc);
  coding::PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(type_byte);
  out->append(3, '\0');  // reserved
  coding::PutFixed32(out, crc32c::Value(out->data() + start, 12));
  out->append(payload.data(), payload.size());
  out->append(FramedRecordBytes(payload.size()) - kRecordHeaderBytes - payload.size(), '\0');
}

std::string_view RecordProblemName(RecordProblem problem) {
  switch (problem) {
    case RecordProblem::kNone:
      return "ok";
    case RecordProblem::kHeaderIncomplete:
      return "incomplete record header";
    case RecordProblem::kBadHeader:
      return "bad record header";
    case RecordProblem::kIncomplete:
      return "record runs past the end of the segment";
    case RecordProblem::kBadPayload:
      return "record payload checksum mismatch";
  }
  return "unknown";
}

RecordParse ParseRecordAt(std::string_view data, uint64_t offset) {
  RecordParse parse;
  if (offset > data.size() || data.size() - offset < kRecordHeaderBytes) {
    parse.problem = RecordProblem::kHeaderIncomplete;
    return parse;
  }
  const char* h = data.data() + offset;
  uint32_t payload_crc = coding::DecodeFixed32(h);
  uint32_t length = coding::DecodeFixed32(h + 4);
  auto type = static_cast<uint8_t>(h[8]);
  bool reserved_zero = h[9] == 0 && h[10] == 0 && h[11] == 0;
  if (coding::DecodeFixed32(h + 12) != crc32c::Value(h, 12) || !reserved_zero ||
      !IsKnownRecordType(type) || length > kMaxRecordPayloadBytes) {
    parse.problem = RecordProblem::kBadHeader;
    return parse;
  }
  uint64_t framed = FramedRecordBytes(length);
  parse.end = offset + framed;
  if (data.size() - offset < framed) {
    parse.problem = RecordProblem::kIncomplete;
    return parse;
  }
  std::string_view payload = data.substr(offset + kRecordHeaderBytes, length);
  std::string_view padding =
      data.substr(offset + kRecordHeaderBytes + length, framed - kRecordHeaderBytes - length);
  bool padding_zero = padding.find_first_not_of('\0') == std::string_view::npos;
  if (crc32c::Extend(crc32c::Value(h + 8, 1), payload.data(), payload.size()) != payload_crc ||
      !padding_zero) {
    parse.problem = RecordProblem::kBadPayload;
    return parse;
  }
  parse.record = RawRecord{static_cast<RecordType>(type), payload, offset};
  return parse;
}

}  // namespace dolmen::wal
