#include "sim/crashable_backend.h"

#include <utility>

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

CrashableBackend::CrashableBackend()
    : live_(backend::NewMemoryBackend()), durable_(backend::NewMemoryBackend()) {}

Status CrashableBackend::Sync() {
  RETURN_IF_ERROR(live_->Sync());
  ASSIGN_OR_RETURN(durable_, CopyBackend(*live_));
  ++syncs_;
  return OkStatus();
}

void CrashableBackend::Crash(bool lose_unsynced_commits) {
  if (!lose_unsynced_commits) return;
  auto copy = CopyBackend(*durable_);
  CHECK(copy.ok()) << copy.status().ToString();
  live_ = std::move(*copy);
}

}  // namespace dolmen::sim
