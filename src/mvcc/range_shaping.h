// The part of etcd's Range that happens after versions are read from storage (etcd does it in
// the server's apply layer): min/max revision filters, sorting, the limit and `more`, keys_only.
#pragma once

#include <cstdint>
#include <vector>

#include "mvcc/kv.h"

namespace dolmen::mvcc {

// How many versions to read from storage for `opts` (INT64_MAX = all in range). Sorting and
// filtering need everything; otherwise one past the limit, to learn whether there is more;
// count_only needs none.
int64_t VersionsToRead(const RangeOptions& opts);

// Filters, sorts, applies the limit (setting *more) and keys_only to versions read in key order.
void ShapeRange(const RangeOptions& opts, std::vector<KeyValue>* kvs, bool* more);

}  // namespace dolmen::mvcc
