// A FileSystem wrapper that fails on purpose: the Nth append, sync, rename, ... from now, every
// call of a kind, or a torn (short) append. After RocksDB's FaultInjectionTestFS and LevelDB's
// fault-injection env: it is how tests prove that an I/O error is reported, never swallowed.
//
// Failures return Code::kIoError with a message that says the failure was injected. A torn
// append writes a prefix of the data to the underlying file and then fails, as a write that hit
// EIO or ENOSPC part way would.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "io/file_system.h"

namespace dolmen::io {

class FaultInjectionFileSystem final : public FileSystem {
 public:
  enum class Op {
    kOpen,
    kAppend,
    kSync,
    kClose,
    kPreallocate,
    kRead,
    kListDir,
    kCreateDirs,
    kRemove,
    kRename,
    kTruncate,
    kSyncDir,
    kLock,
  };

  // `base` is not owned and must outlive this object and every file opened through it.
  explicit FaultInjectionFileSystem(FileSystem* base);

  // The n-th call of `op` from now (n = 1: the next one) fails.
  void FailNth(Op op, uint64_t n);
  // Every call of `op` fails while on.
  void FailAll(Op op, bool on);
  // The n-th Append from now writes only its first `keep_bytes` bytes, then fails.
  void TearNthAppend(uint64_t n, uint64_t keep_bytes);
  // AvailableBytes answers `bytes` from now on (a disk that is filling up); nullopt: ask the
  // base file system again.
  void SetAvailableBytes(std::optional<uint64_t> bytes);
  // Forgets every pending failure.
  void ClearFaults();
  // Calls of `op` so far, failed ones included.
  uint64_t Count(Op op);

  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  bool Exists(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
  Result<uint64_t> AvailableBytes(const std::string& dir) override;

  // Counts the call and returns the injected failure for it, if any. `torn_keep` (Append only)
  // receives the number of bytes to write before failing when the call is torn.
  Status Check(Op op, const std::string& what, uint64_t* torn_keep = nullptr);

 private:
  FileSystem* base_;
  std::mutex mu_;
  std::map<Op, uint64_t> counts_;
  std::map<Op, std::set<uint64_t>> fail_at_;  // absolute call numbers that fail
  std::set<Op> fail_all_;
  std::map<uint64_t, uint64_t> torn_at_;  // absolute Append number -> bytes kept
  std::optional<uint64_t> available_bytes_;
};

}  // namespace dolmen::io
