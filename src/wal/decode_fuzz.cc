#include "wal/decode_fuzz.h"

#include "wal/log_builder.h"
#include "wal/payload.h"
#include "wal/record.h"
#include "wal/segment.h"

namespace dolmen::wal {

Status FuzzDecodeSegment(std::string_view data) {
  const std::string path = "fuzz-input";
  ASSIGN_OR_RETURN(SegmentScan scan, ScanSegment(data, path, /*is_last=*/true));
  LogBuilder builder;
  std::optional<std::string> metadata;
  for (const RawRecord& record : scan.records) {
    RETURN_IF_ERROR(ApplyRecord(record, path, &builder, &metadata));
  }
  return builder.Finish(/*head_released=*/false);
}

std::string ExampleSegment() {
  std::string bytes;
  EncodeSegmentHeader({0, 1}, &bytes);
  EncodeRecord(RecordType::kMetadata, "meta", &bytes);
  std::string payload;
  for (uint64_t i = 1; i <= 5; ++i) {
    payload.clear();
    EncodeEntry({Term(1), Index(i), raft::EntryType::kNormal, "data"}, &payload);
    EncodeRecord(RecordType::kEntry, payload, &bytes);
  }
  payload.clear();
  raft::SnapshotMetadata meta;
  meta.index = Index(3);
  meta.term = Term(1);
  meta.conf_state.voters = {MemberId(1)};
  EncodeSnapshot(meta, &payload);
  EncodeRecord(RecordType::kSnapshot, payload, &bytes);
  payload.clear();
  EncodeHardState({Term(1), MemberId(1), Index(5)}, &payload);
  EncodeRecord(RecordType::kHardState, payload, &bytes);
  return bytes;
}

}  // namespace dolmen::wal
