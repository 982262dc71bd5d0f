// The simulated disk's timing (cluster_sim.h): a member's WAL write is an I/O that completes
// later (issue 18 item 1; docs/simulation.md, "WAL write stalls"), and a backend commit may
// block its owner thread for a while. Meanwhile the other members run, and messages to the
// stalled member arrive and are taken by its turns.
#include <string>

#include "sim/cluster_sim_run.h"

namespace dolmen::sim {

// The write reaches the file at once (so a crash before the fdatasync may lose or tear it, as
// MemoryFileSystem's crash does to unsynced bytes); the fdatasync completes after a delay drawn
// from the seed: usually 0-3 ms, some (wal_stall_per_mille) a stall of 50-500 ms. A write that
// needs no fdatasync (a commit index alone) completes at once.
void ClusterSim::StartPersist(size_t node, const server::PersistRequest& write) {
  Node& n = nodes_[node];
  const Status started = server::StartPersist(n.member->wal(), write);
  uint64_t delay = 0;
  if (write.sync && started.ok()) {
    if (random_.Uniform(1000) < o_.wal_stall_per_mille) {
      delay = 50 + random_.Uniform(451);
      ++result_.wal_stalls;
      Trace("WAL write of member " + std::to_string(node + 1) + " stalls " + std::to_string(delay) +
            " ms");
    } else {
      delay = random_.Uniform(4);
    }
  }
  const bool early = o_.wal_persisted_early && started.ok();
  if (early) n.inbox.persisted = server::WalPersisted{OkStatus()};  // the broken rule
  persists_.push_back(
      PendingPersist{now_ + delay, node, n.member->incarnation(), write.sync, started, early});
}

void ClusterSim::CompletePersists() {
  for (size_t i = 0; i < persists_.size();) {
    if (persists_[i].at > now_) {
      ++i;
      continue;
    }
    const PendingPersist p = persists_[i];
    persists_.erase(persists_.begin() + static_cast<std::ptrdiff_t>(i));
    Node& n = nodes_[p.node];
    // A crash while the write was outstanding lost it (the disk crash dropped what was not
    // synced); a completion from an earlier life is dropped.
    if (!n.member->up() || n.member->incarnation() != p.incarnation) continue;
    Status status = p.started;
    if (status.ok() && p.sync) status = n.member->wal().Sync();
    if (!p.reported) n.inbox.persisted = server::WalPersisted{status};
    ++result_.wal_writes;
  }
}

// A turn that committed the backend may have blocked in that commit (a slow disk under
// LMDB's write): the member takes no turn until the stall ends; its inbox fills meanwhile.
void ClusterSim::MaybeStallCommit(size_t node, uint64_t commits_before) {
  Node& n = nodes_[node];
  if (!o_.disk_faults || phase_ != Phase::kChaos || !n.member->up()) return;
  if (n.member->backend().commits() == commits_before || random_.Uniform(50) != 0) return;
  n.busy_until = now_ + 20 + random_.Uniform(181);
  ++result_.commit_stalls;
  Trace("backend commit of member " + std::to_string(node + 1) + " stalls until " +
        std::to_string(n.busy_until) + " ms");
}

}  // namespace dolmen::sim
