#include "backend/backend.h"
#include "base/crc32c.h"

namespace dolmen::backend {

Result<uint32_t> HashContents(ReadTxn& txn, const HashSkip& skip) {
  ASSIGN_OR_RETURN(std::vector<std::string> buckets, txn.Buckets());
  uint32_t crc = 0;
  for (const std::string& bucket : buckets) {
    crc = crc32c::Extend(crc, bucket.data(), bucket.size());
    RETURN_IF_ERROR(txn.Scan(bucket, "", "", [&](std::string_view key, std::string_view value) {
      if (skip && skip(bucket, key)) return true;
      crc = crc32c::Extend(crc, key.data(), key.size());
      crc = crc32c::Extend(crc, value.data(), value.size());
      return true;
    }));
  }
  return crc;
}

}  // namespace dolmen::backend
