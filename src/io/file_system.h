// The file-system seam. The WAL (and later snapshots) write through these interfaces so the
// replicated core can run against the real disk (io/posix), an in-memory disk that can crash
// (memory_file_system.h) or a disk that fails on purpose (fault_injection_file_system.h).
//
// Durability contract, modelled on POSIX and on what LevelDB/RocksDB envs assume:
// - WritableFile::Append hands bytes to the OS; nothing is durable until Sync returns ok.
// - Creating, renaming or removing a file is durable only after SyncDir on its directory.
// - A failed Sync means the file's durable content is unknown (fsyncgate): callers must not
//   retry and carry on; the WAL treats it as fatal for that Wal object.
//
// Thread safety: a FileSystem may be used from several threads; one WritableFile is used by one
// thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dolmen::io {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends at the end of the file. Buffered in the OS, not durable.
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual Status Sync() = 0;
  // Closes the handle. Does not sync. Further calls are errors.
  virtual Status Close() = 0;
  // Logical size: the bytes in the file, including those appended through this handle.
  virtual uint64_t Size() const = 0;
  // Reserves disk space for the file to grow to `bytes`. Size() and where Append writes are
  // unchanged, but the file may now read as zeros past Size(): on POSIX it is extended
  // (fallocate without FALLOC_FL_KEEP_SIZE, as etcd preallocates its WAL segments), so that an
  // append inside the reserved space does not change the file's length and fdatasync need not
  // write the inode as well (on ext4 that is a second synchronous write per sync). Readers of
  // such a file must treat trailing zeros as free space. Best effort: a file system that cannot
  // preallocate returns ok.
  virtual Status Preallocate(uint64_t bytes) {
    (void)bytes;
    return OkStatus();
  }
  // Gives back the reserved space past Size(): the file's length becomes Size() again.
  virtual Status TrimPreallocation() { return OkStatus(); }
};

// An exclusive lock on a path, held until the object is destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
  virtual const std::string& path() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens `path` for appending, creating it (empty) if missing.
  virtual Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) = 0;
  // Whole-file read. kNotFound if missing.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Up to `max_bytes` from byte `offset` (fewer at the end of the file, none past it), for
  // reading a large file in pieces. kNotFound if missing. The default reads the whole file;
  // real file systems override it.
  virtual Result<std::string> ReadAt(const std::string& path, uint64_t offset, size_t max_bytes) {
    ASSIGN_OR_RETURN(std::string all, ReadFile(path));
    if (offset >= all.size()) return std::string();
    return all.substr(offset, max_bytes);
  }
  // The file's size in bytes. kNotFound if missing.
  virtual Result<uint64_t> FileSize(const std::string& path) {
    ASSIGN_OR_RETURN(std::string all, ReadFile(path));
    return static_cast<uint64_t>(all.size());
  }
  // Entry names (not paths) in `dir`, sorted, without "." and "..". kNotFound if missing.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // mkdir -p.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Removes a file. kNotFound if missing.
  virtual Status Remove(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Sets the file's size; extending fills with zeros.
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Makes creations, renames and removals in `dir` durable (fsync on the directory).
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Takes an exclusive lock on `path` (created if missing) so that two servers never share a
  // data dir. kUnavailable, naming the path, if another holder has it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
  // Bytes an unprivileged writer may still write on the file system holding `dir` (statvfs:
  // f_bavail * f_frsize), for the member's disk-space guard. kUnimplemented where the file
  // system has no such limit (the memory fake), which turns the guard off.
  virtual Result<uint64_t> AvailableBytes(const std::string& dir) {
    return Status(Code::kUnimplemented, "no free-space information for " + dir);
  }
};

// "a/b" + "c" -> "a/b/c".
std::string JoinPath(std::string_view dir, std::string_view name);
// "a/b/c" -> "a/b"; "c" -> ".".
std::string DirName(std::string_view path);

}  // namespace dolmen::io
