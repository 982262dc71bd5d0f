#include "server/applier.h"

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "log/log.h"
#include "server/lease_apply.h"
#include "server/request_checks.h"

namespace dolmen::server {
namespace {

mvcc::SortOrder ToSortOrder(etcdserverpb::RangeRequest::SortOrder o) {
  switch (o) {
    case etcdserverpb::RangeRequest::ASCEND:
      return mvcc::SortOrder::kAscend;
    case etcdserverpb::RangeRequest::DESCEND:
      return mvcc::SortOrder::kDescend;
    default:
      return mvcc::SortOrder::kNone;
  }
}

mvcc::SortTarget ToSortTarget(etcdserverpb::RangeRequest::SortTarget t) {
  switch (t) {
    case etcdserverpb::RangeRequest::VERSION:
      return mvcc::SortTarget::kVersion;
    case etcdserverpb::RangeRequest::CREATE:
      return mvcc::SortTarget::kCreate;
    case etcdserverpb::RangeRequest::MOD:
      return mvcc::SortTarget::kMod;
    case etcdserverpb::RangeRequest::VALUE:
      return mvcc::SortTarget::kValue;
    default:
      return mvcc::SortTarget::kKey;
  }
}

Status LeaseNotFound() { return {Code::kLeaseNotFound, "requested lease not found"}; }
Status KeyNotFound() { return {Code::kKeyNotFound, "key not found"}; }

// A single-key read inside a write txn: the previous value of a key, if any.
Result<std::optional<mvcc::KeyValue>> ReadKey(mvcc::Store::WriteTxn* txn, const std::string& key) {
  mvcc::RangeOptions opts;
  opts.key = key;
  ASSIGN_OR_RETURN(mvcc::RangeResult rr, txn->Range(opts));
  if (rr.kvs.empty()) return std::optional<mvcc::KeyValue>();
  return std::optional<mvcc::KeyValue>(std::move(rr.kvs.front()));
}

int CompareInt(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

// One compare against one key's state; a missing key compares as all-zero fields.
bool CompareOne(const etcdserverpb::Compare& c, const mvcc::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case etcdserverpb::Compare::VALUE: {
      int cmp = kv.value.compare(c.value());
      result = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
      break;
    }
    case etcdserverpb::Compare::CREATE:
      result = CompareInt(kv.create_revision.value(), c.create_revision());
      break;
    case etcdserverpb::Compare::MOD:
      result = CompareInt(kv.mod_revision.value(), c.mod_revision());
      break;
    case etcdserverpb::Compare::VERSION:
      result = CompareInt(kv.version, c.version());
      break;
    case etcdserverpb::Compare::LEASE:
      result = CompareInt(kv.lease.value(), c.lease());
      break;
    default:
      break;
  }
  switch (c.result()) {
    case etcdserverpb::Compare::EQUAL:
      return result == 0;
    case etcdserverpb::Compare::NOT_EQUAL:
      return result != 0;
    case etcdserverpb::Compare::GREATER:
      return result > 0;
    case etcdserverpb::Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

}  // namespace

mvcc::RangeOptions ToRangeOptions(const etcdserverpb::RangeRequest& r) {
  mvcc::RangeOptions o;
  o.key = r.key();
  o.range_end = r.range_end();
  o.limit = r.limit();
  o.revision = Revision(r.revision());
  o.sort_order = ToSortOrder(r.sort_order());
  o.sort_target = ToSortTarget(r.sort_target());
  o.keys_only = r.keys_only();
  o.count_only = r.count_only();
  o.min_mod_revision = Revision(r.min_mod_revision());
  o.max_mod_revision = Revision(r.max_mod_revision());
  o.min_create_revision = Revision(r.min_create_revision());
  o.max_create_revision = Revision(r.max_create_revision());
  return o;
}

void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision.value());
  out->set_mod_revision(kv.mod_revision.value());
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease.value());
}

