// How a member's Raft log starts, shared by the server (server.cc, server_bootstrap.cc) and the
// whole-cluster simulator (src/sim), so both start members the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "wal/wal.h"

namespace dolmen::server {

// etcd's bootstrap: every initial member is added by a committed conf-change entry at term 1,
// in id order, so the first elected leader is in term 2. The member records go in the entries'
// context without their names (a name arrives with the member's own published attributes).
void BootstrapEntries(std::vector<internal::Member> members, std::vector<raft::Entry>* entries,
                      raft::HardState* hs);

// How a member's Raft node is set up: etcd's heartbeat of one tick, the election timeout in
// ticks, pre-vote, and the seed of its randomized election timeouts.
struct RaftNodeSettings {
  MemberId id;
  int election_ticks = 10;
  bool pre_vote = true;
  uint64_t random_seed = 0;
};

// Fills `storage` (empty) from what the WAL recovered: its snapshot marker, the entries after
// it and the hard state; or, on a first start (`recovered` null), with the bootstrap entries.
// Then the Raft node over it, its applied index at the marker (0 without one): Raft re-emits the
// committed entries after it, and the apply path skips those the backend already holds but
// replays conf changes, which rebuilds Raft's configuration.
Result<std::unique_ptr<raft::RawNode>> StartRaftNode(const wal::Recovered* recovered,
                                                     const std::vector<raft::Entry>& bootstrap,
                                                     const raft::HardState& bootstrap_hs,
                                                     const RaftNodeSettings& settings,
                                                     raft::MemoryStorage* storage);

}  // namespace dolmen::server
