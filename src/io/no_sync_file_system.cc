#include "io/no_sync_file_system.h"

namespace dolmen::io {
namespace {

// Forwards everything to the base file's handle except Sync (all of them, or all but the
// first).
class NoSyncFile final : public WritableFile {
 public:
  NoSyncFile(std::unique_ptr<WritableFile> base, bool keep_first_sync)
      : base_(std::move(base)), syncs_left_(keep_first_sync ? 1 : 0) {}
  Status Append(std::string_view data) override { return base_->Append(data); }
  Status Sync() override {
    if (syncs_left_ == 0) return OkStatus();
    --syncs_left_;
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }
  Status Preallocate(uint64_t bytes) override { return base_->Preallocate(bytes); }
  Status TrimPreallocation() override { return base_->TrimPreallocation(); }

 private:
  std::unique_ptr<WritableFile> base_;
  int syncs_left_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> NoSyncFileSystem::OpenForAppend(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->OpenForAppend(path));
  return std::unique_ptr<WritableFile>(
      std::make_unique<NoSyncFile>(std::move(file), options_.keep_first_file_sync));
}

}  // namespace dolmen::io
