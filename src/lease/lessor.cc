#include "lease/lessor.h"

#include <algorithm>

#include "base/check.h"
#include "base/coding.h"

namespace dolmen::lease {
namespace {

constexpr char kRecordVersion = 1;

Status NotFound() { return {Code::kLeaseNotFound, "requested lease not found"}; }

// now + d without overflowing: TTLs go up to 9e9 s, which is close to the range of a
// nanosecond time_point.
TimePoint AddSaturating(TimePoint now, std::chrono::nanoseconds d) {
  if (d >= TimePoint::max() - now) return TimePoint::max() - std::chrono::nanoseconds(1);
  return now + d;
}

TimePoint ExpiryFrom(TimePoint now, std::chrono::nanoseconds extend, int64_t ttl_seconds) {
  // ttl_seconds <= kMaxTtlSeconds, so the product fits in int64 nanoseconds.
  return AddSaturating(now, extend + std::chrono::seconds(ttl_seconds));
}

}  // namespace

std::string Lessor::EncodeKey(LeaseId id) {
  // Big-endian, as etcd's bucket keys: a scan lists leases in id order.
  std::string key;
  coding::PutBigEndian64(&key, static_cast<uint64_t>(id.value()));
  return key;
}

std::string Lessor::EncodeValue(int64_t ttl_seconds) {
  std::string value(1, kRecordVersion);
  coding::PutFixed64(&value, static_cast<uint64_t>(ttl_seconds));
  return value;
}

Result<std::pair<LeaseId, int64_t>> Lessor::Decode(std::string_view key, std::string_view value) {
  if (key.size() != 8 || value.size() != 9 || value[0] != kRecordVersion) {
    return Corruption("lease record of " + std::to_string(key.size()) + "+" +
                      std::to_string(value.size()) + " bytes is not a version 1 record");
  }
  LeaseId id(static_cast<int64_t>(coding::DecodeBigEndian64(key.data())));
  auto ttl = static_cast<int64_t>(coding::DecodeFixed64(value.data() + 1));
  if (id.value() == 0 || ttl <= 0 || ttl > kMaxTtlSeconds) {
    return Corruption("lease record " + std::to_string(id.value()) + " has TTL " +
                      std::to_string(ttl));
  }
  return std::make_pair(id, ttl);
}

Status Lessor::Load(backend::ReadTxn* txn) {
  std::map<LeaseId, Lease> loaded;
  Status bad;
  RETURN_IF_ERROR(txn->Scan(kBucket, "", "", [&](std::string_view k, std::string_view v) {
    auto record = Decode(k, v);
    if (!record.ok()) {
      bad = record.status();
      return false;
    }
    loaded[record->first].ttl_seconds = record->second;
    return true;
  }));
  RETURN_IF_ERROR(bad);
  base::MutexLock lock(&mu_);
  leases_ = std::move(loaded);
  lease_of_.clear();
  by_check_.clear();
  primary_ = false;
  return OkStatus();
}

void Lessor::SetExpiry(LeaseId id, Lease& lease, TimePoint expiry) {
  if (lease.check_at != kForever) by_check_.erase({lease.check_at, id});
  lease.expiry = expiry;
  lease.check_at = primary_ ? expiry : kForever;
  if (lease.check_at != kForever) by_check_.insert({lease.check_at, id});
}

Result<int64_t> Lessor::Grant(LeaseId id, int64_t ttl_seconds, TimePoint now,
                              backend::WriteTxn* txn) {
  if (id.value() == 0) return NotFound();
  if (ttl_seconds > kMaxTtlSeconds) return Status(Code::kLeaseTtlTooLarge, "too large lease TTL");
  base::MutexLock lock(&mu_);
  if (leases_.contains(id)) return Status(Code::kLeaseExists, "lease already exists");
  int64_t ttl = std::max(ttl_seconds, options_.min_ttl_seconds);
  RETURN_IF_ERROR(txn->Put(kBucket, EncodeKey(id), EncodeValue(ttl)));
  Lease& lease = leases_[id];
  lease.ttl_seconds = ttl;
  SetExpiry(id, lease, primary_ ? ExpiryFrom(now, {}, ttl) : kForever);
  return ttl;
}

Status Lessor::Revoke(LeaseId id, backend::WriteTxn* txn) {
  base::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return NotFound();
  RETURN_IF_ERROR(txn->Delete(kBucket, EncodeKey(id)));
  if (it->second.check_at != kForever) by_check_.erase({it->second.check_at, id});
  for (const std::string& key : it->second.keys) {
    auto item = lease_of_.find(key);
    if (item != lease_of_.end() && item->second == id) lease_of_.erase(item);
  }
  leases_.erase(it);
  return OkStatus();
}

LeaseId Lessor::LeaseOf(std::string_view key) const {
  base::MutexLock lock(&mu_);
  auto it = lease_of_.find(key);
  return it == lease_of_.end() ? LeaseId(0) : it->second;
}

Result<std::vector<std::string>> Lessor::Keys(LeaseId id) const {
  base::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return NotFound();
  return std::vector<std::string>(it->second.keys.begin(), it->second.keys.end());
}

bool Lessor::Exists(LeaseId id) const {
  base::MutexLock lock(&mu_);
  return leases_.contains(id);
}

Status Lessor::Attach(LeaseId id, std::string key) {
  base::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return NotFound();
  lease_of_.insert_or_assign(key, id);
  it->second.keys.insert(std::move(key));
  return OkStatus();
}

void Lessor::Detach(LeaseId id, const std::string& key) {
  base::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.keys.erase(key);
  auto item = lease_of_.find(key);
  if (item != lease_of_.end() && item->second == id) lease_of_.erase(item);
}

void Lessor::Promote(std::chrono::nanoseconds extend, TimePoint now) {
  base::MutexLock lock(&mu_);
  primary_ = true;
  for (auto& [id, lease] : leases_)
    SetExpiry(id, lease, ExpiryFrom(now, extend, lease.ttl_seconds));
  SpreadExpiries();
}

// After a promotion many leases may expire in the same second (all renewed by the old leader
// at about the same time). Pushing some of them back by up to a few seconds keeps revokes
// within the revoke rate instead of piling up, at the price of leases living slightly longer.
void Lessor::SpreadExpiries() {
  const int64_t per_second = options_.max_expiries_per_second;
  if (per_second <= 0 || static_cast<int64_t>(leases_.size()) <= per_second) return;
  std::vector<std::pair<TimePoint, LeaseId>> order;
  order.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) order.emplace_back(lease.expiry, id);
  std::sort(order.begin(), order.end());
  TimePoint window = order.front().first;
  int64_t in_window = 0;
  for (const auto& [expiry, id] : order) {
    if (expiry >= window + std::chrono::seconds(1)) {
      window = expiry;
      in_window = 0;
    }
    if (in_window == per_second) {
      window += std::chrono::seconds(1);
      in_window = 0;
    }
    ++in_window;
    if (expiry < window) SetExpiry(id, leases_[id], window);
  }
}

