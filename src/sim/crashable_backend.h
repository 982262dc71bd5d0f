// A memory backend that can lose power the way LMDB does (backend.h, "Durability"): a commit
// is visible at once and ordered on disk, but only Sync() makes it durable, so after a crash the
// backend opens at a whole committed state no older than the last Sync(): the last commit, or
// the state the last Sync() saw. The simulator picks which.
//
// Owner: one simulated member's disk; it outlives the member's store and applier (a crash
// destroys those first, then calls Crash). Single-threaded, like everything in src/sim.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace dolmen::sim {

class CrashableBackend final : public backend::Backend {
 public:
  // Starts empty; the empty state counts as durable.
  CrashableBackend();

  // The power goes out: no txn may be open. `lose_unsynced_commits`: the state reopens at the
  // last Sync() (LMDB's pages of later commits never reached the disk); otherwise every commit
  // survives.
  void Crash(bool lose_unsynced_commits);
  uint64_t syncs() const { return syncs_; }
  uint64_t commits() const { return commits_; }

  // Disk faults on demand: the next write txn's Commit, or the next Sync, fails with an
  // "injected fault" IoError and changes nothing (the member's turn reports it and the member
  // stops, as a real one does when LMDB's commit or fsync fails). A crash clears them.
  void FailNextCommit() { fail_commit_ = true; }
  void FailNextSync() { fail_sync_ = true; }

  Result<std::unique_ptr<backend::ReadTxn>> BeginRead() override { return live_->BeginRead(); }
  Result<std::unique_ptr<backend::WriteTxn>> BeginWrite() override;
  Status Sync() override;
  uint64_t SizeBytes() override { return live_->SizeBytes(); }
  uint64_t SizeInUseBytes() override { return live_->SizeInUseBytes(); }
  Status CopyTo(const std::string& path) override { return live_->CopyTo(path); }
  Status Defragment() override { return live_->Defragment(); }

 private:
  std::unique_ptr<backend::Backend> live_;
  std::unique_ptr<backend::Backend> durable_;  // a copy of live_ as of the last Sync
  uint64_t syncs_ = 0;
  uint64_t commits_ = 0;  // write txns committed
  bool fail_commit_ = false;
  bool fail_sync_ = false;
  class Txn;
};

// A new memory backend holding a copy of `source`'s committed state.
Result<std::unique_ptr<backend::Backend>> CopyBackend(backend::Backend& source);

}  // namespace dolmen::sim
