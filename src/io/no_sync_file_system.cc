#include "io/no_sync_file_system.h"

namespace dolmen::io {
namespace {

// Forwards everything to the base file's handle except Sync.
class NoSyncFile final : public WritableFile {
 public:
  explicit NoSyncFile(std::unique_ptr<WritableFile> base) : base_(std::move(base)) {}
  Status Append(std::string_view data) override { return base_->Append(data); }
  Status Sync() override { return OkStatus(); }
  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }
  Status Preallocate(uint64_t bytes) override { return base_->Preallocate(bytes); }
  Status TrimPreallocation() override { return base_->TrimPreallocation(); }

 private:
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> NoSyncFileSystem::OpenForAppend(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->OpenForAppend(path));
  return std::unique_ptr<WritableFile>(std::make_unique<NoSyncFile>(std::move(file)));
}

}  // namespace dolmen::io
