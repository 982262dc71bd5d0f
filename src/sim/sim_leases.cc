#include "sim/sim_leases.h"

#include <algorithm>
#include <set>
#include <vector>

namespace dolmen::sim {
namespace {

// FNV-1a over the digest's fields.
void Mix(uint64_t* h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    *h ^= c;
    *h *= 1099511628211ull;
  }
  *h ^= 0xff;  // field separator
  *h *= 1099511628211ull;
}

}  // namespace

LeaseRecord& LeaseBook::New(int64_t id, int client, int64_t ttl_seconds, uint64_t now_ms) {
  LeaseRecord& r = leases_[id];
  r.client = client;
  r.ttl_seconds = ttl_seconds;
  // The grant applies on the leader at or after now, and expires a TTL after that.
  r.alive_until_ms = now_ms + static_cast<uint64_t>(ttl_seconds) * 1000;
  r.alive_because = "its grant began at " + std::to_string(now_ms) + " ms";
  return r;
}

LeaseRecord* LeaseBook::Find(int64_t id) {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

void LeaseBook::Granted(int64_t id, int64_t ttl_seconds) {
  LeaseRecord& r = leases_[id];
  r.granted = true;
  r.ttl_seconds = ttl_seconds;
}

void LeaseBook::KeptAlive(int64_t id, int64_t ttl_seconds, uint64_t started_ms) {
  LeaseRecord& r = leases_[id];
  const uint64_t until = started_ms + static_cast<uint64_t>(ttl_seconds) * 1000;
  if (until > r.alive_until_ms) {
    r.alive_until_ms = until;
    r.alive_because = "a keep-alive at " + std::to_string(started_ms) + " ms returned TTL " +
                      std::to_string(ttl_seconds) + " s";
  }
}

void LeaseBook::Revoked(int64_t id, uint64_t now_ms) {
  LeaseRecord& r = leases_[id];
  r.dead = true;
  if (!r.revoked_ms) r.revoked_ms = now_ms;
}

std::optional<std::string> LeaseBook::CheckExpiry(int64_t id, uint64_t now_ms,
                                                  MemberId leader) const {
  auto it = leases_.find(id);
  if (it == leases_.end()) {
    return "leader " + std::to_string(leader.value()) + " expired lease " + std::to_string(id) +
           ", which no client granted";
  }
  const LeaseRecord& r = it->second;
  if (now_ms < r.alive_until_ms) {
    return "leader " + std::to_string(leader.value()) + " revoked lease " + std::to_string(id) +
           " on expiry at " + std::to_string(now_ms) + " ms, before its TTL ran out at " +
           std::to_string(r.alive_until_ms) + " ms (" + r.alive_because + ")";
  }
  return std::nullopt;
}

std::optional<std::string> LeaseBook::CheckLeasedPut(int64_t lease, uint64_t invoked_ms) const {
  auto it = leases_.find(lease);
  if (it == leases_.end() || !it->second.revoked_ms || *it->second.revoked_ms >= invoked_ms) {
    return std::nullopt;
  }
  return "a put with lease " + std::to_string(lease) + " begun at " + std::to_string(invoked_ms) +
         " ms succeeded, but the lease was revoked by " + std::to_string(*it->second.revoked_ms) +
         " ms (etcd: requested lease not found)";
}

Result<uint64_t> LeaseDigest(const lease::Lessor& lessor, const mvcc::Store& store) {
  mvcc::RangeOptions all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  all.keys_only = true;
  ASSIGN_OR_RETURN(mvcc::RangeResult live, store.Range(all));
  std::set<std::pair<int64_t, std::string>> attached;  // (lease, key) of live keys
  for (const mvcc::KeyValue& kv : live.kvs) {
    if (kv.lease.value() == 0) continue;
    if (!lessor.Exists(kv.lease) || lessor.LeaseOf(kv.key) != kv.lease) {
      return Status(Code::kFailedPrecondition,
                    "key " + kv.key + " names lease " + std::to_string(kv.lease.value()) +
                        ", which the lessor " +
                        (lessor.Exists(kv.lease) ? "does not attach it to" : "does not hold"));
    }
    attached.emplace(kv.lease.value(), kv.key);
  }
  std::vector<LeaseId> ids = lessor.Leases();
  std::sort(ids.begin(), ids.end());
  uint64_t h = 14695981039346656037ull;
  size_t keys = 0;
  for (LeaseId id : ids) {
    // Any time will do: only the granted TTL and the keys are replicated state.
    ASSIGN_OR_RETURN(lease::TimeToLiveInfo info,
                     lessor.TimeToLive(id, /*with_keys=*/true, lease::TimePoint()));
    Mix(&h, std::to_string(id.value()) + "/" + std::to_string(info.granted_ttl_seconds));
    for (const std::string& key : info.keys) {
      if (!attached.count({id.value(), key})) {
        return Status(Code::kFailedPrecondition, "lease " + std::to_string(id.value()) +
                                                     " lists key " + key +
                                                     ", which is not live with that lease");
      }
      Mix(&h, key);
      ++keys;
    }
  }
  if (keys != attached.size()) {
    return Status(Code::kFailedPrecondition, "the lessor lists fewer keys than are attached");
  }
  return h;
}

}  // namespace dolmen::sim
