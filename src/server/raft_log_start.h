// How a member's Raft log starts, shared by the server (server.cc, server_bootstrap.cc) and the
// whole-cluster simulator (src/sim), so both start members the same way.
#pragma once

#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "raft/memory_storage.h"
#include "wal/wal.h"

namespace dolmen::server {

// etcd's bootstrap: every initial member is added by a committed conf-change entry at term 1,
// in id order, so the first elected leader is in term 2. The member records go in the entries'
// context without their names (a name arrives with the member's own published attributes).
void BootstrapEntries(std::vector<internal::Member> members, std::vector<raft::Entry>* entries,
                      raft::HardState* hs);

// Fills `storage` (empty) from what the WAL recovered: its snapshot marker, the entries after
// it and the hard state; or, on a first start (`recovered` null), with the bootstrap entries.
// `snapshot_index` receives the marker's index (0 without one), where Raft's applied index
// starts: Raft re-emits the committed entries after it, and the apply path skips those the
// backend already holds but replays conf changes, which rebuilds Raft's configuration.
Status LoadRaftStorage(const wal::Recovered* recovered, const std::vector<raft::Entry>& bootstrap,
                       const raft::HardState& bootstrap_hs, raft::MemoryStorage* storage,
                       Index* snapshot_index);

}  // namespace dolmen::server
