// The WAL write a Ready needs, as an effect of the member core (issue 18 item 1). A turn that
// gets a Ready with a snapshot, entries or a hard state to persist ends with a PersistRequest;
// the shell writes it to the member's wal::Wal (the same object the core's checkpoints use)
// and reports a WalPersisted event (member_events.h) once it is durable. Only then does the
// core do what the Ready contract puts after the write (raw_node.h): send the messages that
// promise durable state, install the snapshot, apply, Advance.
//
// The driver performs the request at once, on its owner thread, and feeds the completion back
// before it waits for anything else (Persist); the simulator starts the write at once
// (StartPersist) and completes the fsync later, at a time drawn from its seed.
#pragma once

#include <optional>
#include <vector>

#include "base/status.h"
#include "raft/types.h"
#include "wal/wal.h"

namespace dolmen::server {

struct PersistRequest {
  // A snapshot from the leader: its marker goes into the log first (SaveSnapshot syncs it);
  // the image is already on disk, so a crash after the marker installs it at the next start.
  std::optional<raft::SnapshotMetadata> snapshot;
  std::vector<raft::Entry> entries;  // appended; they replace stored entries from their index on
  std::optional<raft::HardState> hard_state;
  // Durable before WalPersisted (entries, or a term or vote change); otherwise the write only
  // has to be ordered before later ones (a commit index alone).
  bool sync = false;
};

// Writes the marker, the entries and the hard state, without the final fdatasync: the first
// half, after which a crash may still lose or tear the appended bytes.
Status StartPersist(wal::Wal& wal, const PersistRequest& request);
// The whole request: written, then one fdatasync when request.sync. Its status is the
// WalPersisted event's.
Status Persist(wal::Wal& wal, const PersistRequest& request);

}  // namespace dolmen::server
