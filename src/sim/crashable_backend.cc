#include "sim/crashable_backend.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/forwarding_write_txn.h"
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
class CrashableBackend::Txn final : public backend::ForwardingWriteTxn {
 public:
  Txn(CrashableBackend* owner, std::unique_ptr<backend::WriteTxn> live)
      : ForwardingWriteTxn(std::move(live)), owner_(owner) {}
  Status Commit() override {
    if (std::exchange(owner_->fail_commit_, false)) {
      base_.reset();  // aborted: nothing published
      return IoError("injected fault: backend commit failed");
    }
    RETURN_IF_ERROR(base_->Commit());
    ++owner_->commits_;
    return OkStatus();
  }

 private:
  CrashableBackend* owner_;
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
