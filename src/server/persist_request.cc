#include "server/persist_request.h"

namespace dolmen::server {

Status StartPersist(wal::Wal& wal, const PersistRequest& request) {
  if (request.snapshot) RETURN_IF_ERROR(wal.SaveSnapshot(*request.snapshot));
  if (request.entries.empty() && !request.hard_state) return OkStatus();
  return wal.Append(request.entries, request.hard_state.value_or(raft::HardState{}));
}

Status Persist(wal::Wal& wal, const PersistRequest& request) {
  RETURN_IF_ERROR(StartPersist(wal, request));
  return request.sync ? wal.Sync() : OkStatus();
}

}  // namespace dolmen::server
