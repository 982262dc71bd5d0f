#include "raft/config.h"

namespace dolmen::raft {

Status Config::Validate() const {
  if (id.value() == 0) return InvalidArgument("raft config: id must not be 0");
  if (heartbeat_ticks <= 0) return InvalidArgument("raft config: heartbeat_ticks must be > 0");
  if (election_ticks <= heartbeat_ticks) {
    return InvalidArgument("raft config: election_ticks must exceed heartbeat_ticks");
  }
  if (storage == nullptr) return InvalidArgument("raft config: storage is required");
  if (max_inflight_msgs == 0) return InvalidArgument("raft config: max_inflight_msgs must be > 0");
  if (max_pending_read_index == 0) {
    return InvalidArgument("raft config: max_pending_read_index must be > 0");
  }
  if (max_size_per_msg_bytes == 0 || max_committed_size_per_ready_bytes == 0 ||
      max_uncommitted_entries_bytes == 0) {
    return InvalidArgument("raft config: byte bounds must be > 0");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return InvalidArgument("raft config: lease-based reads need check_quorum");
  }
  return OkStatus();
}

}  // namespace dolmen::raft
