// The LMDB backend's class, shared by its core (lmdb_backend.cc), its transactions
// (lmdb_txn.cc) and its defragmentation (lmdb_defragment.cc). Internal to this folder.
#pragma once

#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "backend/lmdb/journal.h"
#include "backend/lmdb/lmdb_env.h"
#include "backend/lmdb/lmdb_txn.h"
#include "base/check.h"

namespace dolmen::backend::lmdb_internal {

class LmdbBackend final : public Backend {
 public:
  LmdbBackend(MDB_env* env, EnvSpec spec, DbiMap dbis)
      : spec_(std::move(spec)),
        file_(spec_.file),
        live_(std::make_shared<LiveEnv>(env, "")),
        dbis_(std::make_shared<const DbiMap>(std::move(dbis))) {
    RefreshSizes(/*rewritten=*/true);
  }
  ~LmdbBackend() override {
    CHECK(!writer_open_) << "a WriteTxn outlived its Backend";
    CHECK_EQ(live_.use_count(), 1) << "ReadTxns outlived their Backend";
  }

  Result<std::unique_ptr<ReadTxn>> BeginRead() override;
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override;

  Status Sync() override;

  Status Defragment() override;
  Result<std::unique_ptr<PreparedDefragment>> PrepareDefragment() override;

  // Both as of the last commit (RefreshSizes): the quota checks SizeBytes for every write
  // request, on the API thread and again when applying, so reading it must cost nothing.
  uint64_t SizeBytes() override { return size_bytes_.load(std::memory_order_relaxed); }
  uint64_t SizeInUseBytes() override { return in_use_bytes_.load(std::memory_order_relaxed); }

  Status CopyTo(const std::string& path) override;

  // --- For LmdbWriteTxn.
  const std::string& file() const { return file_; }
  std::shared_ptr<const DbiMap> dbis() {
    std::lock_guard lock(env_mu_);
    return dbis_;
  }
  // Commits a txn that created buckets and publishes their handles atomically with respect to
  // BeginRead: a reader either sees neither the new buckets nor their handles, or both.
  int CommitAndPublish(MDB_txn* txn, const DbiMap& created) {
    std::lock_guard lock(env_mu_);
    int rc = mdb_txn_commit(txn);
    if (rc == 0) {
      auto merged = std::make_shared<DbiMap>(*dbis_);
      merged->insert(created.begin(), created.end());
      dbis_ = std::move(merged);
    }
    return rc;
  }
  void WriterDone() {
    {
      std::lock_guard lock(journal_mu_);
      ++writes_done_;
      writer_open_ = false;
    }
    journal_cv_.notify_all();
  }
  // A write txn that recorded into `journal` committed: its ops join it, in commit order (the
  // writer is alone, and this runs before WriterDone).
  void AppendToJournal(Journal& journal, std::vector<JournalOp> ops) {
    std::lock_guard lock(journal_mu_);
    if (journal.overflowed) return;
    for (JournalOp& op : ops) {
      journal.bytes += op.bucket.size() + op.key.size() + op.value.size() + sizeof(JournalOp);
      journal.ops.push_back(std::move(op));
    }
    if (journal.bytes > kMaxJournalBytes) {
      journal.overflowed = true;
      journal.ops.clear();
      journal.ops.shrink_to_fit();
    }
  }

  // --- For LmdbPreparedDefragment.
  struct DefragCopy {
    std::string tmp;  // the compacted copy, next to the data file
    MDB_env* env = nullptr;
    DbiMap dbis;  // its bucket handles
    std::shared_ptr<Journal> journal;
  };
  Status FinishDefragment(DefragCopy& copy);
  void AbandonDefragment(DefragCopy& copy);
  // Recomputes the sizes from the state the last commit left; `rewritten` when that state was
  // just opened or defragmented, which starts the peak (SizeBytes) again from what is in use.
  // Called by the writer, or by a defragmentation's swap while it holds the writer back: one
  // caller at a time, so the plain load-and-store of the peak races with nobody.
  void RefreshSizes(bool rewritten) {
    std::optional<uint64_t> in_use = InUseBytes(CurrentEnv()->env);
    if (!in_use) return;  // keep the last values; the next commit tries again
    const uint64_t peak = size_bytes_.load(std::memory_order_relaxed);
    in_use_bytes_.store(*in_use, std::memory_order_relaxed);
    size_bytes_.store(rewritten ? *in_use : std::max(peak, *in_use), std::memory_order_relaxed);
  }

 private:
  // Readers see the file through a read-only shared mapping, and every page a put or read
  // touched stays mapped: after a bulk load the whole file counts in the member's RSS although
  // it is only page cache. At each checkpoint the mapping's page table entries are dropped
  // (MADV_DONTNEED on a read-only file mapping discards nothing: the pages stay cached and the
  // next access maps them again with a minor fault, concurrent readers included).
  void ReleaseMappedPages(MDB_env* env);

