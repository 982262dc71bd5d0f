#include "server/request_checks.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace dolmen::server {
namespace {

Status EmptyKey() { return {Code::kEmptyKey, "key is not provided"}; }
Status DuplicateKey() { return {Code::kDuplicateKey, "duplicate key given in txn request"}; }

Status CheckOp(const etcdserverpb::RequestOp& op, int64_t max_txn_ops) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      return CheckRange(op.request_range());
    case etcdserverpb::RequestOp::kRequestPut:
      return CheckPut(op.request_put());
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      return CheckDeleteRange(op.request_delete_range());
    case etcdserverpb::RequestOp::kRequestTxn:
      return CheckTxn(op.request_txn(), max_txn_ops);
    case etcdserverpb::RequestOp::REQUEST_NOT_SET:
      break;
  }
  // An op with nothing in it: etcd answers "key not found".
  return {Code::kKeyNotFound, "key not found"};
}

// The key interval a delete covers: [key, end); an empty end is the single key, "\0" means
// every key >= key (end = "" below stands for +infinity).
struct Interval {
  std::string begin;
  std::string end;  // exclusive; empty = unbounded
  bool single = false;

  bool Contains(const std::string& k) const {
    if (single) return k == begin;
    return k >= begin && (end.empty() || k < end);
  }
};

struct Writes {
  std::set<std::string> puts;
  std::vector<Interval> deletes;

  bool Deleted(const std::string& k) const {
    return std::any_of(deletes.begin(), deletes.end(),
                       [&](const Interval& iv) { return iv.Contains(k); });
  }
};

Interval DeleteInterval(const etcdserverpb::DeleteRangeRequest& d) {
  if (d.range_end().empty()) return {d.key(), "", true};
  if (d.range_end() == std::string(1, '\0')) return {d.key(), "", false};
  return {d.key(), d.range_end(), false};
}

// Collects what one branch (list of ops) writes, refusing overlaps. Nested txns are collected
// first; their then/else branches may put the same key since only one of them runs.
Result<Writes> CollectWrites(
    const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops) {
  Writes w;
  for (const auto& op : ops) {
    if (op.request_case() == etcdserverpb::RequestOp::kRequestDeleteRange) {
      w.deletes.push_back(DeleteInterval(op.request_delete_range()));
    }
  }
  for (const auto& op : ops) {
    if (op.request_case() != etcdserverpb::RequestOp::kRequestTxn) continue;
    ASSIGN_OR_RETURN(Writes then_writes, CollectWrites(op.request_txn().success()));
    ASSIGN_OR_RETURN(Writes else_writes, CollectWrites(op.request_txn().failure()));
    for (const auto& k : then_writes.puts) {
      if (w.puts.count(k) || w.Deleted(k)) return DuplicateKey();
      w.puts.insert(k);
    }
    for (const auto& k : else_writes.puts) {
      if (w.puts.count(k) && !then_writes.puts.count(k)) return DuplicateKey();
      if (w.Deleted(k)) return DuplicateKey();
      w.puts.insert(k);
    }
    for (auto& iv : then_writes.deletes) w.deletes.push_back(std::move(iv));
    for (auto& iv : else_writes.deletes) w.deletes.push_back(std::move(iv));
  }
  for (const auto& op : ops) {
    if (op.request_case() != etcdserverpb::RequestOp::kRequestPut) continue;
    const std::string& k = op.request_put().key();
    if (w.puts.count(k) || w.Deleted(k)) return DuplicateKey();
    w.puts.insert(k);
  }
  return w;
}

Status CheckTxnShape(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops) {
  int64_t ops = std::max<int64_t>({r.compare_size(), r.success_size(), r.failure_size()});
  if (ops > max_txn_ops) return {Code::kTooManyOps, "too many operations in txn request"};
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return EmptyKey();
  }
  // Nested txns are bounded by what the parent leaves over, as etcd does.
  for (const auto& op : r.success()) RETURN_IF_ERROR(CheckOp(op, max_txn_ops - ops));
  for (const auto& op : r.failure()) RETURN_IF_ERROR(CheckOp(op, max_txn_ops - ops));
  return OkStatus();
}

}  // namespace

Status CheckRange(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return EmptyKey();
  return OkStatus();
}

Status CheckPut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return EmptyKey();
  if (r.ignore_value() && !r.value().empty()) return {Code::kValueProvided, "value is provided"};
  if (r.ignore_lease() && r.lease() != 0) return {Code::kLeaseProvided, "lease is provided"};
  return OkStatus();
}

Status CheckDeleteRange(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return EmptyKey();
  return OkStatus();
}

Status CheckTxn(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops) {
  RETURN_IF_ERROR(CheckTxnShape(r, max_txn_ops));
  // Overlap checks come after the shape checks so a huge txn is refused before the
  // (quadratic in the worst case) interval work.
  auto then_writes = CollectWrites(r.success());
  if (!then_writes.ok()) return then_writes.status();
  auto else_writes = CollectWrites(r.failure());
  if (!else_writes.ok()) return else_writes.status();
  return OkStatus();
}

bool IsReadOnly(const etcdserverpb::TxnRequest& r) {
  auto branch_read_only = [](const auto& ops) {
    for (const auto& op : ops) {
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestRange:
          break;
        case etcdserverpb::RequestOp::kRequestTxn:
          if (!IsReadOnly(op.request_txn())) return false;
          break;
        default:
          return false;
      }
    }
    return true;
  };
  return branch_read_only(r.success()) && branch_read_only(r.failure());
}

bool IsSerializable(const etcdserverpb::TxnRequest& r) {
  auto branch = [](const auto& ops) {
    for (const auto& op : ops) {
      if (op.request_case() == etcdserverpb::RequestOp::kRequestRange &&
          !op.request_range().serializable()) {
        return false;
      }
      if (op.request_case() == etcdserverpb::RequestOp::kRequestTxn &&
          !IsSerializable(op.request_txn())) {
        return false;
      }
    }
    return true;
  };
  return branch(r.success()) && branch(r.failure());
}

}  // namespace dolmen::server
