// Rebuilds the Raft log from WAL records in the order they were written, applying the rules
// that make a later record win: an entry at an index at or below the last one replaces the tail
// from that index (Raft log truncation, Raft paper section 5.3), and a snapshot marker drops the
// entries it covers. Used by Wal::Open and by the decoder fuzz entry point.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "raft/types.h"
#include "wal/record.h"

namespace dolmen::wal {

class LogBuilder {
 public:
  // Returns an error text (empty if fine) when the entry cannot follow what came before: index
  // 0, or a gap after the last entry. `location` ("wal segment X offset N") is remembered when
  // the entry starts the log, for Finish's message.
  std::string AddEntry(raft::Entry entry, std::string_view location);
  void SetSnapshot(const raft::SnapshotMetadata& meta);
  void SetHardState(const raft::HardState& hs) { hard_state_ = hs; }

  // Call after the last record. kCorruption if the log does not continue right after the
  // snapshot, unless `head_released` (the first segment is gone): then the caller's snapshot or
  // backend covers what lies between. Checked at the end, not per record, because the first
  // segment left after a release may begin with entries that continue a log whose head is gone,
  // under a stale snapshot marker that a later marker supersedes (docs/wal.md, "Release").
  Status Finish(bool head_released) const;

  const std::vector<raft::Entry>& entries() const { return entries_; }
  std::vector<raft::Entry> TakeEntries() { return std::move(entries_); }
  const raft::HardState& hard_state() const { return hard_state_; }
  const std::optional<raft::SnapshotMetadata>& snapshot() const { return snapshot_; }
  // Highest index in the log, or the snapshot's index if that is higher; 0 if neither.
  Index LastIndex() const;

 private:
  std::vector<raft::Entry> entries_;  // consecutive indexes, all above the snapshot's
  raft::HardState hard_state_;
  std::optional<raft::SnapshotMetadata> snapshot_;
  std::string start_location_;  // where entries_.front() was read
};

// Folds one checksummed record into `builder`. `metadata` receives the first metadata record;
// later ones must be equal. Undecodable payloads and impossible entries are kCorruption naming
// `path` and the record's offset.
Status ApplyRecord(const RawRecord& record, const std::string& path, LogBuilder* builder,
                   std::optional<std::string>* metadata);

}  // namespace dolmen::wal
