// MemoryStorage: a Storage that keeps the log in memory. The server backs it with the WAL (it
// replays the WAL into it at start and appends to both); tests and the simulator use it alone.
// Not thread-safe: the thread that drives the RawNode owns it.
#pragma once

#include <optional>
#include <vector>

#include "raft/storage.h"

namespace dolmen::raft {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();
  // The storage of an initial member of a new cluster: it holds a snapshot at index 1, term 1
  // whose configuration is `conf_state` (the same on every initial member). A member added
  // later starts empty instead and receives that configuration from the leader, as a snapshot
  // or in later conf change entries; this is why the initial configuration lives in a snapshot
  // rather than only in each node's memory.
  explicit MemoryStorage(ConfState conf_state);

  Result<InitialState> GetInitialState() const override;
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<Snapshot> GetSnapshot() const override;

  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }

  // Appends entries, replacing any existing entries from the first new index on. The first new
  // index must be <= LastIndex() + 1; entries at or before the snapshot are skipped.
  Status Append(const std::vector<Entry>& entries);
  // Replaces the whole log with a snapshot. Fails with kFailedPrecondition when it is older than
  // the snapshot already held.
  Status ApplySnapshot(Snapshot snapshot);
  // Records a snapshot of the state machine at index i (<= LastIndex()); conf_state as of i.
  Result<Snapshot> CreateSnapshot(Index i, const ConfState& conf_state, std::string data);
  // Discards entries up to and including compact_index (which must be <= LastIndex()).
  Status Compact(Index compact_index);

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is a placeholder carrying the snapshot's index and term, so that the term at
  // the snapshot index can always be answered.
  std::vector<Entry> entries_;
};

}  // namespace dolmen::raft