void Lessor::Demote() {
  base::MutexLock lock(&mu_);
  primary_ = false;
  for (auto& [id, lease] : leases_) SetExpiry(id, lease, kForever);
  CHECK(by_check_.empty()) << by_check_.size() << " leases still queued after demotion";
}

bool Lessor::primary() const {
  base::MutexLock lock(&mu_);
  return primary_;
}

Result<int64_t> Lessor::Renew(LeaseId id, TimePoint now) {
  base::MutexLock lock(&mu_);
  if (!primary_) return Status(Code::kNotLeader, "not leader");
  auto it = leases_.find(id);
  if (it == leases_.end()) return NotFound();
  // etcd waits for the revoke of an expired lease and then answers "not found": the leader has
  // already decided, so renewing would race with the revoke in the log.
  if (it->second.expiry <= now) return NotFound();
  SetExpiry(id, it->second, ExpiryFrom(now, {}, it->second.ttl_seconds));
  return it->second.ttl_seconds;
}

std::vector<LeaseId> Lessor::TakeExpired(TimePoint now, size_t max) {
  base::MutexLock lock(&mu_);
  std::vector<LeaseId> out;
  while (out.size() < max && !by_check_.empty() && by_check_.begin()->first <= now) {
    LeaseId id = by_check_.begin()->second;
    Lease& lease = leases_.at(id);
    by_check_.erase(by_check_.begin());
    // Not renewed meanwhile (a renew moves check_at along with expiry): hand it out and look
    // again after the retry interval in case the revoke never lands.
    lease.check_at = AddSaturating(now, options_.revoke_retry);
    by_check_.insert({lease.check_at, id});
    out.push_back(id);
  }
  return out;
}

Result<TimeToLiveInfo> Lessor::TimeToLive(LeaseId id, bool with_keys, TimePoint now) const {
  base::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return NotFound();
  TimeToLiveInfo info;
  info.granted_ttl_seconds = it->second.ttl_seconds;
  if (it->second.expiry == kForever) {
    info.remaining_seconds = it->second.ttl_seconds;
  } else {
    auto left = it->second.expiry - now;
    info.remaining_seconds = std::chrono::duration_cast<std::chrono::seconds>(left).count();
  }
  if (with_keys) info.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return info;
}

std::vector<LeaseId> Lessor::Leases() const {
  base::MutexLock lock(&mu_);
  std::vector<std::pair<TimePoint, LeaseId>> order;
  order.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) order.emplace_back(lease.expiry, id);
  std::sort(order.begin(), order.end());
  std::vector<LeaseId> out;
  out.reserve(order.size());
  for (const auto& entry : order) out.push_back(entry.second);
  return out;
}

size_t Lessor::size() const {
  base::MutexLock lock(&mu_);
  return leases_.size();
}

}  // namespace dolmen::lease
