// Applying the two logged lease requests, LeaseGrant and LeaseRevoke. Called by Applier::Apply
// on the apply thread, in log order, on every member alike: what is decided here (the TTL
// granted, which keys a revoke deletes) must depend on nothing but the log and the store.
#pragma once

#include <chrono>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/driver_options.h"

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

// etcd's minimum TTL: ceil(1.5 election timeouts) in whole seconds, with the election timeout
// as etcd computes it ((3 x election ticks) / 2 heartbeats). The lessor's min_ttl_seconds.
int64_t MinLeaseTtlSeconds(const DriverOptions& d);

// How long a newly promoted lessor extends every lease: one election timeout (etcd's
// Promote(electionTimeout)), the LeaseExpiryChecker's promote_extension.
std::chrono::milliseconds PromoteExtension(const DriverOptions& d);

// At open and after a snapshot install: the lessor's leases from the backend's bucket, then
// their keys from the store (attachments are not stored with the lease: each live key names
// its lease, as etcd rebuilds them when it restores the store). The log replayed after this
// keeps them in step through the apply path. Server::ReloadLeases and the simulator's member.
Status LoadLeases(lease::Lessor* lessor, backend::Backend* backend, const mvcc::Store* store);

}  // namespace dolmen::server