void ToRangeResponse(const mvcc::RangeResult& rr, bool keys_only,
                     etcdserverpb::RangeResponse* out) {
  out->mutable_header()->set_revision(rr.revision.value());
  out->set_more(rr.more);
  out->set_count(rr.count);
  out->mutable_kvs()->Reserve(static_cast<int>(rr.kvs.size()));
  for (const auto& kv : rr.kvs) {
    auto* pkv = out->add_kvs();
    ToProto(kv, pkv);
    if (keys_only) pkv->clear_value();
  }
}

// One txn from compares to responses. All changes share one revision; reads inside see the
// txn's own earlier writes, as etcd's do.
class Applier::TxnRun {
 public:
  TxnRun(mvcc::Store* store, lease::Lessor* lessor, std::vector<mvcc::Event>* event_sink)
      : store_(store),
        lessor_(lessor),
        event_sink_(event_sink),
        begin_revision_(store->CurrentRevision()) {}

  // True when the store failed underneath the txn (not a request error): the store is then
  // unusable until reopened, and the member must stop.
  bool storage_failed() const { return storage_failed_; }

  Result<etcdserverpb::TxnResponse> Run(const etcdserverpb::TxnRequest& request) {
    txn_ = store_->BeginWrite();
    return RunOpen(request);
  }

  // A txn of ranges only (IsReadOnly), on a read view of the store instead of a write txn: any
  // thread, concurrently with the apply thread; every compare and range sees one revision.
  Result<etcdserverpb::TxnResponse> RunReadOnly(const etcdserverpb::TxnRequest& request) {
    read_ = store_->BeginRead();
    begin_revision_ = read_->revision();
    return RunOpen(request);
  }

 private:
  Result<etcdserverpb::TxnResponse> RunOpen(const etcdserverpb::TxnRequest& request) {
    // Decide every branch first, then validate the chosen ops, and only then write: an error
    // must leave the store untouched.
    std::vector<bool> path;
    if (Status s = DecidePath(request, &path); !s.ok()) return Finish(s);
    size_t cursor = 0;
    if (Status s = CheckChosen(request, path, &cursor); !s.ok()) return Finish(s);
    etcdserverpb::TxnResponse response;
    cursor = 0;
    if (Status s = ExecuteChosen(request, path, &cursor, &response); !s.ok()) {
      storage_failed_ = true;
      return Finish(s);
    }
    Revision after = begin_revision_;
    if (txn_ != nullptr) {
      if (event_sink_ != nullptr) {
        const auto& events = txn_->Events();
        event_sink_->insert(event_sink_->end(), events.begin(), events.end());
      }
      after = txn_->End();
      txn_.reset();
    }
    read_.reset();
    response.mutable_header()->set_revision(after.value());
    return response;
  }

  Result<etcdserverpb::TxnResponse> Finish(Status s) {
    if (txn_ != nullptr) txn_->End();
    txn_.reset();
    read_.reset();
    return s;
  }

  // Reads through whichever view this run holds.
  Result<mvcc::RangeResult> Range(const mvcc::RangeOptions& opts) {
    return read_ != nullptr ? read_->Range(opts) : txn_->Range(opts);
  }

  const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& Branch(
      const etcdserverpb::TxnRequest& r, bool succeeded) {
    return succeeded ? r.success() : r.failure();
  }

  bool EvaluateCompares(const etcdserverpb::TxnRequest& r) {
    for (const auto& c : r.compare()) {
      mvcc::RangeOptions opts;
      opts.key = c.key();
      opts.range_end = c.range_end();
      auto rr = Range(opts);
      if (!rr.ok()) return false;
      if (rr->kvs.empty()) {
        // A value cannot be compared with a key that does not exist: always false.
        if (c.target() == etcdserverpb::Compare::VALUE) return false;
        if (!CompareOne(c, mvcc::KeyValue{})) return false;
        continue;
      }
      for (const auto& kv : rr->kvs) {
        if (!CompareOne(c, kv)) return false;
      }
    }
    return true;
  }

