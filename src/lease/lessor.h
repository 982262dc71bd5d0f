// The lessor: etcd's leases in memory, their persistence in the backend bucket "lease", and
// the expiry bookkeeping the leader uses to decide which leases to revoke.
//
// Who calls what. Grant, Revoke, Attach and Detach change replicated state: only the apply
// thread calls them, in log order, on every member alike. Promote, Demote, Renew and
// TakeExpired are the leader's local business (renewals are not logged, as in etcd): expiry
// times exist only on the primary lessor, every other member keeps its leases "forever" until
// it is promoted. Read-only calls may come from any thread; one mutex guards everything.
//
// Time is always passed in (a Clock's Now() read by the caller), never read here, so tests and
// the simulator drive expiry by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "base/ids.h"
#include "base/mutex.h"
#include "base/status.h"

namespace dolmen::lease {

using TimePoint = std::chrono::steady_clock::time_point;

// etcd's MaxLeaseTTL: a TTL above this is refused ("too large lease TTL").
inline constexpr int64_t kMaxTtlSeconds = 9'000'000'000;
// The backend bucket holding one record per lease (docs/formats/lease.md).
inline constexpr std::string_view kBucket = "lease";

struct LessorOptions {
  // A shorter TTL is raised to this (etcd: ceil(1.5 x election timeout), 2 s by default), so
  // a lease cannot expire before a new leader could have been elected and promoted.
  int64_t min_ttl_seconds = 2;
  // An expired lease handed out for revoking is handed out again after this long if it is
  // still there (the revoke proposal was lost, e.g. on a leader change). etcd: 3 s.
  std::chrono::nanoseconds revoke_retry = std::chrono::seconds(3);
  // Promote spreads expiries so that at most this many fall in any one second (etcd keeps
  // piled-up expiries under 3/4 of its 1000/s revoke rate).
  int64_t max_expiries_per_second = 750;
};

struct TimeToLiveInfo {
  int64_t granted_ttl_seconds = 0;
  // Whole seconds left (truncated, as etcd). Only meaningful on the primary lessor.
  int64_t remaining_seconds = 0;
  std::vector<std::string> keys;  // sorted
};

class Lessor {
 public:
  explicit Lessor(LessorOptions options) : options_(options) {}
  Lessor(const Lessor&) = delete;
  Lessor& operator=(const Lessor&) = delete;

  // --- Apply thread: replicated state.

  // Replaces the in-memory leases with the bucket's (at open). Not primary afterwards; keys
  // are attached separately (they live in the key-value store). kCorruption for a bad record.
  Status Load(backend::ReadTxn* txn);
  // etcd's Grant: kLeaseNotFound for id 0, kLeaseTtlTooLarge, kLeaseExists. The TTL is raised
  // to the minimum. Writes the record into `txn`; returns the TTL granted.
  Result<int64_t> Grant(LeaseId id, int64_t ttl_seconds, TimePoint now, backend::WriteTxn* txn);
  // Forgets the lease and deletes its record in `txn`. The caller deletes the attached keys
  // (see Keys) in the same backend txn. kLeaseNotFound if absent.
  Status Revoke(LeaseId id, backend::WriteTxn* txn);
  // The keys attached to a lease, sorted (so every member deletes them in the same order).
  Result<std::vector<std::string>> Keys(LeaseId id) const;
  bool Exists(LeaseId id) const;
  // kLeaseNotFound if the lease does not exist. Attaching twice is harmless.
  Status Attach(LeaseId id, std::string key);
  // Does nothing if the lease or the key is not there.
  void Detach(LeaseId id, const std::string& key);
  // The lease `key` is attached to, 0 if none (etcd's item map): what a put that replaces the
  // key detaches it from, without reading the old version.
  LeaseId LeaseOf(std::string_view key) const;

  // --- Leader side: not replicated.

  // Becomes primary: every lease expires at now + extend + TTL, so a leader change never cuts
  // a remaining TTL short (etcd's Promote; extend is the election timeout).
  void Promote(std::chrono::nanoseconds extend, TimePoint now);
  // Stops being primary: leases no longer expire here.
  void Demote();
  bool primary() const;
  // A keep-alive: the lease expires TTL from now. kNotLeader if not primary; kLeaseNotFound if
  // absent or already expired (an expired lease is being revoked).
  Result<int64_t> Renew(LeaseId id, TimePoint now);
  // Up to `max` expired leases, earliest first, each handed out once per revoke_retry.
  std::vector<LeaseId> TakeExpired(TimePoint now, size_t max);

  // --- Reads: any thread.

  // kLeaseNotFound if absent.
  Result<TimeToLiveInfo> TimeToLive(LeaseId id, bool with_keys, TimePoint now) const;
  // Every lease, soonest expiry first (etcd's order), then by id.
  std::vector<LeaseId> Leases() const;
  size_t size() const;

  // The record format, exposed for tests and tools.
  static std::string EncodeKey(LeaseId id);
  static std::string EncodeValue(int64_t ttl_seconds);
  static Result<std::pair<LeaseId, int64_t>> Decode(std::string_view key, std::string_view value);

 private:
  static constexpr TimePoint kForever = TimePoint::max();

  struct Lease {
    int64_t ttl_seconds = 0;
    TimePoint expiry = kForever;
    // When TakeExpired may look at this lease next (its key in by_check_); kForever when not
    // primary.
    TimePoint check_at = kForever;
    std::set<std::string> keys;
  };

  void SetExpiry(LeaseId id, Lease& lease, TimePoint expiry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SpreadExpiries() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LessorOptions options_;
  // The apply thread writes, gRPC threads read (TimeToLive, Leases), the leader's expiry loop
  // takes: every member below is guarded by mu_.
  mutable base::Mutex mu_;
  std::map<LeaseId, Lease> leases_ ABSL_GUARDED_BY(mu_);
  // key -> the lease it is attached to, for attached keys only.
  std::map<std::string, LeaseId, std::less<>> lease_of_ ABSL_GUARDED_BY(mu_);
  // (check_at, id) of every lease while primary: the expiry queue.
  std::set<std::pair<TimePoint, LeaseId>> by_check_ ABSL_GUARDED_BY(mu_);
  bool primary_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace dolmen::lease