  // The start of the mapping of `file` in this process (from /proc/self/maps), or null.
  static void* FindMapping(const std::string& file, size_t* bytes);

  // Writes a compacted copy of the committed state to `tmp`, synced, beside the writer.
  Status CopyCompactly(const std::string& tmp);
  // Replays the journal's ops taken so far onto the copy, in one txn; `replayed` counts them.
  Status ReplayJournal(DefragCopy& copy, size_t* replayed);
  // Replays rounds beside the writer until one replays few ops (or kMaxCatchUpRounds).
  Status CatchUp(DefragCopy& copy);
  // With no write txn open and none beginning (run by the next writer itself, or with BeginWrite
  // held back): the last replay, and the copy becomes the environment every later txn uses.
  // Returns the environment it replaced.
  Result<std::shared_ptr<LiveEnv>> SwitchTo(DefragCopy& copy);
  // After SwitchTo, beside the writer: the copy synced and renamed over the data file.
  Status PutInPlace(const std::string& tmp, MDB_env* env);
  // A switch waiting for the writer: made by the next BeginWrite, or by its Finish.
  struct PendingSwitch {
    DefragCopy* copy;
    bool done = false;  // guarded by journal_mu_, as old
    Result<std::shared_ptr<LiveEnv>> old = Status(Code::kInternal, "switch not made");
  };
  // Finish's: SwitchTo between two write txns; the environment it replaced.
  Result<std::shared_ptr<LiveEnv>> SwitchAtWriterBoundary(DefragCopy& copy);
  // BeginWrite's, before its txn begins, when a switch waits (it took switch_).
  void SwitchForDefragment(PendingSwitch& pending);
  PendingSwitch* TakePendingSwitch() { return std::exchange(switch_, nullptr); }
  // Ends recording into `journal` (its defragmentation finished or gave up).
  void StopJournal(const std::shared_ptr<Journal>& journal) {
    std::lock_guard lock(journal_mu_);
    if (journal_ == journal) journal_ = nullptr;
  }

  // Bytes of the pages of the latest committed state (docs/maintenance.md, "What dbSize
  // counts"): the two meta pages, and the branch, leaf and overflow pages of the free-page DB,
  // the main DB and every bucket; pages on the free list are not counted. Read from each DB's
  // record in one read txn, so it costs a lookup per bucket, whatever the size of the data or
  // of the free list. nullopt if LMDB refuses the read txn.
  std::optional<uint64_t> InUseBytes(MDB_env* env);

  std::shared_ptr<LiveEnv> CurrentEnv() {
    std::lock_guard lock(env_mu_);
    return live_;
  }

  const EnvSpec spec_;
  const std::string file_;
  // The environment new txns use, and its bucket handles. Replaced only by a defragmentation's
  // swap, while no write txn is open; each txn holds the environment it began in, which is
  // closed when the last of them ends (docs/maintenance.md, "The swap").
  std::mutex env_mu_;
  std::shared_ptr<LiveEnv> live_;       // guarded by env_mu_
  std::shared_ptr<const DbiMap> dbis_;  // guarded by env_mu_
  // Held by a defragmentation from before its swap until the copy is durably in place, and by
  // Sync: a Sync never reports durable what only the copy holds while the old file is still in
  // place.
  std::mutex durable_mu_;
  Status sync_error_;  // guarded by durable_mu_; sticky: the copy could not be put in place
  std::atomic<bool> writer_open_ = false;  // written under journal_mu_
  // While a defragmentation is prepared: the journal every committed write txn adds to.
  std::mutex journal_mu_;
  std::condition_variable journal_cv_;  // signalled as each write txn ends, and by switches
  std::shared_ptr<Journal> journal_;    // guarded by journal_mu_
  uint64_t writes_begun_ = 0;           // guarded by journal_mu_
  uint64_t writes_done_ = 0;            // guarded by journal_mu_
  bool writer_held_ = false;            // guarded by journal_mu_: BeginWrite waits meanwhile
  PendingSwitch* switch_ = nullptr;     // guarded by journal_mu_
  uint64_t copies_made_ = 0;            // guarded by journal_mu_: names each copy's file
  // Written by RefreshSizes only; see SizeBytes and SizeInUseBytes in backend.h.
  std::atomic<uint64_t> size_bytes_ = 0;
  std::atomic<uint64_t> in_use_bytes_ = 0;
};

Result<std::unique_ptr<Backend>> OpenEnv(EnvSpec spec);

}  // namespace dolmen::backend::lmdb_internal
