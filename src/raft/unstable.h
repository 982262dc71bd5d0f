// Unstable: entries (and at most one snapshot) that Raft has accepted but the caller has not yet
// persisted. They leave through Ready and become stable on Advance.
#pragma once

#include <optional>
#include <vector>

#include "raft/message.h"

namespace dolmen::raft {

class Unstable {
 public:
  // `offset` is the index the first unstable entry will have.
  explicit Unstable(Index offset) : offset_(offset) {}

  std::optional<Index> MaybeFirstIndex() const;
  std::optional<Index> MaybeLastIndex() const;
  std::optional<Term> MaybeTerm(Index i) const;

  // Entry (i, t) and everything before it are now durable. Ignored if the entry was since
  // replaced (its term changed) or is no longer unstable.
  void StableTo(Index i, Term t);
  void StableSnapshotTo(Index i);
  void Restore(Snapshot s);
  // Appends entries; any unstable entries at or after the first new index are dropped.
  void TruncateAndAppend(const std::vector<Entry>& entries);
  // Entries in [lo, hi), which must lie within the unstable entries.
  std::vector<Entry> Slice(Index lo, Index hi) const;

  const std::vector<Entry>& entries() const { return entries_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  Index offset() const { return offset_; }

 private:
  std::optional<Snapshot> snapshot_;
  std::vector<Entry> entries_;
  Index offset_;
};

}  // namespace dolmen::raft