  // Depth-first list of which branch each (nested) txn takes, in execution order.
  Status DecidePath(const etcdserverpb::TxnRequest& r, std::vector<bool>* path) {
    bool ok = EvaluateCompares(r);
    path->push_back(ok);
    for (const auto& op : Branch(r, ok)) {
      if (op.request_case() == etcdserverpb::RequestOp::kRequestTxn) {
        RETURN_IF_ERROR(DecidePath(op.request_txn(), path));
      }
    }
    return OkStatus();
  }

  Status CheckChosen(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                     size_t* cursor) {
    bool ok = path[(*cursor)++];
    for (const auto& op : Branch(r, ok)) {
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestTxn:
          RETURN_IF_ERROR(CheckChosen(op.request_txn(), path, cursor));
          break;
        case etcdserverpb::RequestOp::kRequestPut: {
          const auto& put = op.request_put();
          // The API refuses an empty key before proposing; an entry that holds one anyway (a
          // bug, another version, a damaged log) is refused here the same way on every member,
          // instead of failing the store and stopping each member on the same entry forever.
          RETURN_IF_ERROR(CheckPut(put));
          if (put.ignore_value() || put.ignore_lease()) {
            ASSIGN_OR_RETURN(auto prev, ReadKey(txn_.get(), put.key()));
            if (!prev) return KeyNotFound();
          }
          if (put.lease() != 0 && (lessor_ == nullptr || !lessor_->Exists(LeaseId(put.lease())))) {
            return LeaseNotFound();
          }
          break;
        }
        case etcdserverpb::RequestOp::kRequestRange: {
          int64_t rev = op.request_range().revision();
          if (rev == 0) break;
          if (rev > begin_revision_.value()) {
            return {Code::kFutureRevision, "required revision is a future revision"};
          }
          if (rev < store_->CompactRevision().value()) {
            return {Code::kCompacted, "required revision has been compacted"};
          }
          break;
        }
        default:
          break;
      }
    }
    return OkStatus();
  }

  Status ExecuteChosen(const etcdserverpb::TxnRequest& r, const std::vector<bool>& path,
                       size_t* cursor, etcdserverpb::TxnResponse* response) {
    bool ok = path[(*cursor)++];
    response->set_succeeded(ok);
    for (const auto& op : Branch(r, ok)) {
      auto* out = response->add_responses();
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestRange:
          RETURN_IF_ERROR(ExecuteRange(op.request_range(), out->mutable_response_range()));
          break;
        case etcdserverpb::RequestOp::kRequestPut:
          RETURN_IF_ERROR(ExecutePut(op.request_put(), out->mutable_response_put()));
          break;
        case etcdserverpb::RequestOp::kRequestDeleteRange:
          RETURN_IF_ERROR(
              ExecuteDelete(op.request_delete_range(), out->mutable_response_delete_range()));
          break;
        case etcdserverpb::RequestOp::kRequestTxn: {
          auto* nested = out->mutable_response_txn();
          // etcd leaves a nested txn's header empty (but present).
          nested->mutable_header();
          RETURN_IF_ERROR(ExecuteChosen(op.request_txn(), path, cursor, nested));
          break;
        }
        case etcdserverpb::RequestOp::REQUEST_NOT_SET:
          break;
      }
    }
    return OkStatus();
  }

  // The revision a read inside the txn reports: the txn's own once it has written.
  Revision CurrentRevision() const {
    return changed_ ? Revision(begin_revision_.value() + 1) : begin_revision_;
  }

  // After CheckChosen, the only failures left are the storage's own (an unreadable value, a
  // full map): the caller treats them as fatal for this member.
  Status ExecuteRange(const etcdserverpb::RangeRequest& r, etcdserverpb::RangeResponse* out) {
    ASSIGN_OR_RETURN(mvcc::RangeResult rr, Range(ToRangeOptions(r)));
    ToRangeResponse(rr, r.keys_only(), out);
    out->mutable_header()->set_revision(CurrentRevision().value());
    return OkStatus();
  }

  Status ExecutePut(const etcdserverpb::PutRequest& r, etcdserverpb::PutResponse* out) {
    std::string value = r.value();
    LeaseId lease(r.lease());
    std::optional<mvcc::KeyValue> prev;
    if (r.ignore_value() || r.ignore_lease() || r.prev_kv()) {
      ASSIGN_OR_RETURN(prev, ReadKey(txn_.get(), r.key()));
    }
    if (r.ignore_value() && prev) value = prev->value;
    if (r.ignore_lease() && prev) lease = prev->lease;
    auto put = txn_->Put(r.key(), value, lease);
    if (!put.ok()) return put.status();
    changed_ = true;
    MoveToLease(r.key(), lessor_ ? lessor_->LeaseOf(r.key()) : LeaseId(0), lease);
    if (r.prev_kv() && prev) ToProto(*prev, out->mutable_prev_kv());
    out->mutable_header()->set_revision(CurrentRevision().value());
    return OkStatus();
  }

  Status ExecuteDelete(const etcdserverpb::DeleteRangeRequest& r,
                       etcdserverpb::DeleteRangeResponse* out) {
    ASSIGN_OR_RETURN(mvcc::Store::WriteTxn::DeleteResult del,
                     txn_->DeleteRange(r.key(), r.range_end()));
    if (del.deleted > 0) changed_ = true;
    for (const auto& kv : del.prev_kvs) MoveToLease(kv.key, kv.lease, LeaseId(0));
    out->set_deleted(del.deleted);
    if (r.prev_kv()) {
      for (const auto& kv : del.prev_kvs) ToProto(kv, out->add_prev_kvs());
    }
    out->mutable_header()->set_revision(CurrentRevision().value());
    return OkStatus();
  }

  // Keeps the lessor's key sets in step with the keys' lease field. The lessor's map is not
  // persisted: a restart rebuilds it from the keys, so it only has to follow the store.
  void MoveToLease(const std::string& key, LeaseId from, LeaseId to) {
    if (lessor_ == nullptr || from == to) return;
    if (from.value() != 0) lessor_->Detach(from, key);
    // CheckChosen made sure the lease exists.
    if (to.value() != 0) CHECK(lessor_->Attach(to, key).ok()) << "lease " << to << " vanished";
  }

  mvcc::Store* store_;
  lease::Lessor* lessor_;
  std::vector<mvcc::Event>* event_sink_;
  Revision begin_revision_;
  bool changed_ = false;
  bool storage_failed_ = false;
  std::unique_ptr<mvcc::Store::WriteTxn> txn_;  // a write run
  std::unique_ptr<mvcc::Store::ReadTxn> read_;  // a read-only run
};

