#include "backend/backend.h"

namespace dolmen::backend {

Status ReplaceContents(ReadTxn& source, WriteTxn& target) {
  ASSIGN_OR_RETURN(std::vector<std::string> old_buckets, target.Buckets());
  for (const std::string& bucket : old_buckets) RETURN_IF_ERROR(target.ClearBucket(bucket));
  ASSIGN_OR_RETURN(std::vector<std::string> buckets, source.Buckets());
  for (const std::string& bucket : buckets) {
    Status put;
    RETURN_IF_ERROR(source.Scan(bucket, "", "", [&](std::string_view k, std::string_view v) {
      put = target.Put(bucket, k, v);
      return put.ok();
    }));
    RETURN_IF_ERROR(put);
  }
  return OkStatus();
}

}  // namespace dolmen::backend
