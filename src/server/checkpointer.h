// When applied entries reach the backend, and when the log can let them go.
//
// Batch commits: applied entries are committed to the backend (with the applied index in the
// same backend transaction) in batches spanning many Raft turns: when the oldest uncommitted
// one is backend_commit_interval old, or backend_commit_entries / _bytes wait; and at once
// before a checkpoint, a snapshot install and a task.
//
// Checkpoints, in two halves so the backend's fsync runs beside the loop: Begin commits the
// batch and names the index the sync will cover (an effect: the shell runs the sync on its
// syncer thread, the simulator wherever it likes); Finish, once the sync completed (an event),
// records a snapshot marker in the WAL, compacts the in-memory Raft log behind
// catch_up_entries and releases WAL segments. One sync at a time.
//
// Owner thread only. No clock: time is passed in; `stopwatch` (may be null) only measures the
// backend commit for etcd_disk_backend_commit_duration_seconds and decides nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "mvcc/store.h"
#include "raft/memory_storage.h"
#include "server/driver_options.h"
#include "server/member_events.h"
#include "wal/wal.h"

namespace dolmen::server {

class Checkpointer {
 public:
  struct Deps {
    wal::Wal* wal = nullptr;
    mvcc::Store* store = nullptr;
    raft::MemoryStorage* storage = nullptr;
    const Clock* stopwatch = nullptr;
  };
  Checkpointer(Deps deps, const DriverOptions& options) : deps_(deps), options_(options) {}

  void Start(TimePoint now) { last_checkpoint_ = now; }

  // A batch of committed entries was applied (up to `last`; `consistent` is the backend's
  // index before it): they join the store's uncommitted batch, which is committed if due.
  // `commit_now`: commit it at once (the member was removed and will not get another turn).
  dolmen::Status Applied(const std::vector<raft::Entry>& entries, uint64_t last,
                         uint64_t consistent, TimePoint now, bool commit_now);
  // Both return an error only when the member must stop: the backend commit failed.
  dolmen::Status MaybeCommitBatch(TimePoint now);
  dolmen::Status CommitBatch();
  // When the batch must be committed at the latest (nullopt: nothing uncommitted).
  std::optional<TimePoint> CommitDue() const;

  // The first half, if a checkpoint is due and none is in flight: commits the batch and returns
  // the applied index the backend sync must cover (the caller runs the sync, then Finish).
  // `conf_state` is Raft's configuration as of `applied`.
  Result<std::optional<uint64_t>> MaybeBegin(TimePoint now, uint64_t applied,
                                             const raft::ConfState& conf_state);
  // The same, due or not (at a clean stop).
  Result<std::optional<uint64_t>> Begin(TimePoint now, uint64_t applied,
                                        const raft::ConfState& conf_state);
  // The sync could not be started (the syncer stopped), or a snapshot from the leader being
  // written supersedes it: the next checkpoint tries again.
  void SyncNotStarted() { sync_in_flight_ = false; }
  // The second half, once the sync of `applied` completed with `synced`. An error only when the
  // member must stop: a failed backend sync (after a failed fsync the kernel may have dropped
  // the dirty pages, so nothing of the log may be released and a retry would lie).
  dolmen::Status Finish(uint64_t applied, const dolmen::Status& synced);

  // A snapshot from the leader was installed: the backend is synced up to `index`.
  void SnapshotInstalled(uint64_t index, TimePoint now);

 private:
  const Deps deps_;
  const DriverOptions options_;
  // Applied but not yet committed to the backend (the store's batch).
  uint64_t uncommitted_entries_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  uint64_t uncommitted_index_ = 0;  // the consistent index the next commit records
  TimePoint uncommitted_since_;
  uint64_t entries_since_checkpoint_ = 0;
  TimePoint last_checkpoint_;
  uint64_t last_checkpoint_index_ = 0;
  bool sync_in_flight_ = false;
  raft::ConfState checkpoint_conf_state_;  // as of the index the checkpoint in flight covers
};

}  // namespace dolmen::server