ApplyResult Applier::Apply(const internal::InternalRequest& request, Index index) {
  ApplyResult out;
  auto take = [&out](auto result) {
    if (result.ok()) {
      out.response = std::move(result).value();
    } else {
      out.status = result.status();
    }
  };
  if (RefusedAsCorrupt(request, &out)) return out;
  if (request.has_auth()) return ApplyAuth(request, index);
  if (Status s = CheckPermitted(request); !s.ok()) {
    out.status = std::move(s);
    return out;
  }
  switch (request.request_case()) {
    case internal::InternalRequest::kPut:
      ApplyWithQuota(QuotaCost(request.put()), &out, [&] { take(Put(request.put())); });
      break;
    case internal::InternalRequest::kDeleteRange:
      take(DeleteRange(request.delete_range()));
      break;
    case internal::InternalRequest::kTxn:
      ApplyWithQuota(QuotaCost(request.txn()), &out, [&] { take(Txn(request.txn())); });
      break;
    case internal::InternalRequest::kAlarm:
      take(Alarm(request.alarm()));
      break;
    case internal::InternalRequest::kCompaction:
      take(Compact(request.compaction()));
      break;
    case internal::InternalRequest::kLeaseGrant:
    case internal::InternalRequest::kLeaseRevoke: {
      if (lessor_ == nullptr) {
        out.status = Unimplemented("leases are not enabled on this applier");
        break;
      }
      LeaseApplyContext ctx{store_, lessor_, clock_, event_sink_, &storage_failed_};
      if (request.has_lease_grant()) {
        ApplyWithQuota(QuotaCost(request.lease_grant()), &out,
                       [&] { take(ApplyLeaseGrant(ctx, request.lease_grant())); });
      } else {
        take(ApplyLeaseRevoke(ctx, request.lease_revoke()));
      }
      break;
    }
    default:
      out.status = Unimplemented("request type " + std::to_string(request.request_case()) +
                                 " is not applied by this version");
      break;
  }
  return out;
}

