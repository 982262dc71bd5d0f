#include "backend/lmdb/lmdb_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/check.h"
#include "log/log.h"

namespace dolmen::backend {
namespace {

// Named databases are few (mvcc, lease, auth, a meta bucket each); the limit only sizes a table.
constexpr MDB_dbi kMaxBuckets = 32;
// Every concurrent read txn takes a reader slot; gRPC threads are bounded well below this.
constexpr unsigned int kMaxReaders = 1024;

// Committed bucket handles. Immutable once published, so readers share them without locking.
using DbiMap = std::map<std::string, MDB_dbi, std::less<>>;

MDB_val ToVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view FromVal(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Turns an LMDB error into a Status; `file` names the data file so operators know what broke.
Status FromMdb(int rc, std::string_view what, const std::string& file) {
  std::string message = "lmdb file " + file + ": " + std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
      return Status(Code::kNoSpace, std::move(message));
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
      return Corruption(std::move(message));
    case MDB_BAD_VALSIZE:
      return InvalidArgument(std::move(message));
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
    case MDB_TXN_FULL:
    case MDB_MAP_RESIZED:
      return Status(Code::kResourceExhausted, std::move(message));
    default:
      return IoError(std::move(message));
  }
}

class LmdbBackend;

// Admission to the environment. Every read txn, the write txn, CopyTo and Sync are "users"
// between Enter and Leave; Defragment closes the gate, waits for the users to leave and has the
// environment to itself (it closes and reopens it) until it reopens the gate.
class Gate {
 public:
  void Enter() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !closed_; });
    ++users_;
  }
  void Leave() {
    std::lock_guard lock(mu_);
    CHECK_GT(users_, 0);
    if (--users_ == 0) cv_.notify_all();
  }
  void CloseAndDrain() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !closed_; });  // one defragmentation at a time
    closed_ = true;
    cv_.wait(lock, [this] { return users_ == 0; });
  }
  void Reopen() {
    std::lock_guard lock(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  int users() {
    std::lock_guard lock(mu_);
    return users_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int users_ = 0;        // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

// Enter/Leave for the length of a scope.
class GateUse {
 public:
  explicit GateUse(Gate* gate) : gate_(gate) { gate_->Enter(); }
  ~GateUse() { gate_->Leave(); }
  GateUse(const GateUse&) = delete;
  GateUse& operator=(const GateUse&) = delete;

 private:
  Gate* gate_;
};

// The writes committed while a defragmentation copies the data file, to be replayed onto the
// copy. Each op is a blind write (it sets a key's state, or empties a bucket, whatever was there),
// so replaying every op committed since some point at or before the copy's snapshot leaves the
// copy equal to the live file: an op the snapshot already holds is overwritten by the same or a
// later op. That is why the journal may start a little before the snapshot (docs/maintenance.md).
struct JournalOp {
  enum class Kind { kPut, kDelete, kClearBucket };
  Kind kind;
  std::string bucket;
  std::string key;
  std::string value;
};
struct Journal {  // guarded by LmdbBackend::journal_mu_
  std::vector<JournalOp> ops;
  uint64_t bytes = 0;
  bool overflowed = false;  // writes outpaced the copy: the defragmentation gives up
};
// Bounds the memory a defragmentation's journal may take before the copy catches up.
constexpr uint64_t kMaxJournalBytes = 256ull << 20;
// The copy catches up beside the writer in rounds, until a round replays fewer ops than this;
// what is left is replayed with the writer idle (Finish).
constexpr size_t kSmallCatchUpOps = 512;
constexpr int kMaxCatchUpRounds = 8;
// How long PrepareDefragment waits for a write txn open at its call to end (the server commits
// its batch every 100 ms).
constexpr auto kWriterEndWait = std::chrono::seconds(30);

// Shared by read and write txns: Get and Scan given a txn and a handle lookup.
class LmdbTxnBase {
 protected:
  LmdbTxnBase(MDB_txn* txn, const std::string* file) : txn_(txn), file_(file) {}

  Result<std::optional<std::string>> GetIn(std::optional<MDB_dbi> dbi, std::string_view key) {
    if (!dbi || key.empty() || key.size() > kMaxKeyBytes) return std::optional<std::string>();
    MDB_val k = ToVal(key);
    MDB_val v;
    int rc = mdb_get(txn_, *dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>();
    if (rc != 0) return FromMdb(rc, "get", *file_);
    return std::optional<std::string>(std::string(FromVal(v)));
  }

  Status ScanIn(std::optional<MDB_dbi> dbi, std::string_view start, std::string_view end,
                const std::function<bool(std::string_view, std::string_view)>& fn) {
    if (!dbi) return OkStatus();
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, *dbi, &cursor);
    if (rc != 0) return FromMdb(rc, "cursor open", *file_);
    MDB_val k = ToVal(start);
    MDB_val v;
    // LMDB rejects an empty search key, so "from the start" is MDB_FIRST.
    rc = mdb_cursor_get(cursor, &k, &v, start.empty() ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0) {
      std::string_view key = FromVal(k);
      if (!end.empty() && key >= end) break;
      if (!fn(key, FromVal(v))) break;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) return FromMdb(rc, "scan", *file_);
    return OkStatus();
  }

  MDB_txn* txn_;
  const std::string* file_;
};

std::vector<std::string> NamesOf(const DbiMap& map) {
  std::vector<std::string> names;
  for (const auto& [name, dbi] : map) names.push_back(name);
  return names;
}

std::optional<MDB_dbi> Lookup(const DbiMap& map, std::string_view bucket) {
  auto it = map.find(bucket);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

class LmdbReadTxn final : public ReadTxn, private LmdbTxnBase {
 public:
  // Entered `gate` for this txn; leaves it when destroyed.
  LmdbReadTxn(MDB_txn* txn, std::shared_ptr<const DbiMap> dbis, const std::string* file, Gate* gate)
      : LmdbTxnBase(txn, file), dbis_(std::move(dbis)), gate_(gate) {}
  ~LmdbReadTxn() override {
    mdb_txn_abort(txn_);
    gate_->Leave();
  }

  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    return GetIn(Lookup(*dbis_, bucket), key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return ScanIn(Lookup(*dbis_, bucket), start, end, fn);
  }
  // The handle map taken with the snapshot names exactly its buckets (see BeginRead).
  Result<std::vector<std::string>> Buckets() override { return NamesOf(*dbis_); }

 private:
  std::shared_ptr<const DbiMap> dbis_;
  Gate* gate_;
};

// How an environment was opened, so Defragment can open it again the same way.
struct EnvSpec {
  std::string path;  // what mdb_env_open takes: the directory, or the file with MDB_NOSUBDIR
  std::string file;  // the data file
  unsigned int flags = 0;
  Options options;
};

Result<MDB_env*> OpenRawEnv(const EnvSpec& spec);
Result<DbiMap> OpenExistingBuckets(MDB_env* env, const std::string& file);

class LmdbBackend final : public Backend {
 public:
  LmdbBackend(MDB_env* env, EnvSpec spec, DbiMap dbis)
      : env_(env),
        spec_(std::move(spec)),
        file_(spec_.file),
        dbis_(std::make_shared<const DbiMap>(std::move(dbis))) {
    RefreshSizes(/*rewritten=*/true);
  }
  ~LmdbBackend() override {
    CHECK(!writer_open_) << "a WriteTxn outlived its Backend";
    CHECK_EQ(gate_.users(), 0) << "ReadTxns outlived their Backend";
    if (env_ != nullptr) mdb_env_close(env_);
  }

  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    gate_.Enter();
    if (env_ == nullptr) {
      gate_.Leave();
      return broken_;
    }
    // Taking the handle map and starting the snapshot under one lock guarantees every bucket in
    // the snapshot has a handle in the map (see Publish).
    std::lock_guard lock(dbi_mu_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc != 0) {
      gate_.Leave();
      return FromMdb(rc, "begin read txn", file_);
    }
    return std::unique_ptr<ReadTxn>(std::make_unique<LmdbReadTxn>(txn, dbis_, &file_, &gate_));
  }

  Result<std::unique_ptr<WriteTxn>> BeginWrite() override;

  Status Sync() override {
    GateUse use(&gate_);
    if (env_ == nullptr) return broken_;
    if (spec_.options.no_sync) return OkStatus();  // --unsafe-no-fsync
    int rc = mdb_env_sync(env_, 1);
    if (rc != 0) return FromMdb(rc, "sync", file_);
    ReleaseMappedPages();
    return OkStatus();
  }

  Status Defragment() override;
  Result<std::unique_ptr<PreparedDefragment>> PrepareDefragment() override;

  // Both as of the last commit (RefreshSizes): the quota checks SizeBytes for every write
  // request, on the API thread and again when applying, so reading it must cost nothing.
  uint64_t SizeBytes() override { return size_bytes_.load(std::memory_order_relaxed); }
  uint64_t SizeInUseBytes() override { return in_use_bytes_.load(std::memory_order_relaxed); }

  Status CopyTo(const std::string& path) override {
    GateUse use(&gate_);
    if (env_ == nullptr) return broken_;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      Code code = errno == EEXIST ? Code::kAlreadyExists : Code::kIoError;
      return Status(code, "create " + path + ": " + std::strerror(errno));
    }
    // A compacting copy runs in its own read txn: consistent, concurrent with the writer, and
    // without the free pages, so the image is as small as the live data.
    int rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT);
    Status status = rc == 0 ? OkStatus() : FromMdb(rc, "copy to " + path, file_);
    if (status.ok() && ::fsync(fd) != 0) {
      status = IoError("fsync " + path + ": " + std::strerror(errno));
    }
    ::close(fd);
    if (!status.ok()) ::unlink(path.c_str());
    return status;
  }

  // --- For LmdbWriteTxn.
  MDB_env* env() { return env_; }
  const std::string& file() const { return file_; }
  std::shared_ptr<const DbiMap> dbis() {
    std::lock_guard lock(dbi_mu_);
    return dbis_;
  }
  // Commits a txn that created buckets and publishes their handles atomically with respect to
  // BeginRead: a reader either sees neither the new buckets nor their handles, or both.
  int CommitAndPublish(MDB_txn* txn, const DbiMap& created) {
    std::lock_guard lock(dbi_mu_);
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
    }
    journal_cv_.notify_all();
    writer_open_ = false;
    gate_.Leave();
  }
  // The journal a write txn beginning now records into (null: none), counted as begun.
  std::shared_ptr<Journal> WriterBegins() {
    std::lock_guard lock(journal_mu_);
    ++writes_begun_;
    return journal_;
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
    DbiMap dbis;  // its bucket handles, opened by the replays
    std::shared_ptr<Journal> journal;
  };
  Status FinishDefragment(DefragCopy& copy);
  void AbandonDefragment(DefragCopy& copy);
  // Recomputes the sizes from the state the last commit left; `rewritten` when that state was
  // just opened or defragmented, which starts the peak (SizeBytes) again from what is in use.
  // Called by the writer inside the gate, or with the gate closed: one caller at a time, so
  // the plain load-and-store of the peak races with nobody.
  void RefreshSizes(bool rewritten) {
    std::optional<uint64_t> in_use = InUseBytes();
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
  void ReleaseMappedPages() {
    // LMDB does not say where it mapped the file (me_mapaddr is set only for MDB_FIXEDMAP); the
    // kernel does. Looked up each time, never cached: an address kept across a reopen of the
    // environment could by then belong to other memory.
    size_t map_bytes = 0;
    void* map = FindMapping(file_, &map_bytes);
    MDB_envinfo info;
    MDB_stat stat;
    if (map == nullptr || mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0) {
      return;
    }
    const size_t used = static_cast<size_t>(info.me_last_pgno + 1) * stat.ms_psize;
    ::madvise(map, std::min(used, map_bytes), MADV_DONTNEED);
  }

  // The start of the mapping of `file` in this process (from /proc/self/maps), or null.
  static void* FindMapping(const std::string& file, size_t* bytes) {
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

  // Writes a compacted copy of the committed state to `tmp`, synced, beside the writer.
  Status CopyCompactly(const std::string& tmp);
  // Replays the journal's ops taken so far onto the copy, in one txn; `replayed` counts them.
  Status ReplayJournal(DefragCopy& copy, size_t* replayed);
  // With the gate closed and drained: puts `tmp` in place of the data file and reopens it.
  Status SwapIn(const std::string& tmp);
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
  std::optional<uint64_t> InUseBytes();

  // Replaced only by Defragment while the gate is closed (no user inside); null once a
  // defragmentation could not reopen the file (broken_ says why). Users read it after
  // Gate::Enter, whose mutex orders them after the replacement.
  MDB_env* env_;
  const EnvSpec spec_;
  const std::string file_;
  Status broken_;
  Gate gate_;
  std::mutex dbi_mu_;
  std::shared_ptr<const DbiMap> dbis_;  // guarded by dbi_mu_
  std::atomic<bool> writer_open_ = false;
  // While a defragmentation is prepared: the journal every committed write txn adds to.
  std::mutex journal_mu_;
  std::condition_variable journal_cv_;  // signalled as each write txn ends
  std::shared_ptr<Journal> journal_;    // guarded by journal_mu_
  uint64_t writes_begun_ = 0;           // guarded by journal_mu_
  uint64_t writes_done_ = 0;            // guarded by journal_mu_
  // Written by RefreshSizes only; see SizeBytes and SizeInUseBytes in backend.h.
  std::atomic<uint64_t> size_bytes_ = 0;
  std::atomic<uint64_t> in_use_bytes_ = 0;
};

class LmdbWriteTxn final : public WriteTxn, private LmdbTxnBase {
 public:
  LmdbWriteTxn(LmdbBackend* backend, MDB_txn* txn, std::shared_ptr<Journal> journal)
      : LmdbTxnBase(txn, &backend->file()),
        backend_(backend),
        dbis_(backend->dbis()),
        journal_(std::move(journal)) {}
  ~LmdbWriteTxn() override {
    // Aborting closes the handles this txn opened, which is why they were never published.
    if (!done_) {
      mdb_txn_abort(txn_);
      backend_->WriterDone();
    }
  }

  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    return GetIn(Find(bucket), key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    RETURN_IF_ERROR(CheckOpen());
    return ScanIn(Find(bucket), start, end, fn);
  }
  Status Put(std::string_view bucket, std::string_view key, std::string_view value) override {
    RETURN_IF_ERROR(CheckOpen());
    if (key.empty() || key.size() > kMaxKeyBytes) {
      return InvalidArgument("backend key must be 1.." + std::to_string(kMaxKeyBytes) + " bytes");
    }
    ASSIGN_OR_RETURN(MDB_dbi dbi, FindOrCreate(bucket));
    MDB_val k = ToVal(key);
    MDB_val v = ToVal(value);
    int rc = mdb_put(txn_, dbi, &k, &v, 0);
    if (rc != 0) return FromMdb(rc, "put", *file_);
    Record(JournalOp::Kind::kPut, bucket, key, value);
    return OkStatus();
  }
  Status Delete(std::string_view bucket, std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    std::optional<MDB_dbi> dbi = Find(bucket);
    if (!dbi || key.empty() || key.size() > kMaxKeyBytes) return OkStatus();
    MDB_val k = ToVal(key);
    int rc = mdb_del(txn_, *dbi, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) return FromMdb(rc, "delete", *file_);
    Record(JournalOp::Kind::kDelete, bucket, key, {});
    return OkStatus();
  }
  Status ClearBucket(std::string_view bucket) override {
    RETURN_IF_ERROR(CheckOpen());
    std::optional<MDB_dbi> dbi = Find(bucket);
    if (!dbi) return OkStatus();
    int rc = mdb_drop(txn_, *dbi, 0);  // 0: empty it, keep the handle valid
    if (rc != 0) return FromMdb(rc, "clear bucket " + std::string(bucket), *file_);
    Record(JournalOp::Kind::kClearBucket, bucket, {}, {});
    return OkStatus();
  }
  Result<std::vector<std::string>> Buckets() override {
    RETURN_IF_ERROR(CheckOpen());
    std::vector<std::string> names = NamesOf(*dbis_);
    for (const auto& [name, dbi] : created_) names.push_back(name);
    std::sort(names.begin(), names.end());
    return names;
  }
  Status Commit() override {
    RETURN_IF_ERROR(CheckOpen());
    done_ = true;
    // mdb_txn_commit frees the txn whatever its outcome.
    int rc = created_.empty() ? mdb_txn_commit(txn_) : backend_->CommitAndPublish(txn_, created_);
    if (rc == 0) backend_->RefreshSizes(/*rewritten=*/false);
    if (rc == 0 && journal_ != nullptr) backend_->AppendToJournal(*journal_, std::move(ops_));
    backend_->WriterDone();
    if (rc != 0) return FromMdb(rc, "commit", *file_);
    return OkStatus();
  }

 private:
  Status CheckOpen() const {
    if (done_) return Status(Code::kFailedPrecondition, "write txn already committed");
    return OkStatus();
  }
  std::optional<MDB_dbi> Find(std::string_view bucket) const {
    if (auto dbi = Lookup(*dbis_, bucket)) return dbi;
    return Lookup(created_, bucket);
  }
  Result<MDB_dbi> FindOrCreate(std::string_view bucket) {
    if (auto dbi = Find(bucket)) return *dbi;
    // Only write txns open handles after startup, and they are serialized, which is what LMDB
    // requires of mdb_dbi_open.
    std::string name(bucket);
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn_, name.c_str(), MDB_CREATE, &dbi);
    if (rc != 0) return FromMdb(rc, "create bucket " + name, *file_);
    created_.emplace(std::move(name), dbi);
    return dbi;
  }

  // While a defragmentation is prepared, keeps what this txn wrote for its journal.
  void Record(JournalOp::Kind kind, std::string_view bucket, std::string_view key,
              std::string_view value) {
    if (journal_ == nullptr) return;
    ops_.push_back(JournalOp{kind, std::string(bucket), std::string(key), std::string(value)});
  }

  LmdbBackend* backend_;
  std::shared_ptr<const DbiMap> dbis_;
  DbiMap created_;  // buckets created by this txn, published on commit
  bool done_ = false;
  std::shared_ptr<Journal> journal_;  // null unless a defragmentation was prepared at begin
  std::vector<JournalOp> ops_;
};

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

Result<std::unique_ptr<WriteTxn>> LmdbBackend::BeginWrite() {
  bool expected = false;
  if (!writer_open_.compare_exchange_strong(expected, true)) {
    return Status(Code::kFailedPrecondition, "another write txn is open");
  }
  std::shared_ptr<Journal> journal = WriterBegins();
  gate_.Enter();
  if (env_ == nullptr) {
    WriterDone();
    return broken_;
  }
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) {
    WriterDone();
    return FromMdb(rc, "begin write txn", file_);
  }
  return std::unique_ptr<WriteTxn>(std::make_unique<LmdbWriteTxn>(this, txn, std::move(journal)));
}

