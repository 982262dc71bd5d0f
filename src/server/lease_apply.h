// Applying the two logged lease requests, LeaseGrant and LeaseRevoke. Called by Applier::Apply
// on the apply thread, in log order, on every member alike: what is decided here (the TTL
// granted, which keys a revoke deletes) must depend on nothing but the log and the store.
#pragma once

#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/lessor.h"
#include "mvcc/store.h"

namespace dolmen::server {

struct LeaseApplyContext {
  mvcc::Store* store = nullptr;
  lease::Lessor* lessor = nullptr;
  const Clock* clock = nullptr;  // only for the expiry of a lease granted on the leader
  std::vector<mvcc::Event>* event_sink = nullptr;  // may be null
  // Set when the store or backend failed underneath (not a request error): the member stops.
  bool* storage_failed = nullptr;
};

// etcd's errors (lease exists, TTL too large, id 0) come back as the status with nothing
// changed. The record is written in the batch's backend txn.
Result<etcdserverpb::LeaseGrantResponse> ApplyLeaseGrant(const LeaseApplyContext& ctx,
                                                         const etcdserverpb::LeaseGrantRequest& r);

// Deletes every attached key in ONE mvcc txn (one revision, keys in sorted order, so every
// member hashes alike) and the lease record in the same batch backend txn, so a crash keeps
// either both or neither. "requested lease not found" if absent.
Result<etcdserverpb::LeaseRevokeResponse> ApplyLeaseRevoke(
    const LeaseApplyContext& ctx, const etcdserverpb::LeaseRevokeRequest& r);

}  // namespace dolmen::server
