#include "wal/decode_fuzz.h"

#include "wal/log_builder.h"
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

}  // namespace dolmen::wal