std::optional<uint64_t> LmdbBackend::InUseBytes() {
  if (env_ == nullptr) return std::nullopt;
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) return std::nullopt;
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

// Opens a handle for every bucket that already exists, so readers never call mdb_dbi_open.
Result<DbiMap> OpenExistingBuckets(MDB_env* env, const std::string& file) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return FromMdb(rc, "begin txn", file);
  MDB_dbi main_dbi;
  rc = mdb_dbi_open(txn, nullptr, 0, &main_dbi);
  MDB_cursor* cursor = nullptr;
  if (rc == 0) rc = mdb_cursor_open(txn, main_dbi, &cursor);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return FromMdb(rc, "open main database", file);
  }
  DbiMap dbis;
  MDB_val k, v;
  while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) == 0) {
    std::string name(FromVal(k));
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi);
    if (rc != 0) break;
    dbis.emplace(std::move(name), dbi);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return FromMdb(rc, "open buckets", file);
  }
  // Committing a read txn is what makes its handles shared by the environment.
  rc = mdb_txn_commit(txn);
  if (rc != 0) return FromMdb(rc, "open buckets", file);
  return dbis;
}

Result<MDB_env*> OpenRawEnv(const EnvSpec& spec) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return FromMdb(rc, "create env", spec.file);
  if (rc == 0) rc = mdb_env_set_mapsize(env, spec.options.map_size_bytes);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, kMaxBuckets);
  if (rc == 0) rc = mdb_env_set_maxreaders(env, kMaxReaders);
  if (rc == 0) rc = mdb_env_open(env, spec.path.c_str(), spec.flags, 0600);
  if (rc != 0) {
    mdb_env_close(env);
    return FromMdb(rc, "open", spec.file);
  }
  return env;
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

