// Client histories and their linearizability check (issue 18 item 4; STYLE.md section 6: test
// against a simple model). Every client operation is recorded with the virtual times it was
// invoked and completed and what it returned. etcd's revisions make the check cheap: every
// write that took effect has a unique store revision, and every read says at which revision it
// read, so instead of searching for an order (Wing & Gong) the checker verifies that the order
// the revisions give is one a linearizable store could have produced:
//   1. no two writes share a revision;
//   2. real time: an operation that began after another completed carries a revision at least
//      as high (strictly higher if it wrote);
//   3. registers: a read of key k at revision R returns the value of the write to k with the
//      highest revision <= R (or nothing, if that write was a delete or there is none), and
//      the revision it reports for it is that write's.
// A write that failed (timed out, its member crashed) may or may not have taken effect: its
// revision is unknown until a read returns its value (values are unique), and the checker
// learns it from there; one never read cannot be checked and is never wrongly blamed.
//
// Leases. A put may carry a lease; revoking the lease (a client's revoke, or the leader's on
// expiry) deletes every key still attached to it, at the revoke's revision. A revoke is recorded
// as an operation on the lease: a read of key k at revision R whose latest write is a put with
// lease L must find nothing if a revoke of L has a revision in (that put's, R], and may find
// nothing only then, or if a revoke of L that failed (so may have taken effect) began before
// the read completed. Grants change no key and are recorded only for the trace.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dolmen::sim {

struct ClientOp {
  enum class Kind { kPut, kCas, kDelete, kRead, kGrant, kRevoke };
  enum class Outcome { kPending, kOk, kFailed };
  uint64_t id = 0;
  int client = 0;
  Kind kind = Kind::kRead;
  std::string key;
  std::string value;        // put, cas: what is written (unique per operation)
  std::string expected;     // cas: the value compared against
  int64_t lease = 0;        // put: the lease attached (0: none); grant, revoke: the lease
  int64_t ttl_seconds = 0;  // grant: asked for, then granted
  uint64_t invoked_ms = 0;
  uint64_t completed_ms = 0;
  Outcome outcome = Outcome::kPending;
  std::string error;  // kFailed: why
  // kOk: the response header's revision (a write's own revision when it wrote).
  int64_t revision = 0;
  bool wrote = false;  // a put, a cas that succeeded, a delete that deleted
  // A read of `key` at `revision` (a read, a cas that failed, a delete that found nothing):
  bool observed = false;
  bool found = false;
  std::string read_value;
  int64_t mod_revision = 0;

  std::string Describe() const;
};

class HistoryChecker {
 public:
  // `ops`: every operation of the run, completed or not.
  explicit HistoryChecker(const std::vector<ClientOp>& ops) : ops_(ops) {}
  // The first violation found, or nullopt.
  std::optional<std::string> Check();

 private:
  std::optional<std::string> CheckUniqueRevisions();
  std::optional<std::string> LearnFailedWrites();
  std::optional<std::string> CheckRealTime();
  std::optional<std::string> CheckRegisters();
  // Whether a delete of `read`'s key that failed (and so may have taken effect) began before
  // `read` completed; or a put with a lease that failed (and so may have taken effect), whose
  // lease was revoked.
  bool MaybeDeletedBefore(const ClientOp& read) const;
  // Whether a revoke of `lease` took effect at a revision in (after, upto].
  bool RevokedBetween(int64_t lease, int64_t after, int64_t upto) const;
  // Whether a revoke of `lease` that failed began before `read` completed.
  bool MaybeRevokedBefore(int64_t lease, const ClientOp& read) const;

  const std::vector<ClientOp>& ops_;
  // op index -> the revision of its write, for writes known (ok) or learned (failed, then read).
  std::map<size_t, int64_t> write_revision_;
  // lease -> the revisions of its revokes that succeeded.
  std::map<int64_t, std::vector<int64_t>> revoked_at_;
};

}  // namespace dolmen::sim
