#include "server/checkpointer.h"

#include <algorithm>

#include "log/log.h"
#include "server/server_metrics.h"

namespace dolmen::server {

dolmen::Status Checkpointer::Applied(const std::vector<raft::Entry>& entries, uint64_t last,
                                     uint64_t consistent, TimePoint now, bool commit_now) {
  if (uncommitted_entries_ == 0) uncommitted_since_ = now;
  uncommitted_entries_ += entries.size();
  for (const raft::Entry& e : entries) uncommitted_bytes_ += e.data.size();
  uncommitted_index_ = std::max({uncommitted_index_, last, consistent});
  entries_since_checkpoint_ += entries.size();
  return commit_now ? CommitBatch() : MaybeCommitBatch(now);
}

dolmen::Status Checkpointer::MaybeCommitBatch(TimePoint now) {
  const bool due =
      uncommitted_entries_ >= options_.backend_commit_entries ||
      uncommitted_bytes_ >= options_.backend_commit_bytes ||
      (uncommitted_entries_ > 0 && now - uncommitted_since_ >= options_.backend_commit_interval);
  return due ? CommitBatch() : OkStatus();
}

dolmen::Status Checkpointer::CommitBatch() {
  if (uncommitted_entries_ == 0) return OkStatus();
  uncommitted_entries_ = 0;
  uncommitted_bytes_ = 0;
  // A failed commit is fatal (the caller stops the member): the batch's entries are in the log,
  // which is never released past what the backend holds durably.
  const TimePoint start = deps_.stopwatch ? deps_.stopwatch->Now() : TimePoint();
  dolmen::Status committed = deps_.store->Commit(Index(uncommitted_index_));
  if (deps_.stopwatch) {
    metric::BackendCommitSeconds().Observe(
        std::chrono::duration<double>(deps_.stopwatch->Now() - start).count());
  }
  return committed;
}

std::optional<TimePoint> Checkpointer::CommitDue() const {
  if (uncommitted_entries_ == 0) return std::nullopt;
  return uncommitted_since_ + options_.backend_commit_interval;
}

Result<std::optional<uint64_t>> Checkpointer::MaybeBegin(TimePoint now, uint64_t applied,
                                                         const raft::ConfState& conf_state) {
  if (sync_in_flight_) return std::optional<uint64_t>();  // the next is due again after it
  const bool due =
      entries_since_checkpoint_ >= options_.checkpoint_entries ||
      (entries_since_checkpoint_ > 0 && now - last_checkpoint_ >= options_.checkpoint_interval);
  if (!due) return std::optional<uint64_t>();
  ASSIGN_OR_RETURN(std::optional<uint64_t> at, Begin(now, applied, conf_state));
  // The fsync can take long on a busy disk: it runs beside the loop, which keeps ticking,
  // sending heartbeats and committing batches meanwhile (those may or may not be in this sync;
  // the checkpoint claims only `applied`, committed before the sync began).
  if (at) sync_in_flight_ = true;
  return at;
}

Result<std::optional<uint64_t>> Checkpointer::Begin(TimePoint now, uint64_t applied,
                                                    const raft::ConfState& conf_state) {
  entries_since_checkpoint_ = 0;
  last_checkpoint_ = now;
  // The checkpoint covers every applied entry: commit them to the backend first.
  RETURN_IF_ERROR(CommitBatch());
  if (applied <= last_checkpoint_index_) return std::optional<uint64_t>();
  checkpoint_conf_state_ = conf_state;
  return std::optional<uint64_t>(applied);
}

dolmen::Status Checkpointer::Finish(uint64_t applied, const dolmen::Status& synced) {
  sync_in_flight_ = false;
  if (!synced.ok()) {
    log::Error("checkpoint: the backend sync failed, stopping",
               {{"applied-index", applied}, {"error", synced.ToString()}});
    return synced;
  }
  // A snapshot from the leader installed meanwhile already moved the checkpoint past this one.
  if (applied <= last_checkpoint_index_) return OkStatus();
  // The backend became durable up to `applied`; a snapshot marker there lets the log before it
  // go. The leader keeps catch_up_entries more in memory for followers slightly behind.
  dolmen::Status s;
  auto term = deps_.storage->TermAt(Index(applied));
  if (!term.ok()) s = term.status();
  if (s.ok()) {
    raft::SnapshotMetadata meta;
    meta.index = Index(applied);
    meta.term = *term;
    meta.conf_state = checkpoint_conf_state_;
    s = deps_.wal->SaveSnapshot(meta);
  }
  if (s.ok()) {
    s = deps_.storage->CreateSnapshot(Index(applied), checkpoint_conf_state_, "").status();
  }
  if (s.ok() && applied > options_.catch_up_entries &&
      applied - options_.catch_up_entries > deps_.storage->FirstIndex().value()) {
    s = deps_.storage->Compact(Index(applied - options_.catch_up_entries));
  }
  // A segment holding more than a little of the log is closed here so it can be released now.
  constexpr uint64_t kCutAtCheckpointBytes = 1 << 20;
  if (s.ok()) s = deps_.wal->CutIfAtLeast(kCutAtCheckpointBytes);
  if (s.ok()) s = deps_.wal->ReleaseTo(Index(applied + 1));
  if (!s.ok()) {
    // Not fatal here: the log still holds everything and the next checkpoint tries again (a
    // failed WAL write is sticky inside the Wal, so the next append stops the member).
    log::Warn("checkpoint failed", {{"applied-index", applied}, {"error", s.ToString()}});
    return OkStatus();
  }
  last_checkpoint_index_ = applied;
  return OkStatus();
}

void Checkpointer::SnapshotInstalled(uint64_t index, TimePoint now) {
  last_checkpoint_index_ = index;
  entries_since_checkpoint_ = 0;
  last_checkpoint_ = now;
}

}  // namespace dolmen::server
