// Defragmentation of the LMDB backend in two steps (docs/maintenance.md, "Beside the loop"):
// a compacted copy made and caught up beside the writer (PrepareDefragment), then the swap
// (Finish): the writer held back only while the last writes are replayed onto the copy and
// every later txn is pointed at it; readers are never held back.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "backend/lmdb/lmdb_backend_impl.h"
#include "backend/lmdb/lmdb_compact_copy.h"
#include "backend/lmdb/paced_file_writer.h"
#include "log/log.h"

namespace dolmen::backend::lmdb_internal {
namespace {

// The paced copy (docs/maintenance.md, "The paced copy"): steps of 256 KiB, each handed to the
// disk on its own; at least 32 MiB/s, faster for a large database, so that the copy takes at
// most 10 s at the pace (the disk may be slower still).
constexpr size_t kCopyStepBytes = 256u << 10;
constexpr uint64_t kCopyFloorBytesPerSecond = 32u << 20;
constexpr std::chrono::seconds kCopyLongest{10};

}  // namespace

class LmdbPreparedDefragment final : public PreparedDefragment {
 public:
  LmdbPreparedDefragment(LmdbBackend* backend, LmdbBackend::DefragCopy copy)
      : backend_(backend), copy_(std::move(copy)) {}
  ~LmdbPreparedDefragment() override {
    if (!finished_) backend_->AbandonDefragment(copy_);
  }
  Status Finish() override {
    if (finished_) return Status(Code::kFailedPrecondition, "defragmentation already finished");
    finished_ = true;
    return backend_->FinishDefragment(copy_);
  }
  LmdbBackend::DefragCopy& copy() { return copy_; }

 private:
  LmdbBackend* backend_;
  LmdbBackend::DefragCopy copy_;
  bool finished_ = false;
};

Status LmdbBackend::Defragment() {
  if (spec_.flags & MDB_RDONLY) {
    return Status(Code::kFailedPrecondition, "cannot defragment read-only image " + file_);
  }
  // Checked first: PrepareDefragment would wait for this caller's own txn forever.
  if (writer_open_) return Status(Code::kFailedPrecondition, "defragment with a write txn open");
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedDefragment> prepared, PrepareDefragment());
  return prepared->Finish();
}

Result<std::unique_ptr<PreparedDefragment>> LmdbBackend::PrepareDefragment() {
  if (spec_.flags & MDB_RDONLY) {
    return Status(Code::kFailedPrecondition, "cannot defragment read-only image " + file_);
  }
  DefragCopy copy;
  copy.journal = std::make_shared<Journal>();
  {
    std::unique_lock lock(journal_mu_);
    if (journal_ != nullptr) {
      return Status(Code::kFailedPrecondition, "another defragmentation is in progress");
    }
    // Each copy is named apart: the environment in use may be an earlier copy, whose lock file
    // ("<copy>-lock") must not be opened by a second environment.
    // The data file is "<dir>/data.mdb": the copy's name starts with kDefragmentCopyPrefix.
    copy.tmp = file_ + ".defrag-" + std::to_string(++copies_made_);
    journal_ = copy.journal;
    // A write txn begun before the journal existed records nothing: wait until it ended, so
    // that every txn committing from here on is in the journal. The copy's snapshot is taken
    // after this, so the journal starts at or before it.
    const uint64_t begun = writes_begun_;
    if (!journal_cv_.wait_for(lock, kWriterEndWait, [&] { return writes_done_ >= begun; })) {
      journal_ = nullptr;
      return Status(Code::kTimeout, "defragment: the open write txn did not end");
    }
  }
  // From here on the object owns the copy: destroying it (on error too) removes it.
  auto prepared = std::make_unique<LmdbPreparedDefragment>(this, std::move(copy));
  DefragCopy& owned = prepared->copy();
  RETURN_IF_ERROR(CopyCompactly(owned.tmp));
  // The copy is this process's alone until the swap: no sync per commit, one at the end.
  ASSIGN_OR_RETURN(owned.env,
                   OpenRawEnv(EnvSpec{owned.tmp, owned.tmp, MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOTLS,
                                      spec_.options}));
  ASSIGN_OR_RETURN(owned.dbis, OpenExistingBuckets(owned.env, owned.tmp));
  // Catch up beside the writer while there is much to replay; Finish replays the rest.
  RETURN_IF_ERROR(CatchUp(owned));
  // Most of the copy reaches the disk here, so the syncs in Finish have little left to write.
  if (!spec_.options.no_sync) {
    if (int rc = mdb_env_sync(owned.env, 1); rc != 0) return FromMdb(rc, "sync", owned.tmp);
  }
  return std::unique_ptr<PreparedDefragment>(std::move(prepared));
}

Status LmdbBackend::CatchUp(DefragCopy& copy) {
  for (int round = 0; round < kMaxCatchUpRounds; ++round) {
    size_t replayed = 0;
    RETURN_IF_ERROR(ReplayJournal(copy, &replayed));
    if (replayed < kSmallCatchUpOps) break;
  }
  return OkStatus();
}

