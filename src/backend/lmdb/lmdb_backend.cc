#include "backend/lmdb/lmdb_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "backend/lmdb/lmdb_backend_impl.h"

namespace dolmen::backend::lmdb_internal {

Status LmdbBackend::CopyTo(const std::string& path) {
  std::shared_ptr<LiveEnv> env = CurrentEnv();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    Code code = errno == EEXIST ? Code::kAlreadyExists : Code::kIoError;
    return Status(code, "create " + path + ": " + std::strerror(errno));
  }
  // A compacting copy runs in its own read txn: consistent, concurrent with the writer, and
  // without the free pages, so the image is as small as the live data.
  int rc = mdb_env_copyfd2(env->env, fd, MDB_CP_COMPACT);
  Status status = rc == 0 ? OkStatus() : FromMdb(rc, "copy to " + path, file_);
  if (status.ok() && ::fsync(fd) != 0) {
    status = IoError("fsync " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

Status LmdbBackend::Sync() {
  // Waits for a defragmentation's swap in progress to put its copy in place durably: until
  // then the data file is the old one, which lacks what was committed since the switch.
  std::lock_guard durable(durable_mu_);
  RETURN_IF_ERROR(sync_error_);
  if (spec_.options.no_sync) return OkStatus();  // --unsafe-no-fsync
  std::shared_ptr<LiveEnv> env = CurrentEnv();
  int rc = mdb_env_sync(env->env, 1);
  if (rc != 0) return FromMdb(rc, "sync", file_);
  ReleaseMappedPages(env->env);
  return OkStatus();
}

Result<std::unique_ptr<ReadTxn>> LmdbBackend::BeginRead() {
  // Taking the handle map and starting the snapshot under one lock guarantees every bucket in
  // the snapshot has a handle in the map (see CommitAndPublish).
  std::lock_guard lock(env_mu_);
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(live_->env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return FromMdb(rc, "begin read txn", file_);
  return std::unique_ptr<ReadTxn>(std::make_unique<LmdbReadTxn>(txn, dbis_, &file_, live_));
}

void LmdbBackend::ReleaseMappedPages(MDB_env* env) {
  // LMDB does not say where it mapped the file (me_mapaddr is set only for MDB_FIXEDMAP); the
  // kernel does. Looked up each time, never cached: an address kept across a reopen of the
  // environment could by then belong to other memory.
  size_t map_bytes = 0;
  void* map = FindMapping(file_, &map_bytes);
  MDB_envinfo info;
  MDB_stat stat;
  if (map == nullptr || mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &stat) != 0) {
    return;
  }
  const size_t used = static_cast<size_t>(info.me_last_pgno + 1) * stat.ms_psize;
  ::madvise(map, std::min(used, map_bytes), MADV_DONTNEED);
}

void* LmdbBackend::FindMapping(const std::string& file, size_t* bytes) {
  char resolved[PATH_MAX];
  if (::realpath(file.c_str(), resolved) == nullptr) return nullptr;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode   path"
    size_t slash = line.find('/');
    if (slash == std::string::npos || line.compare(slash, std::string::npos, resolved) != 0) {
      continue;
    }
    unsigned long long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx", &start, &end) != 2 || end <= start) continue;
    *bytes = static_cast<size_t>(end - start);
    return reinterpret_cast<void*>(static_cast<uintptr_t>(start));
  }
  return nullptr;
}

Result<std::unique_ptr<WriteTxn>> LmdbBackend::BeginWrite() {
  PendingSwitch* to_switch = nullptr;
  {
    std::unique_lock lock(journal_mu_);
    // A defragmentation's swap switching to its copy on its own thread: that is a replay of the
    // last few writes, without fsync, so this is short.
    journal_cv_.wait(lock, [this] { return !writer_held_; });
    if (writer_open_) return Status(Code::kFailedPrecondition, "another write txn is open");
    writer_open_ = true;
    ++writes_begun_;
    to_switch = TakePendingSwitch();
  }
  // A defragmentation waits to switch to its copy between two write txns: here, on this thread.
  if (to_switch != nullptr) SwitchForDefragment(*to_switch);
  std::shared_ptr<Journal> journal;
  {
    std::lock_guard lock(journal_mu_);
    journal = journal_;  // the journal of a defragmentation in progress, if any
  }
  // No swap can happen while writer_open_ is set, so this is the environment until the end.
  std::shared_ptr<LiveEnv> env = CurrentEnv();
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env->env, nullptr, 0, &txn);
  if (rc != 0) {
    WriterDone();
    return FromMdb(rc, "begin write txn", file_);
  }
  return std::unique_ptr<WriteTxn>(
      std::make_unique<LmdbWriteTxn>(this, std::move(env), txn, std::move(journal)));
}

std::optional<uint64_t> LmdbBackend::InUseBytes(MDB_env* env) {
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0) return std::nullopt;
  uint64_t pages = /*meta pages=*/2;
  uint64_t page_bytes = 0;
  auto add = [&](MDB_dbi dbi) {
    MDB_stat stat;
    if (mdb_stat(txn, dbi, &stat) != 0) return false;
    page_bytes = stat.ms_psize;
    pages += stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages;
    return true;
  };
  bool ok = add(/*FREE_DBI=*/0) && add(/*MAIN_DBI=*/1);
  // Every published handle names a committed bucket (CommitAndPublish), so each is valid here.
  for (const auto& [name, dbi] : *dbis()) ok = ok && add(dbi);
  mdb_txn_abort(txn);
  if (!ok) return std::nullopt;
  return pages * page_bytes;
}

