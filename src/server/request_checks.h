// Validation done before a request is proposed, so a malformed request never reaches the log.
// The rules and their order are etcd's (its v3rpc key checks), because clients match on the
// resulting error: an empty key, too many txn operations, a txn writing one key twice.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace dolmen::server {

Status CheckRange(const etcdserverpb::RangeRequest& r);
Status CheckPut(const etcdserverpb::PutRequest& r);
Status CheckDeleteRange(const etcdserverpb::DeleteRangeRequest& r);
// Bounds the number of compares and of operations per branch (recursively), requires keys,
// and refuses a txn whose branches put a key twice or put a key that a delete in the same
// branch also covers.
Status CheckTxn(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops);

// True when a txn only reads: it can then be served without going through the log.
bool IsReadOnly(const etcdserverpb::TxnRequest& r);
// True when every range in a read-only txn asks for a serializable read (etcd's rule for
// serving a txn without a read barrier).
bool IsSerializable(const etcdserverpb::TxnRequest& r);

}  // namespace dolmen::server
