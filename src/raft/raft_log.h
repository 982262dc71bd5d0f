// RaftLog: the log as one node's Raft sees it: stable entries (in Storage) followed by unstable
// ones (not yet persisted), plus the commit and apply positions.
//
// Invariant: applied <= committed <= LastIndex(). Owned by Raft; single-threaded.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "base/status.h"
#include "raft/storage.h"
#include "raft/unstable.h"

namespace dolmen::raft {

class RaftLog {
 public:
  // storage must outlive the log. max_committed_bytes bounds the entries handed out to apply in
  // one Ready.
  RaftLog(Storage* storage, uint64_t max_committed_bytes);

  Index FirstIndex() const;
  Index LastIndex() const;
  Term LastTerm() const;
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }

  // The term of entry i; kCompacted if i precedes the log, kOutOfRange if beyond it.
  Result<Term> TermAt(Index i) const;
  // TermAt, with 0 for any index the log does not hold.
  Term ZeroTermOnError(Index i) const;
  bool MatchTerm(Index i, Term t) const;
  // §5.4.1: whether a candidate whose last entry is (last_index, last_term) is at least as
  // up-to-date as this log.
  bool IsUpToDate(Index last_index, Term last_term) const;

  // Follower side of AppendEntries: if the log holds (index, log_term), appends `entries` (after
  // dropping any conflicting suffix) and commits up to min(committed, last new index). Returns
  // the last new index, or nullopt if the log does not match.
  std::optional<Index> MaybeAppend(Index index, Term log_term, Index committed,
                                   const std::vector<Entry>& entries);
  // Leader side: appends entries after the last index. Returns the new last index.
  Index Append(const std::vector<Entry>& entries);
  // The index of the first entry in `entries` that is not in the log with the same term, or 0.
  Index FindConflict(const std::vector<Entry>& entries) const;
  // The largest index <= index whose term is <= term, and that term (fast backtracking when an
  // append is rejected: everything after it certainly differs).
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  // Entries in [lo, hi) up to max_bytes (at least one). kCompacted if lo is compacted.
  Result<std::vector<Entry>> Slice(Index lo, Index hi, uint64_t max_bytes) const;
  // Entries from i to the end, up to max_bytes.
  Result<std::vector<Entry>> EntriesFrom(Index i, uint64_t max_bytes) const;

  const std::vector<Entry>& UnstableEntries() const { return unstable_.entries(); }
  const std::optional<Snapshot>& UnstableSnapshot() const { return unstable_.snapshot(); }
  bool HasNextCommittedEntries() const;
  // Committed entries not yet applied, bounded by max_committed_bytes.
  std::vector<Entry> NextCommittedEntries() const;
  // The latest snapshot: the unstable one if any, else storage's.
  Result<Snapshot> GetSnapshot() const;

  // Raises the commit index (never lowers it). CHECKs it stays within the log.
  void CommitTo(Index i);
  // The leader's commit rule: commits i only if entry i is from `term` (§5.4.2). With
  // `allow_previous_term` (a test-only knob that breaks Raft) it counts any term.
  bool MaybeCommit(Index i, Term term, bool allow_previous_term = false);
  void AppliedTo(Index i);
  void StableTo(Index i, Term t) { unstable_.StableTo(i, t); }
  // The last index the caller has persisted: everything before the first unstable entry.
  Index PersistedLastIndex() const {
    if (auto first = unstable_.MaybeFirstIndex()) return Index(first->value() - 1);
    return LastIndex();
  }
  void StableSnapshotTo(Index i) { unstable_.StableSnapshotTo(i); }
  // Replaces the log by a snapshot (a follower far behind the leader).
  void Restore(Snapshot s);

 private:
  Storage* storage_;
  Unstable unstable_;
  Index committed_;
  Index applied_;
  uint64_t max_committed_bytes_;
};

}  // namespace dolmen::raft
