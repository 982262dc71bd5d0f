#include "sim/crashable_backend.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/memory_backend.h"
#include "base/check.h"

namespace dolmen::sim {

Result<std::unique_ptr<backend::Backend>> CopyBackend(backend::Backend& source) {
  std::unique_ptr<backend::Backend> copy = backend::NewMemoryBackend();
  ASSIGN_OR_RETURN(auto from, source.BeginRead());
  ASSIGN_OR_RETURN(auto to, copy->BeginWrite());
  RETURN_IF_ERROR(backend::ReplaceContents(*from, *to));
  RETURN_IF_ERROR(to->Commit());
  return copy;
}

// The live backend's txn, counted and failed on demand at Commit.
class CrashableBackend::Txn final : public backend::WriteTxn {
 public:
  Txn(CrashableBackend* owner, std::unique_ptr<backend::WriteTxn> live)
      : owner_(owner), live_(std::move(live)) {}
  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    return live_->Get(bucket, key);
  }
  Result<std::optional<std::string_view>> GetView(std::string_view bucket,
                                                  std::string_view key) override {
    return live_->GetView(bucket, key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return live_->Scan(bucket, start, end, fn);
  }
  Result<std::vector<std::string>> Buckets() override { return live_->Buckets(); }
  Status Put(std::string_view bucket, std::string_view key, std::string_view value) override {
    return live_->Put(bucket, key, value);
  }
  Status Delete(std::string_view bucket, std::string_view key) override {
    return live_->Delete(bucket, key);
  }
  Status ClearBucket(std::string_view bucket) override { return live_->ClearBucket(bucket); }
  Status Commit() override {
    if (std::exchange(owner_->fail_commit_, false)) {
      live_.reset();  // aborted: nothing published
      return IoError("injected fault: backend commit failed");
    }
    RETURN_IF_ERROR(live_->Commit());
    ++owner_->commits_;
    return OkStatus();
  }

 private:
  CrashableBackend* owner_;
  std::unique_ptr<backend::WriteTxn> live_;
};

Result<std::unique_ptr<backend::WriteTxn>> CrashableBackend::BeginWrite() {
  ASSIGN_OR_RETURN(auto live, live_->BeginWrite());
  return std::unique_ptr<backend::WriteTxn>(std::make_unique<Txn>(this, std::move(live)));
}

CrashableBackend::CrashableBackend()
    : live_(backend::NewMemoryBackend()), durable_(backend::NewMemoryBackend()) {}

Status CrashableBackend::Sync() {
  if (std::exchange(fail_sync_, false)) return IoError("injected fault: backend sync failed");
  RETURN_IF_ERROR(live_->Sync());
  ASSIGN_OR_RETURN(durable_, CopyBackend(*live_));
  ++syncs_;
  return OkStatus();
}

void CrashableBackend::Crash(bool lose_unsynced_commits) {
  fail_commit_ = fail_sync_ = false;  // a fault that stopped the member is not there at restart
  if (!lose_unsynced_commits) return;
  auto copy = CopyBackend(*durable_);
  CHECK(copy.ok()) << copy.status().ToString();
  live_ = std::move(*copy);
}

}  // namespace dolmen::sim
