// The apply path: turns one logged request into changes of the MVCC store and the response the
// client gets. Runs only on the owner thread, in log order, for live requests and for entries
// replayed after a restart alike, so replay reproduces exactly what was acknowledged.
#pragma once

#include <variant>
#include <vector>

#include "auth/auth_store.h"
#include "auth/simple_tokens.h"
#include "base/clock.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "server/alarm_store.h"
#include "server/corruption_check.h"
#include "server/quota.h"

namespace dolmen::server {

using ApplyResponse = std::variant<
    std::monostate, etcdserverpb::PutResponse, etcdserverpb::DeleteRangeResponse,
    etcdserverpb::TxnResponse, etcdserverpb::CompactionResponse, etcdserverpb::LeaseGrantResponse,
    etcdserverpb::LeaseRevokeResponse, etcdserverpb::AlarmResponse,
    etcdserverpb::AuthEnableResponse, etcdserverpb::AuthDisableResponse,
    etcdserverpb::AuthenticateResponse, etcdserverpb::AuthUserAddResponse,
    etcdserverpb::AuthUserDeleteResponse, etcdserverpb::AuthUserChangePasswordResponse,
    etcdserverpb::AuthUserGrantRoleResponse, etcdserverpb::AuthUserRevokeRoleResponse,
    etcdserverpb::AuthRoleAddResponse, etcdserverpb::AuthRoleDeleteResponse,
    etcdserverpb::AuthRoleGrantPermissionResponse, etcdserverpb::AuthRoleRevokePermissionResponse>;

struct ApplyResult {
  Status status;
  ApplyResponse response;
};

// Converts between the wire messages and the store's types.
mvcc::RangeOptions ToRangeOptions(const etcdserverpb::RangeRequest& r);
void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out);
void ToRangeResponse(const mvcc::RangeResult& rr, bool keys_only, etcdserverpb::RangeResponse* out);

class Applier {
 public:
  explicit Applier(mvcc::Store* store) : store_(store) {}

  // Before the first Apply: the leases (without them every put with a lease is refused as
  // "lease not found"). The clock sets the expiry of a lease granted while primary.
  void set_leases(lease::Lessor* lessor, const Clock* clock) {
    lessor_ = lessor;
    clock_ = clock;
  }

  // Before the first Apply: the alarms (AlarmRequest entries fail without them; with a NOSPACE
  // alarm active, puts, txns with puts and lease grants fail with kNoSpace, as etcd's capped
  // applier) and, optionally, the quota checked at apply time. `exceeded` runs on the apply
  // thread when an applied request went past the quota while no NOSPACE alarm was active: the
  // member then raises one (etcd's applyEntryNormal).
  void set_alarms(AlarmStore* alarms, const Quota* quota, std::function<void()> exceeded) {
    alarms_ = alarms;
    quota_ = quota;
    quota_exceeded_ = std::move(exceeded);
  }

  // Before the first Apply, with the compaction hash check on: each compaction first records
  // the store's hash at the compaction revision here (docs/corruption.md).
  void set_compaction_hashes(CompactionHashes* hashes) { compaction_hashes_ = hashes; }

  // Before the first Apply: auth (docs/auth.md). Requests that carry an auth header are checked
  // against the store (etcd's authApplierV3); AuthRequest entries change it, and an
  // Authenticate issues its token in `tokens`. Without it AuthRequest entries fail.
  void set_auth(auth::AuthStore* store, auth::SimpleTokens* tokens) {
    auth_ = store;
    tokens_ = tokens;
  }

  // When set, every change applied is appended here (in revision order) for watchers.
  void set_event_sink(std::vector<mvcc::Event>* sink) { event_sink_ = sink; }

  // Set once the store failed underneath an apply (I/O error, full map, unreadable value).
  // The store must then be reopened and the log replayed; the member stops.
  bool storage_failed() const { return storage_failed_; }

  // Applies a request decoded from a log entry. Errors etcd decides at apply time (a missing
  // lease, ignore_value on a missing key, compaction bounds) come back in status with the
  // store unchanged.
  // `index` is the entry's log index (an Authenticate's token names it).
  ApplyResult Apply(const internal::InternalRequest& request, Index index = Index(0));

  // A txn through a write txn of the store: the apply thread only.
  Result<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  // A txn of ranges only (IsReadOnly; CHECKed), which needs no log entry: any thread, beside
  // the apply thread. One read view of the store serves all its compares and ranges, so they
  // see one revision, which the response header reports.
  static Result<etcdserverpb::TxnResponse> ReadOnlyTxn(mvcc::Store* store,
                                                       const etcdserverpb::TxnRequest& request);

 private:
  class TxnRun;

  Result<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  Result<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  Result<etcdserverpb::CompactionResponse> Compact(const etcdserverpb::CompactionRequest& request);
  Result<etcdserverpb::AlarmResponse> Alarm(const etcdserverpb::AlarmRequest& request);
  // Auth (auth_apply.cc): etcd's permission checks of a request with an auth header, before it
  // changes anything; and the auth changes themselves.
  Status CheckPermitted(const internal::InternalRequest& request) const;
  Status CheckLeaseKeysWritable(const auth::AuthInfo& who, LeaseId lease) const;
  ApplyResult ApplyAuth(const internal::InternalRequest& request, Index index);
  // etcd's corrupt applier: with a CORRUPT alarm active, the requests that change the store or
  // leases (put, delete, txn through the log, compaction, lease grant and revoke) fail with
  // "corrupt cluster" and change nothing. Alarms and membership still apply; reads, which
  // need no log entry, are still served.
  bool RefusedAsCorrupt(const internal::InternalRequest& request, ApplyResult* out) const;
  // The NOSPACE gate around a request that adds data (cost > 0): refused while the alarm is
  // active; otherwise applied by `apply`, and answered kNoSpace if it did not fit.
  void ApplyWithQuota(uint64_t cost, ApplyResult* out, const std::function<void()>& apply);

  mvcc::Store* store_;
  lease::Lessor* lessor_ = nullptr;
  const Clock* clock_ = nullptr;
  std::vector<mvcc::Event>* event_sink_ = nullptr;
  AlarmStore* alarms_ = nullptr;
  const Quota* quota_ = nullptr;
  std::function<void()> quota_exceeded_;
  CompactionHashes* compaction_hashes_ = nullptr;
  auth::AuthStore* auth_ = nullptr;
  auth::SimpleTokens* tokens_ = nullptr;
  bool storage_failed_ = false;
};

}  // namespace dolmen::server
