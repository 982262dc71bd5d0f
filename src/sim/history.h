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
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dolmen::sim {

struct ClientOp {
  enum class Kind { kPut, kCas, kDelete, kRead };
  enum class Outcome { kPending, kOk, kFailed };
  uint64_t id = 0;
  int client = 0;
  Kind kind = Kind::kRead;
  std::string key;
  std::string value;     // put, cas: what is written (unique per operation)
  std::string expected;  // cas: the value compared against
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
  // `read` completed.
  bool MaybeDeletedBefore(const ClientOp& read) const;

  const std::vector<ClientOp>& ops_;
  // op index -> the revision of its write, for writes known (ok) or learned (failed, then read).
  std::map<size_t, int64_t> write_revision_;
};

}  // namespace dolmen::sim
