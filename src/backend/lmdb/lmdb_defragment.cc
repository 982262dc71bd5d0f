// Defragmentation of the LMDB backend in two steps (docs/maintenance.md, "Beside the loop"):
// a compacted copy made and caught up beside the writer (PrepareDefragment), then the last
// replay and the swap with the environment closed to its users (Finish).
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "backend/lmdb/lmdb_backend_impl.h"

namespace dolmen::backend::lmdb_internal {

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
  copy.tmp = file_ + ".defrag";
  copy.journal = std::make_shared<Journal>();
  {
    std::unique_lock lock(journal_mu_);
    if (journal_ != nullptr) {
      return Status(Code::kFailedPrecondition, "another defragmentation is in progress");
    }
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
  // Catch up beside the writer while there is much to replay; Finish replays the rest.
  for (int round = 0; round < kMaxCatchUpRounds; ++round) {
    size_t replayed = 0;
    RETURN_IF_ERROR(ReplayJournal(owned, &replayed));
    if (replayed < kSmallCatchUpOps) break;
  }
  // Most of the copy reaches the disk here, so the sync in Finish has little left to write.
  if (!spec_.options.no_sync) {
    if (int rc = mdb_env_sync(owned.env, 1); rc != 0) return FromMdb(rc, "sync", owned.tmp);
  }
  return std::unique_ptr<PreparedDefragment>(std::move(prepared));
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

Status LmdbBackend::FinishDefragment(DefragCopy& copy) {
  if (writer_open_) {
    AbandonDefragment(copy);
    return Status(Code::kFailedPrecondition, "defragment with a write txn open");
  }
  // No writer now, and the caller begins none: only readers (and copies) to wait for.
  gate_.CloseAndDrain();
  size_t replayed = 0;
  Status status = env_ == nullptr ? broken_ : ReplayJournal(copy, &replayed);
  if (status.ok() && !spec_.options.no_sync) {
    if (int rc = mdb_env_sync(copy.env, 1); rc != 0) status = FromMdb(rc, "sync", copy.tmp);
  }
  if (!status.ok()) {
    gate_.Reopen();
    AbandonDefragment(copy);
    return status;
  }
  StopJournal(copy.journal);
  mdb_env_close(copy.env);
  copy.env = nullptr;
  ::unlink((copy.tmp + "-lock").c_str());
  status = SwapIn(copy.tmp);
  gate_.Reopen();
  return status;
}

void LmdbBackend::AbandonDefragment(DefragCopy& copy) {
  StopJournal(copy.journal);
  if (copy.env != nullptr) mdb_env_close(copy.env);
  copy.env = nullptr;
  ::unlink(copy.tmp.c_str());
  ::unlink((copy.tmp + "-lock").c_str());
}

// The compact copy is renamed over the data file: until the rename the old file is whole (a crash
// leaves at most a stray .defrag file, removed by the next start); after it the new one is, since
// it was synced first.
Status LmdbBackend::SwapIn(const std::string& tmp) {
  // No user is inside the gate, so nothing refers to the environment or its handles.
  mdb_env_close(env_);
  env_ = nullptr;
  Status status;
  if (::rename(tmp.c_str(), file_.c_str()) != 0) {
    status = IoError("rename " + tmp + " to " + file_ + ": " + std::strerror(errno));
    ::unlink(tmp.c_str());
  } else {
    status = SyncParentDir(file_);
  }
  // Reopen whichever file is in place now (the old one if the rename failed).
  Result<MDB_env*> env = OpenRawEnv(spec_);
  Result<DbiMap> dbis = env.ok() ? OpenExistingBuckets(*env, file_) : Result<DbiMap>(env.status());
  if (!dbis.ok()) {
    if (env.ok()) mdb_env_close(*env);
    broken_ =
        Status(dbis.status().code(), "reopening after defragmentation: " + dbis.status().message());
    return broken_;
  }
  env_ = *env;
  {
    std::lock_guard lock(dbi_mu_);
    dbis_ = std::make_shared<const DbiMap>(std::move(dbis).value());
  }
  RefreshSizes(/*rewritten=*/true);
  return status;
}

Status LmdbBackend::CopyCompactly(const std::string& tmp) {
  GateUse use(&gate_);
  if (env_ == nullptr) return broken_;
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return IoError("remove " + tmp + ": " + std::strerror(errno));
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("create " + tmp + ": " + std::strerror(errno));
  // Its own read txn: a consistent snapshot, concurrent with the writer.
  int rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT);
  Status status = rc == 0 ? OkStatus() : FromMdb(rc, "compact copy to " + tmp, file_);
  if (status.ok() && !spec_.options.no_sync && ::fsync(fd) != 0) {
    status = IoError("fsync " + tmp + ": " + std::strerror(errno));
  }
  ::close(fd);
  return status;
}
}  // namespace dolmen::backend::lmdb_internal
