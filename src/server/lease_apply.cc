#include "server/lease_apply.h"

#include <cmath>
#include <string>

#include "log/log.h"

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

int64_t MinLeaseTtlSeconds(const DriverOptions& d) {
  auto ms = static_cast<double>((3 * d.election_ticks) / 2) *
            static_cast<double>(d.tick_interval.count());
  return static_cast<int64_t>(std::ceil(ms / 1000.0));
}

std::chrono::milliseconds PromoteExtension(const DriverOptions& d) {
  return d.tick_interval * d.election_ticks;
}

Status LoadLeases(lease::Lessor* lessor, backend::Backend* backend, const mvcc::Store* store) {
  {
    ASSIGN_OR_RETURN(auto txn, backend->BeginRead());
    RETURN_IF_ERROR(lessor->Load(txn.get()));
  }
  mvcc::RangeOptions all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  all.keys_only = true;
  ASSIGN_OR_RETURN(mvcc::RangeResult live, store->Range(all));
  for (const mvcc::KeyValue& kv : live.kvs) {
    if (kv.lease.value() == 0) continue;
    // A key whose lease is gone cannot come from our apply path (revoke deletes the keys in
    // the same backend txn); like etcd, keep the key rather than refuse to start.
    if (!lessor->Attach(kv.lease, kv.key).ok()) {
      // etcd: "failed to attach a lease".
      log::Warn("a key names a lease that does not exist; keeping the key",
                {{"key", kv.key}, {"lease-id", log::Hex(static_cast<uint64_t>(kv.lease.value()))}});
    }
  }
  return OkStatus();
}

}  // namespace dolmen::server
