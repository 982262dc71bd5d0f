#include "server/raft_log_start.h"

#include <algorithm>
#include <utility>

#include "raft/conf_change.h"

namespace dolmen::server {

void BootstrapEntries(std::vector<internal::Member> members, std::vector<raft::Entry>* entries,
                      raft::HardState* hs) {
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  uint64_t index = 0;
  for (internal::Member& m : members) {
    raft::ConfChange cc;
    cc.type = raft::ConfChangeType::kAddNode;
    cc.node_id = MemberId(m.id());
    m.clear_name();
    cc.context = m.SerializeAsString();
    raft::Entry e;
    e.term = Term(1);
    e.index = Index(++index);
    e.type = raft::EntryType::kConfChange;
    e.data = raft::EncodeConfChange(cc);
    entries->push_back(std::move(e));
  }
  hs->term = Term(1);
  hs->commit = Index(index);
}

namespace {

// StartRaftNode's first half; `snapshot_index` receives the marker's index (0 without one).
Status LoadRaftStorage(const wal::Recovered* recovered, const std::vector<raft::Entry>& bootstrap,
                       const raft::HardState& bootstrap_hs, raft::MemoryStorage* storage,
                       Index* snapshot_index) {
  *snapshot_index = Index();
  if (recovered == nullptr) {
    if (bootstrap.empty()) return OkStatus();
    RETURN_IF_ERROR(storage->Append(bootstrap));
    storage->SetHardState(bootstrap_hs);
    return OkStatus();
  }
  if (recovered->snapshot) {
    raft::Snapshot snap;
    snap.metadata = *recovered->snapshot;
    RETURN_IF_ERROR(storage->ApplySnapshot(std::move(snap)));
    *snapshot_index = recovered->snapshot->index;
  }
  std::vector<raft::Entry> tail;
  for (const auto& e : recovered->entries) {
    if (e.index > *snapshot_index) tail.push_back(e);
  }
  if (!tail.empty()) RETURN_IF_ERROR(storage->Append(tail));
  storage->SetHardState(recovered->hard_state);
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<raft::RawNode>> StartRaftNode(const wal::Recovered* recovered,
                                                     const std::vector<raft::Entry>& bootstrap,
                                                     const raft::HardState& bootstrap_hs,
                                                     const RaftNodeSettings& settings,
                                                     raft::MemoryStorage* storage) {
  Index snapshot_index;
  RETURN_IF_ERROR(LoadRaftStorage(recovered, bootstrap, bootstrap_hs, storage, &snapshot_index));
  raft::Config rc;
  rc.id = settings.id;
  rc.election_ticks = settings.election_ticks;
  rc.heartbeat_ticks = 1;
  rc.pre_vote = settings.pre_vote;
  rc.storage = storage;
  rc.applied = snapshot_index;
  rc.random_seed = settings.random_seed;
  return raft::RawNode::Create(rc);
}

}  // namespace dolmen::server
