#include "server/lease_apply.h"

#include <string>

namespace dolmen::server {
namespace {

bool IsLeaseRequestError(Code code) {
  return code == Code::kLeaseNotFound || code == Code::kLeaseExists ||
         code == Code::kLeaseTtlTooLarge;
}

Status StorageFailed(const LeaseApplyContext& ctx, Status s) {
  *ctx.storage_failed = true;
  return s;
}

}  // namespace

Result<etcdserverpb::LeaseGrantResponse> ApplyLeaseGrant(const LeaseApplyContext& ctx,
                                                         const etcdserverpb::LeaseGrantRequest& r) {
  auto txn = ctx.store->BatchTxn();
  if (!txn.ok()) return StorageFailed(ctx, txn.status());
  auto ttl = ctx.lessor->Grant(LeaseId(r.id()), r.ttl(), ctx.clock->Now(), *txn);
  if (!ttl.ok()) {
    if (IsLeaseRequestError(ttl.status().code())) return ttl.status();
    return StorageFailed(ctx, ttl.status());
  }
  etcdserverpb::LeaseGrantResponse out;
  out.set_id(r.id());
  out.set_ttl(*ttl);
  out.mutable_header()->set_revision(ctx.store->CurrentRevision().value());
  return out;
}

Result<etcdserverpb::LeaseRevokeResponse> ApplyLeaseRevoke(
    const LeaseApplyContext& ctx, const etcdserverpb::LeaseRevokeRequest& r) {
  const LeaseId id(r.id());
  ASSIGN_OR_RETURN(std::vector<std::string> keys, ctx.lessor->Keys(id));
  if (!keys.empty()) {
    auto write = ctx.store->BeginWrite();
    for (const std::string& key : keys) {
      auto deleted = write->DeleteRange(key, "");
      if (!deleted.ok()) return StorageFailed(ctx, deleted.status());
    }
    if (ctx.event_sink != nullptr) {
      ctx.event_sink->insert(ctx.event_sink->end(), write->Events().begin(), write->Events().end());
    }
    write->End();
  }
  // After the mvcc txn has ended (BatchTxn must not overlap it), in the same backend txn.
  auto txn = ctx.store->BatchTxn();
  if (!txn.ok()) return StorageFailed(ctx, txn.status());
  Status revoked = ctx.lessor->Revoke(id, *txn);
  if (!revoked.ok()) return StorageFailed(ctx, revoked);
  etcdserverpb::LeaseRevokeResponse out;
  out.mutable_header()->set_revision(ctx.store->CurrentRevision().value());
  return out;
}

}  // namespace dolmen::server
