#include "io/fault_injection_file_system.h"

#include <utility>

namespace dolmen::io {
namespace {

Status Injected(const std::string& what) { return IoError("injected fault: " + what); }

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionFileSystem* fs, std::unique_ptr<WritableFile> base,
                    std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}

  Status Append(std::string_view data) override {
    uint64_t keep = 0;
    Status s = fs_->Check(FaultInjectionFileSystem::Op::kAppend, "append " + path_, &keep);
    if (!s.ok()) {
      if (keep > 0) RETURN_IF_ERROR(base_->Append(data.substr(0, keep)));
      return s;
    }
    return base_->Append(data);
  }
  Status Sync() override {
    RETURN_IF_ERROR(fs_->Check(FaultInjectionFileSystem::Op::kSync, "sync " + path_));
    return base_->Sync();
  }
  Status Close() override {
    RETURN_IF_ERROR(fs_->Check(FaultInjectionFileSystem::Op::kClose, "close " + path_));
    return base_->Close();
  }
  uint64_t Size() const override { return base_->Size(); }
  Status Preallocate(uint64_t bytes) override {
    RETURN_IF_ERROR(fs_->Check(FaultInjectionFileSystem::Op::kPreallocate, "preallocate " + path_));
    return base_->Preallocate(bytes);
  }
  Status TrimPreallocation() override {
    RETURN_IF_ERROR(fs_->Check(FaultInjectionFileSystem::Op::kTruncate, "trim " + path_));
    return base_->TrimPreallocation();
  }

 private:
  FaultInjectionFileSystem* fs_;
  std::unique_ptr<WritableFile> base_;
  std::string path_;
};

}  // namespace

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base) : base_(base) {}

void FaultInjectionFileSystem::FailNth(Op op, uint64_t n) {
  CHECK_GE(n, 1u);
  std::lock_guard lock(mu_);
  fail_at_[op].insert(counts_[op] + n);
}

void FaultInjectionFileSystem::FailAll(Op op, bool on) {
  std::lock_guard lock(mu_);
  if (on) {
    fail_all_.insert(op);
  } else {
    fail_all_.erase(op);
  }
}

void FaultInjectionFileSystem::TearNthAppend(uint64_t n, uint64_t keep_bytes) {
  CHECK_GE(n, 1u);
  std::lock_guard lock(mu_);
  torn_at_[counts_[Op::kAppend] + n] = keep_bytes;
}

void FaultInjectionFileSystem::SetAvailableBytes(std::optional<uint64_t> bytes) {
  std::lock_guard lock(mu_);
  available_bytes_ = bytes;
}

void FaultInjectionFileSystem::ClearFaults() {
  std::lock_guard lock(mu_);
  fail_at_.clear();
  fail_all_.clear();
  torn_at_.clear();
}

uint64_t FaultInjectionFileSystem::Count(Op op) {
  std::lock_guard lock(mu_);
  return counts_[op];
}

Status FaultInjectionFileSystem::Check(Op op, const std::string& what, uint64_t* torn_keep) {
  std::lock_guard lock(mu_);
  uint64_t n = ++counts_[op];
  if (op == Op::kAppend) {
    auto torn = torn_at_.find(n);
    if (torn != torn_at_.end()) {
      if (torn_keep != nullptr) *torn_keep = torn->second;
      torn_at_.erase(torn);
      return Injected("torn " + what);
    }
  }
  if (fail_all_.count(op) || fail_at_[op].erase(n) > 0) return Injected(what);
  return OkStatus();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::OpenForAppend(
    const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kOpen, "open " + path));
  ASSIGN_OR_RETURN(auto file, base_->OpenForAppend(path));
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, std::move(file), path));
}

Result<std::string> FaultInjectionFileSystem::ReadFile(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kRead, "read " + path));
  return base_->ReadFile(path);
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kListDir, "list " + dir));
  return base_->ListDir(dir);
}

Status FaultInjectionFileSystem::CreateDirs(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kCreateDirs, "mkdir " + dir));
  return base_->CreateDirs(dir);
}

Status FaultInjectionFileSystem::Remove(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kRemove, "remove " + path));
  return base_->Remove(path);
}

Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(Check(Op::kRename, "rename " + from + " -> " + to));
  return base_->Rename(from, to);
}

Status FaultInjectionFileSystem::Truncate(const std::string& path, uint64_t size) {
  RETURN_IF_ERROR(Check(Op::kTruncate, "truncate " + path));
  return base_->Truncate(path, size);
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kSyncDir, "syncdir " + dir));
  return base_->SyncDir(dir);
}

bool FaultInjectionFileSystem::Exists(const std::string& path) { return base_->Exists(path); }

Result<std::unique_ptr<FileLock>> FaultInjectionFileSystem::LockFile(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kLock, "lock " + path));
  return base_->LockFile(path);
}

Result<uint64_t> FaultInjectionFileSystem::AvailableBytes(const std::string& dir) {
  {
    std::lock_guard lock(mu_);
    if (available_bytes_) return *available_bytes_;
  }
  return base_->AvailableBytes(dir);
}

}  // namespace dolmen::io
