#include "server/auth_checks.h"

namespace dolmen::server {
namespace {

Status CheckOps(const auth::AuthStore& store, const auth::AuthInfo& who,
                const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops) {
  for (const auto& op : ops) {
    switch (op.request_case()) {
      case etcdserverpb::RequestOp::kRequestRange:
        RETURN_IF_ERROR(
            store.CheckRange(who, op.request_range().key(), op.request_range().range_end()));
        break;
      case etcdserverpb::RequestOp::kRequestPut:
        RETURN_IF_ERROR(store.CheckPut(who, op.request_put().key()));
        break;
      case etcdserverpb::RequestOp::kRequestDeleteRange: {
        const auto& d = op.request_delete_range();
        if (d.prev_kv()) RETURN_IF_ERROR(store.CheckRange(who, d.key(), d.range_end()));
        RETURN_IF_ERROR(store.CheckDeleteRange(who, d.key(), d.range_end()));
        break;
      }
      case etcdserverpb::RequestOp::kRequestTxn:
        // etcd 3.4 has no nested txns; checking them like the outer one is the only safe rule.
        RETURN_IF_ERROR(CheckTxnPermitted(store, who, op.request_txn()));
        break;
      case etcdserverpb::RequestOp::REQUEST_NOT_SET:
        break;
    }
  }
  return OkStatus();
}

}  // namespace

Status CheckTxnPermitted(const auth::AuthStore& store, const auth::AuthInfo& who,
                         const etcdserverpb::TxnRequest& r) {
  for (const auto& c : r.compare()) RETURN_IF_ERROR(store.CheckRange(who, c.key(), c.range_end()));
  RETURN_IF_ERROR(CheckOps(store, who, r.success()));
  return CheckOps(store, who, r.failure());
}

}  // namespace dolmen::server