Result<etcdserverpb::TxnResponse> Applier::Txn(const etcdserverpb::TxnRequest& request) {
  TxnRun run(store_, lessor_, event_sink_);
  auto result = run.Run(request);
  if (run.storage_failed()) storage_failed_ = true;
  return result;
}

Result<etcdserverpb::TxnResponse> Applier::ReadOnlyTxn(mvcc::Store* store,
                                                       const etcdserverpb::TxnRequest& request) {
  CHECK(IsReadOnly(request)) << "ReadOnlyTxn given a txn that writes";
  TxnRun run(store, /*lessor=*/nullptr, /*event_sink=*/nullptr);
  return run.RunReadOnly(request);
}

// A put or delete is a txn with one op; sharing the txn path keeps one set of rules.
Result<etcdserverpb::PutResponse> Applier::Put(const etcdserverpb::PutRequest& request) {
  etcdserverpb::TxnRequest txn;
  *txn.add_success()->mutable_request_put() = request;
  ASSIGN_OR_RETURN(etcdserverpb::TxnResponse resp, Txn(txn));
  etcdserverpb::PutResponse out = std::move(*resp.mutable_responses(0)->mutable_response_put());
  out.mutable_header()->set_revision(resp.header().revision());
  return out;
}

Result<etcdserverpb::DeleteRangeResponse> Applier::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& request) {
  etcdserverpb::TxnRequest txn;
  *txn.add_success()->mutable_request_delete_range() = request;
  ASSIGN_OR_RETURN(etcdserverpb::TxnResponse resp, Txn(txn));
  etcdserverpb::DeleteRangeResponse out =
      std::move(*resp.mutable_responses(0)->mutable_response_delete_range());
  out.mutable_header()->set_revision(resp.header().revision());
  return out;
}

Result<etcdserverpb::CompactionResponse> Applier::Compact(
    const etcdserverpb::CompactionRequest& request) {
  // etcd's store starts "compacted at -1", so compacting revision 0 of a never-compacted store
  // succeeds (and changes nothing).
  if (request.revision() == 0 && store_->CompactRevision().value() == 0) {
    etcdserverpb::CompactionResponse out;
    out.mutable_header()->set_revision(store_->CurrentRevision().value());
    return out;
  }
  // The compaction hash (etcd 3.6): the store at the compaction revision, taken with the
  // previous compact revision, before compacting makes that revision unhashable. Out of range
  // revisions are left to Compact to refuse.
  std::optional<KvHash> compaction_hash;
  if (compaction_hashes_ != nullptr) {
    auto h = store_->HashKv(Revision(request.revision()));
    if (h.ok()) {
      compaction_hash =
          KvHash{h->hash, h->compact_revision, h->hash_revision, store_->CurrentRevision()};
    }
  }
  Status s = store_->Compact(Revision(request.revision()));
  if (s.ok() && compaction_hash) compaction_hashes_->Record(*compaction_hash);
  if (!s.ok()) {
    if (s.code() != Code::kCompacted && s.code() != Code::kFutureRevision) storage_failed_ = true;
    return s;
  }
  etcdserverpb::CompactionResponse out;
  out.mutable_header()->set_revision(store_->CurrentRevision().value());
  return out;
}

}  // namespace dolmen::server