Status SyncParentDir(const std::string& file) {
  std::string dir = file.substr(0, file.rfind('/') == std::string::npos ? 0 : file.rfind('/'));
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError("fsync directory " + dir + ": " + std::strerror(err));
  return OkStatus();
}

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
}  // namespace

// A data file that holds only zero bytes never had a commit reach the disk: LMDB writes its
// meta pages (never zero) at the first commit, and a power cut before that commit was synced
// can leave the file's size on disk with none of its bytes (found by the power-loss tester on
// a member's very first start). It holds nothing, so it is removed and created again, where
// LMDB would refuse it as "not an LMDB file". Any non-zero byte leaves the file to LMDB.
Status RemoveIfNeverCommitted(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return OkStatus();
    return IoError("open " + file + ": " + std::strerror(errno));
  }
  struct stat st;
  bool zeros = ::fstat(fd, &st) == 0 && st.st_size > 0;
  char buf[1 << 16];
  // Bounded: a data file of real size is never all zeros after a commit, so read at most 16 MiB.
  constexpr off_t kMaxScan = 16 << 20;
  for (off_t at = 0; zeros && at < st.st_size; at += sizeof buf) {
    if (at >= kMaxScan) {
      zeros = false;
      break;
    }
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) {
      zeros = false;
      break;
    }
    zeros = std::all_of(buf, buf + n, [](char c) { return c == 0; });
  }
  ::close(fd);
  if (!zeros) return OkStatus();
  log::Warn(
      "the backend file holds only zero bytes (no commit ever reached the disk, e.g. a power cut "
      "during the first start): creating it again",
      {{"path", file}});
  if (::unlink(file.c_str()) != 0) return IoError("unlink " + file + ": " + std::strerror(errno));
  return OkStatus();
}

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
  ::unlink((dir + "/data.mdb.defrag").c_str());
  ::unlink((dir + "/data.mdb.defrag-lock").c_str());
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
