// InvariantChecker: the Raft safety properties (paper Figure 3), checked incrementally as the
// simulator runs, so that each check costs only what changed in the step:
//   election safety       at most one leader per term;
//   log matching          two logs holding an entry with the same index and term hold the same
//                         entry there and agree on the entry before it (by induction, on the
//                         whole prefix);
//   leader completeness   a new leader's log holds every entry committed so far;
//   state machine safety  no two nodes apply different entries at one index (compared through a
//                         hash chain over everything applied up to that index);
//   no committed entry lost  no node that holds a committed entry ever replaces it (a stale
//                         node may hold something else at that index until it catches up);
// plus linearizable ReadIndex: a read's index covers everything committed before it was asked.
// The first violation is kept; the simulator stops there.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "raft/memory_storage.h"
#include "raft/raft_log.h"

namespace dolmen::raft::sim {

class InvariantChecker {
 public:
  // A node is leader of `term` with `log` (called every step it is leader; cheap after the first).
  void OnLeader(MemberId id, Term term, const RaftLog& log);
  // A node is about to persist `entries` into `storage` (before appending them).
  void OnBeforePersistEntries(MemberId id, const std::vector<Entry>& entries,
                              const MemoryStorage& storage);
  // A node persisted `entries` into `storage` (after appending them).
  void OnPersistEntries(MemberId id, const std::vector<Entry>& entries,
                        const MemoryStorage& storage);
  // A node persisted commit index `commit`; its log is `storage`.
  void OnCommit(MemberId id, Index commit, const MemoryStorage& storage);
  // A node applied `index`; `state` is its state machine's hash after it.
  void OnApply(MemberId id, Index index, uint64_t state);
  // A read asked when the highest persisted commit anywhere was `committed_then` was answered
  // with `read_index`.
  void OnReadState(MemberId id, Index committed_then, Index read_index);

  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  Index max_committed() const { return max_committed_; }
  uint64_t leader_terms() const { return leaders_.size(); }
  const std::map<uint64_t, Term>& committed() const { return committed_; }

 private:
  void Fail(std::string what);

  std::string failure_;
  std::map<Term, MemberId> leaders_;
  // (index, term) -> (hash of the entry, term of the entry before it in the log that held it)
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> entries_;
  std::map<uint64_t, Term> committed_;    // index -> term of every entry known committed
  std::map<uint64_t, uint64_t> applied_;  // index -> state hash after applying it
  std::map<MemberId, Index> commit_seen_;
  Index max_committed_;
};

uint64_t HashEntry(const Entry& e);

}  // namespace dolmen::raft::sim
