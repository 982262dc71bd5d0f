// etcd's backend quota (etcdserver/quota.go): a request that adds data has a cost, an estimate
// of the bytes it adds; it fits while the backend's size (etcd's dbSize, Backend::SizeBytes:
// see docs/maintenance.md for what LMDB counts) plus that cost stays below the quota.
// Checked twice, as etcd does: before proposing (the API refuses with "database space
// exceeded" and raises the NOSPACE alarm) and when applying (the change is applied, but the
// proposer is told the space is exceeded and the member raises the alarm).
#pragma once

#include <cstdint>
#include <functional>

#include "etcdserverpb/rpc.pb.h"
#include "server/disk_guard.h"

namespace dolmen::server {

// etcd's default and its recommended maximum.
inline constexpr uint64_t kDefaultQuotaBytes = 2ull << 30;
inline constexpr uint64_t kMaxRecommendedQuotaBytes = 8ull << 30;

// Per-record overheads etcd adds to the payload bytes.
inline constexpr uint64_t kQuotaKvOverhead = 256;
inline constexpr uint64_t kQuotaLeaseOverhead = 64;

// key + value + overhead.
uint64_t QuotaCost(const etcdserverpb::PutRequest& r);
// The larger of the success and failure branches' puts (nested txns count nothing, as in etcd).
uint64_t QuotaCost(const etcdserverpb::TxnRequest& r);
inline uint64_t QuotaCost(const etcdserverpb::LeaseGrantRequest&) { return kQuotaLeaseOverhead; }

class Quota {
 public:
  // `quota_bytes` 0 means etcd's default. `size_bytes` reports the backend's dbSize; it is
  // called for every request, so it must be cheap.
  Quota(uint64_t quota_bytes, std::function<uint64_t()> size_bytes)
      : quota_bytes_(quota_bytes == 0 ? kDefaultQuotaBytes : quota_bytes),
        size_bytes_(std::move(size_bytes)) {}
  // Before the first Available: the data dir's file system must also keep its reserve free
  // (disk_guard.h). Not owned; null: no disk check.
  void set_disk_guard(DiskGuard* disk) { disk_ = disk; }
  // A request that costs nothing always fits; one that costs something fits while the backend
  // stays below the quota and the disk above its reserve.
  bool Available(uint64_t cost) const {
    if (cost == 0) return true;
    if (size_bytes_() + cost >= quota_bytes_) return false;
    return disk_ == nullptr || disk_->Admit(cost);
  }
  uint64_t quota_bytes() const { return quota_bytes_; }
  // Whether the last refusal could be the disk's (for the log line).
  bool disk_low() const { return disk_ != nullptr && disk_->low(); }

 private:
  const uint64_t quota_bytes_;
  std::function<uint64_t()> size_bytes_;
  DiskGuard* disk_ = nullptr;
};

}  // namespace dolmen::server