Result<std::unique_ptr<Backend>> OpenEnv(EnvSpec spec) {
  ASSIGN_OR_RETURN(MDB_env * env, OpenRawEnv(spec));
  Result<DbiMap> dbis = OpenExistingBuckets(env, spec.file);
  if (!dbis.ok()) {
    mdb_env_close(env);
    return dbis.status();
  }
  return std::unique_ptr<Backend>(
      std::make_unique<LmdbBackend>(env, std::move(spec), std::move(dbis).value()));
}

}  // namespace dolmen::backend::lmdb_internal

namespace dolmen::backend {

using lmdb_internal::EnvSpec;
using lmdb_internal::OpenEnv;
using lmdb_internal::RemoveDefragmentLeftovers;
using lmdb_internal::RemoveIfNeverCommitted;

Result<std::unique_ptr<Backend>> OpenLmdbImage(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) {
    return IoError("snapshot image " + file + ": " + std::strerror(errno));
  }
  // Read-only and without a lock file: the image belongs to this process alone.
  return OpenEnv(
      EnvSpec{file, file, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, Options{}});
}

Result<std::unique_ptr<Backend>> OpenLmdb(const std::string& dir, const Options& options) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return IoError("create directory " + dir + ": " + std::strerror(errno));
  }
  // A defragmentation that crashed before its rename leaves its copy behind; the data file is
  // the old one, whole.
  RETURN_IF_ERROR(RemoveDefragmentLeftovers(dir));
  RETURN_IF_ERROR(RemoveIfNeverCommitted(dir + "/data.mdb"));
  // MDB_NOMETASYNC, not MDB_NOSYNC: each commit fdatasyncs its data pages before it writes the
  // meta page that points at them, so whatever meta page a power cut leaves on disk points at
  // pages that are there. Only the newest commit may be undone (its meta page unsynced); the
  // write-ahead log holds it. With MDB_NOSYNC a meta page could reach the disk before its pages,
  // and pages of the last synced state could already be reused: a member could then open
  // cleanly on garbage (docs/mvcc.md, "Durability").
  // --unsafe-no-fsync (options.no_sync): MDB_NOSYNC, no sync at commit at all.
  const unsigned int sync_flag = options.no_sync ? MDB_NOSYNC : MDB_NOMETASYNC;
  return OpenEnv(EnvSpec{dir, dir + "/data.mdb", sync_flag | MDB_NOTLS, options});
}

}  // namespace dolmen::backend