Status LmdbBackend::ReplayJournal(DefragCopy& copy, size_t* replayed) {
  std::vector<JournalOp> ops;
  {
    std::lock_guard lock(journal_mu_);
    if (copy.journal->overflowed) {
      return Status(Code::kResourceExhausted, "defragment: writes outpaced the copy (more than " +
                                                  std::to_string(kMaxJournalBytes) +
                                                  " bytes written meanwhile)");
    }
    ops.swap(copy.journal->ops);
    copy.journal->bytes = 0;
  }
  *replayed = ops.size();
  if (ops.empty()) return OkStatus();
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(copy.env, nullptr, 0, &txn);
  if (rc != 0) return FromMdb(rc, "begin write txn", copy.tmp);
  DbiMap opened;  // handles opened by this txn: valid for later txns only once it commits
  auto handle = [&](const std::string& bucket, MDB_dbi* dbi) {
    if (auto it = copy.dbis.find(bucket); it != copy.dbis.end()) {
      *dbi = it->second;
      return 0;
    }
    if (auto it = opened.find(bucket); it != opened.end()) {
      *dbi = it->second;
      return 0;
    }
    int err = mdb_dbi_open(txn, bucket.c_str(), MDB_CREATE, dbi);
    if (err == 0) opened.emplace(bucket, *dbi);
    return err;
  };
  for (const JournalOp& op : ops) {
    MDB_dbi dbi;
    rc = handle(op.bucket, &dbi);
    if (rc != 0) break;
    MDB_val k = ToVal(op.key);
    MDB_val v = ToVal(op.value);
    switch (op.kind) {
      case JournalOp::Kind::kPut:
        rc = mdb_put(txn, dbi, &k, &v, 0);
        break;
      case JournalOp::Kind::kDelete:
        rc = mdb_del(txn, dbi, &k, nullptr);
        if (rc == MDB_NOTFOUND) rc = 0;
        break;
      case JournalOp::Kind::kClearBucket:
        rc = mdb_drop(txn, dbi, 0);
        break;
    }
    if (rc != 0) break;
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return FromMdb(rc, "replay onto the defragmented copy", copy.tmp);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return FromMdb(rc, "commit the defragmented copy", copy.tmp);
  copy.dbis.merge(opened);
  return OkStatus();
}

// The swap (docs/maintenance.md, "The swap"), beside the writer but for one short hold. Crash
// safety: until the rename the data file is the old one, whole, holding every commit up to the
// switch; commits after the switch are only in the copy, but Sync waits (durable_mu_) until the
// copy is durably in place, so no checkpoint lets the write-ahead log go of them before then. A
// crash before the rename reopens the old file and replays the log from its applied index.
Status LmdbBackend::FinishDefragment(DefragCopy& copy) {
  // Beside the writer: catch up once more and sync, so that the hold below replays only what was
  // committed during this sync and the batch open at the hold, and waits for no fsync.
  Status status = CatchUp(copy);
  if (status.ok() && !spec_.options.no_sync) {
    if (int rc = mdb_env_sync(copy.env, 1); rc != 0) status = FromMdb(rc, "sync", copy.tmp);
  }
  if (!status.ok()) {
    AbandonDefragment(copy);
    return status;
  }
  std::lock_guard durable(durable_mu_);
  if (!sync_error_.ok()) {
    AbandonDefragment(copy);
    return sync_error_;
  }
  Result<std::shared_ptr<LiveEnv>> old = SwitchAtWriterBoundary(copy);
  if (!old.ok()) {
    AbandonDefragment(copy);
    return old.status();
  }
  old->reset();  // closed now, or when the last reader that began in it ends
  std::shared_ptr<LiveEnv> live = CurrentEnv();
  if (spec_.options.after_defragment_switch_for_test) {
    spec_.options.after_defragment_switch_for_test();
  }
  // Beside the writer again, which commits into the copy now.
  status = PutInPlace(copy.tmp, live->env);
  if (!status.ok()) {
    // The copy holds commits the data file lacks, and cannot replace it: no later Sync may
    // claim them durable, so the member stops at its next checkpoint and replays its log at
    // the next start.
    sync_error_ = Status(status.code(),
                         "defragment: the compacted copy could not be put in place "
                         "of the data file: " +
                             status.message());
    return sync_error_;
  }
  return OkStatus();
}

// The switch must fall between two write txns. The next BeginWrite makes it itself, on the
// writer's thread, before its txn begins: the writer waits for the replay of the last writes
// only, never for this thread to be scheduled (the maintenance thread runs at a lower priority).
// If no write txn begins, this thread makes it once the open one (if any) ended, holding
// BeginWrite back meanwhile.
Result<std::shared_ptr<LiveEnv>> LmdbBackend::SwitchAtWriterBoundary(DefragCopy& copy) {
  PendingSwitch pending{&copy};
  std::unique_lock lock(journal_mu_);
  switch_ = &pending;
  const bool idle_or_done =
      journal_cv_.wait_for(lock, kWriterEndWait, [&] { return pending.done || !writer_open_; });
  if (pending.done) return std::move(pending.old);
  if (switch_ != &pending) {
    // A write txn took it just now: wait for its switch to end (it does not wait for anything).
    journal_cv_.wait(lock, [&] { return pending.done; });
    return std::move(pending.old);
  }
  switch_ = nullptr;
  if (!idle_or_done) return Status(Code::kTimeout, "defragment: the open write txn did not end");
  writer_held_ = true;
  lock.unlock();
  Result<std::shared_ptr<LiveEnv>> old = SwitchTo(copy);
  lock.lock();
  writer_held_ = false;
  lock.unlock();
  journal_cv_.notify_all();
  return old;
}

void LmdbBackend::SwitchForDefragment(PendingSwitch& pending) {
  Result<std::shared_ptr<LiveEnv>> old = SwitchTo(*pending.copy);
  {
    std::lock_guard lock(journal_mu_);
    pending.old = std::move(old);
    pending.done = true;
  }
  journal_cv_.notify_all();
}

Result<std::shared_ptr<LiveEnv>> LmdbBackend::SwitchTo(DefragCopy& copy) {
  // The writer is held and none is open: the journal is complete once this replay is done.
  size_t replayed = 0;
  RETURN_IF_ERROR(ReplayJournal(copy, &replayed));
  // From now on the copy takes live commits: each orders its pages on disk before its meta page,
  // as the data file's do (OpenLmdb), where the copy's own commits did not sync at all.
  if (!spec_.options.no_sync) {
    int rc = mdb_env_set_flags(copy.env, MDB_NOSYNC, 0);
    if (rc == 0) rc = mdb_env_set_flags(copy.env, MDB_NOMETASYNC, 1);
    if (rc != 0) return FromMdb(rc, "set the sync mode", copy.tmp);
  }
  StopJournal(copy.journal);
  auto next = std::make_shared<LiveEnv>(copy.env, copy.tmp + "-lock");
  copy.env = nullptr;
  std::shared_ptr<LiveEnv> old;
  {
    std::lock_guard lock(env_mu_);
    old = std::exchange(live_, std::move(next));
    dbis_ = std::make_shared<const DbiMap>(std::move(copy.dbis));
  }
  RefreshSizes(/*rewritten=*/true);
  return old;
}

void LmdbBackend::AbandonDefragment(DefragCopy& copy) {
  StopJournal(copy.journal);
  if (copy.env != nullptr) mdb_env_close(copy.env);
  copy.env = nullptr;
  ::unlink(copy.tmp.c_str());
  ::unlink((copy.tmp + "-lock").c_str());
}

// The copy is renamed over the data file, after a sync: until the rename the old file is whole (a
// crash leaves at most a stray copy, removed by the next start); after it the new one is.
Status LmdbBackend::PutInPlace(const std::string& tmp, MDB_env* env) {
  if (!spec_.options.no_sync) {
    if (int rc = mdb_env_sync(env, 1); rc != 0) return FromMdb(rc, "sync", tmp);
  }
  if (::rename(tmp.c_str(), file_.c_str()) != 0) {
    return IoError("rename " + tmp + " to " + file_ + ": " + std::strerror(errno));
  }
  // The copy's lock file names a file that no longer exists, so no other environment can open
  // it again: the one in use keeps its descriptor, and the directory shows only data.mdb.
  ::unlink((tmp + "-lock").c_str());
  return SyncParentDir(file_);
}

// The copy is written at a pace, flushed step by step (docs/maintenance.md, "The paced copy"):
// the write-ahead log of this member (and of its peers, when they share the disk) fdatasyncs for
// every put, and each fdatasync would otherwise wait behind the whole copy's pages.
Status LmdbBackend::CopyCompactly(const std::string& tmp) {
  std::shared_ptr<LiveEnv> env = CurrentEnv();
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return IoError("remove " + tmp + ": " + std::strerror(errno));
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("create " + tmp + ": " + std::strerror(errno));
  WritePace pace;
  pace.step_bytes = kCopyStepBytes;
  pace.bytes_per_second =
      AdaptiveBytesPerSecond(SizeInUseBytes(), kCopyFloorBytesPerSecond, kCopyLongest);
  // Its own read txn: a consistent snapshot, concurrent with the writer.
  Result<CompactCopyResult> copied =
      WriteCompactCopy(env->env, fd, tmp, pace, !spec_.options.no_sync,
                       /*after_step_for_test=*/nullptr);
  ::close(fd);
  if (!copied.ok()) return copied.status();
  log::Info("wrote the defragmented copy",
            {{"path", tmp},
             {"bytes", copied->bytes},
             {"pace-bytes-per-second", pace.bytes_per_second},
             {"write-ms", static_cast<int64_t>(copied->write_seconds * 1000)},
             {"fsync-ms", static_cast<int64_t>(copied->sync_seconds * 1000)}});
  return OkStatus();
}
}  // namespace dolmen::backend::lmdb_internal