namespace dolmen::server {

namespace {
Status NoSpace() { return {Code::kNoSpace, "mvcc: database space exceeded"}; }

bool IsActive(const AlarmStore& alarms, MemberId member, etcdserverpb::AlarmType type) {
  for (const auto& m : alarms.Get(type)) {
    if (m.memberid() == member.value()) return true;
  }
  return false;
}

// Every member logs an alarm that changes, as etcd's "alarm raised" / "alarm disarmed": the
// operator of any member sees which alarm, for which member.
void LogAlarm(const char* what, const etcdserverpb::AlarmMember& m) {
  log::Warn(what,
            {{"alarm", etcdserverpb::AlarmType_Name(m.alarm())}, {"from", log::Hex(m.memberid())}});
}
}  // namespace

bool Applier::RefusedAsCorrupt(const internal::InternalRequest& request, ApplyResult* out) const {
  if (alarms_ == nullptr || !alarms_->Active(etcdserverpb::CORRUPT)) return false;
  switch (request.request_case()) {
    case internal::InternalRequest::kPut:
    case internal::InternalRequest::kDeleteRange:
    case internal::InternalRequest::kTxn:
    case internal::InternalRequest::kCompaction:
    case internal::InternalRequest::kLeaseGrant:
    case internal::InternalRequest::kLeaseRevoke:
      // src/api maps kCorruption to DATA_LOSS "etcdserver: " + message: etcd's ErrGRPCCorrupt.
      out->status = Corruption("corrupt cluster");
      return true;
    default:
      return false;
  }
}

void Applier::ApplyWithQuota(uint64_t cost, ApplyResult* out, const std::function<void()>& apply) {
  if (cost > 0 && alarms_ != nullptr && alarms_->Active(etcdserverpb::NOSPACE)) {
    out->status = NoSpace();
    return;
  }
  // Measured before applying, as etcd's quota applier does; the request is applied either way
  // (every member must apply the same entries), only the answer differs.
  bool fits = quota_ == nullptr || quota_->Available(cost);
  apply();
  if (fits || !out->status.ok()) return;
  out->status = NoSpace();
  out->response = std::monostate();
  if (quota_exceeded_ && !(alarms_ != nullptr && alarms_->Active(etcdserverpb::NOSPACE))) {
    quota_exceeded_();
  }
}

Result<etcdserverpb::AlarmResponse> Applier::Alarm(const etcdserverpb::AlarmRequest& request) {
  if (alarms_ == nullptr) return Unimplemented("alarms are not enabled on this applier");
  etcdserverpb::AlarmResponse response;
  MemberId member(request.memberid());
  // Raising or clearing "no alarm" changes nothing. etcd stores it anyway, and for member 0 its
  // key is empty, which the backend refuses (etcd panics there); answering with no alarms keeps
  // such an entry from stopping every member on it.
  if (request.alarm() == etcdserverpb::NONE &&
      request.action() != etcdserverpb::AlarmRequest::GET) {
    return response;
  }
  switch (request.action()) {
    case etcdserverpb::AlarmRequest::GET:
      for (auto& m : alarms_->Get(request.alarm())) *response.add_alarms() = std::move(m);
      break;
    case etcdserverpb::AlarmRequest::ACTIVATE: {
      auto txn = store_->BatchTxn();
      if (!txn.ok()) {
        storage_failed_ = true;
        return txn.status();
      }
      const bool was_active = IsActive(*alarms_, member, request.alarm());
      auto m = alarms_->Activate(member, request.alarm(), *txn);
      if (!m.ok()) {
        storage_failed_ = true;
        return m.status();
      }
      if (!was_active) LogAlarm("alarm raised", *m);
      *response.add_alarms() = *m;
      break;
    }
    case etcdserverpb::AlarmRequest::DEACTIVATE: {
      auto txn = store_->BatchTxn();
      if (!txn.ok()) {
        storage_failed_ = true;
        return txn.status();
      }
      auto m = alarms_->Deactivate(member, request.alarm(), *txn);
      if (!m.ok()) {
        storage_failed_ = true;
        return m.status();
      }
      if (*m) {
        LogAlarm("alarm disarmed", **m);
        *response.add_alarms() = **m;
      }
      break;
    }
    default:
      // etcd answers an unknown action with an empty response.
      break;
  }
  response.mutable_header()->set_revision(store_->CurrentRevision().value());
  return response;
}

}  // namespace dolmen::server
