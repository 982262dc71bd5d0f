// Leases in the whole-cluster simulator: what the clients know of each lease, and etcd's lease
// rules checked against it (docs/lease.md):
//   - a lease is never revoked by expiry before its TTL ran out, counted from the start of its
//     grant or of its last acknowledged keep-alive (the client's view, in virtual time). The
//     leader renews and grants on its own clock at or after those starts, and a newly elected
//     leader extends every lease by an election timeout on promotion (lease::Lessor::Promote),
//     which covers keep-alives a deposed leader still acknowledged until it stepped down
//     (check_quorum bounds that to an election timeout);
//   - a put with a lease whose revoke was acknowledged before the put began fails ("requested
//     lease not found");
//   - every member's live keys and leases name each other, and members at one applied index
//     hold the same leases (LeaseDigest);
//   - once healed, every lease expires and is revoked everywhere (liveness).
// The revokes' effect on keys is checked with the client history (history.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "base/ids.h"
#include "base/status.h"
#include "lease/lessor.h"
#include "mvcc/store.h"

namespace dolmen::sim {

struct LeaseRecord {
  int client = 0;
  int64_t ttl_seconds = 0;  // asked for; the granted TTL once acknowledged
  bool granted = false;     // the grant was acknowledged
  bool keep_alive = false;  // the client keeps it alive while the load runs
  bool dead = false;        // the client stopped using it (revoked, or a keep-alive refused)
  uint64_t next_keep_alive_ms = 0;
  // The lease must live until at least here: a grant's or acknowledged keep-alive's start
  // plus the TTL.
  uint64_t alive_until_ms = 0;
  std::string alive_because;           // which grant or keep-alive set alive_until_ms
  std::optional<uint64_t> revoked_ms;  // a revoke applied (acknowledged) by this time
};

class LeaseBook {
 public:
  LeaseRecord& New(int64_t id, int client, int64_t ttl_seconds, uint64_t now_ms);
  LeaseRecord* Find(int64_t id);
  const std::map<int64_t, LeaseRecord>& all() const { return leases_; }

  void Granted(int64_t id, int64_t ttl_seconds);
  void KeptAlive(int64_t id, int64_t ttl_seconds, uint64_t started_ms);
  // A revoke of `id` applied by `now_ms` (acknowledged, or refused because the lease was gone).
  void Revoked(int64_t id, uint64_t now_ms);

  // The leader proposes revoking `id` on expiry at `now_ms`: a violation if too early.
  std::optional<std::string> CheckExpiry(int64_t id, uint64_t now_ms, MemberId leader) const;
  // A put with `lease`, begun at `invoked_ms`, succeeded: a violation if the lease was revoked
  // before.
  std::optional<std::string> CheckLeasedPut(int64_t lease, uint64_t invoked_ms) const;

 private:
  std::map<int64_t, LeaseRecord> leases_;
};

// A member's leases and their keys, as one number (members at one applied index must agree),
// after checking that its store and its lessor agree: every live key with a lease names one the
// lessor holds with that key attached, and every key the lessor lists is live with that lease.
Result<uint64_t> LeaseDigest(const lease::Lessor& lessor, const mvcc::Store& store);

}  // namespace dolmen::sim
