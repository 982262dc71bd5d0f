// A FileSystem wrapper that never syncs: WritableFile::Sync and SyncDir return ok without
// asking the base file system. This is etcd's --unsafe-no-fsync: a member that loses power
// loses (or tears) whatever the OS had not written back, so it is only for tests and
// throwaway clusters. Everything else passes through unchanged.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/file_system.h"

namespace dolmen::io {

class NoSyncFileSystem final : public FileSystem {
 public:
  // What still syncs. Both on: only file contents written after a file's first sync are at
  // risk, the simulator's "the WAL acknowledges entries before they are durable" fault (the
  // log's files and segment headers survive a crash, the entries acknowledged since may not).
  struct Options {
    bool keep_dir_syncs = false;
    bool keep_first_file_sync = false;
  };

  // `base` is not owned and must outlive this object and every file opened through it.
  explicit NoSyncFileSystem(FileSystem* base) : NoSyncFileSystem(base, Options{}) {}
  NoSyncFileSystem(FileSystem* base, Options options) : base_(base), options_(options) {}

  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override { return base_->ReadFile(path); }
  Result<std::string> ReadAt(const std::string& path, uint64_t offset, size_t max_bytes) override {
    return base_->ReadAt(path, offset, max_bytes);
  }
  Result<uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Status Remove(const std::string& path) override { return base_->Remove(path); }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    return base_->Truncate(path, size);
  }
  Status SyncDir(const std::string& dir) override {
    return options_.keep_dir_syncs ? base_->SyncDir(dir) : OkStatus();
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }
  Result<uint64_t> AvailableBytes(const std::string& dir) override {
    return base_->AvailableBytes(dir);
  }

 private:
  FileSystem* base_;
  const Options options_;
};

}  // namespace dolmen::io
