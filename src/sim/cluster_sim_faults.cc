// The faults a run injects during its chaos phase (cluster_sim_run.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "io/fault_injection_file_system.h"
#include "raft/conf_change.h"
#include "sim/cluster_sim_run.h"

namespace dolmen::sim {

void ClusterSim::Faults() {
  if (heal_partition_at_ && *heal_partition_at_ <= now_) {
    heal_partition_at_.reset();
    network_.Heal();
    Trace("partition healed");
  }
  if (phase_ != Phase::kChaos || now_ < next_fault_at_) return;
  next_fault_at_ = now_ + 20 + random_.Uniform(200);
  const uint64_t dice = random_.Uniform(100);
  if (dice < 25) {
    if (!o_.crashes) return;
    size_t down = 0;
    for (const Node& n : nodes_) {
      // A learner whose addition never applied never started: it is not a member that is down.
      const bool member = !n.removed && n.member->incarnation() > 0;
      down += member && !n.member->up() ? 1 : 0;
    }
    // At most a minority down at once, so the cluster keeps going between power losses.
    if (down >= static_cast<size_t>((o_.members - 1) / 2)) return;
    if (auto node = RandomUpNode()) Crash(*node, 20 + random_.Uniform(400));
  } else if (dice < 30) {
    if (o_.power_loss) PowerLoss();
  } else if (dice < 50) {
    if (o_.partitions && !network_.partitioned()) PartitionRandomly();
  } else if (dice < 70) {
    if (o_.leader_transfers) MoveLeader();
  } else if (dice < 78) {
    if (o_.compactions) Compact();
  } else if (dice < 86) {
    if (o_.membership_changes) ChangeMembership();
  } else if (dice < 90) {
    if (o_.disk_faults) FailDisk();
  } else {
    ShakeNetwork();
  }
}

void ClusterSim::Crash(size_t node, uint64_t down_ms) {
  Node& n = nodes_[node];
  io::CrashOptions crash;
  crash.tail = static_cast<io::CrashOptions::Tail>(random_.Uniform(3));
  crash.seed = random_.Next();
  const bool lose_commits = random_.Uniform(2) == 0;
  Trace("crash member " + std::to_string(node + 1) + " (tail " +
        std::to_string(static_cast<int>(crash.tail)) + ", backend to last sync " +
        (lose_commits ? "yes" : "no") + ")");
  // What was queued for it and never taken (a member stalled in a backend commit queues for
  // a while): its callers hear the crash as well.
  if (n.member->up()) {
    n.member->core().FailAll(Status(Code::kStopped, "crashed"), std::exchange(n.inbox, {}));
  }
  n.member->Crash(crash, lose_commits);
  n.inbox = {};
  n.restart_at = now_ + down_ms;
  ++result_.crashes;
}

void ClusterSim::PowerLoss() {
  Trace("power loss");
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].member->up()) Crash(i, 10 + random_.Uniform(200));
  }
  ++result_.power_losses;
}

void ClusterSim::PartitionRandomly() {
  std::set<MemberId> a, b;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    (random_.Uniform(2) == 0 ? a : b).insert(MemberId(i + 1));
  }
  if (a.empty() || b.empty()) return;
  network_.Partition({a, b});
  heal_partition_at_ = now_ + 50 + random_.Uniform(700);
  ++result_.partitions;
  Trace("partition: " + std::to_string(a.size()) + " | " + std::to_string(b.size()));
}

std::optional<size_t> ClusterSim::Leader() const {
  std::optional<size_t> leader;
  uint64_t term = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const SimMember& m = *nodes_[i].member;
    if (m.up() && m.core().leader() == m.id() && m.core().term().value() >= term) {
      leader = i;
      term = m.core().term().value();
    }
  }
  return leader;
}

// etcd's MoveLeader, as the maintenance service calls it: a task on the leader's loop.
void ClusterSim::MoveLeader() {
  const std::optional<size_t> leader = Leader();
  if (!leader) return;
  const MemberId to(random_.Uniform(nodes_.size()) + 1);
  Trace("move leader " + std::to_string(*leader + 1) + " -> " + std::to_string(to.value()));
  nodes_[*leader].inbox.tasks.push_back([this, node = *leader, to](Status s) {
    if (!s.ok()) return;
    nodes_[node].member->core().MoveLeader(to, server::Waiter{[this](Status done) {
                                                                if (done.ok())
                                                                  ++result_.leader_moves;
                                                              },
                                                              At(now_ + kRequestTimeoutMs)});
  });
}

// A compaction through the log, as a client's Compact or the auto-compactor's.
void ClusterSim::Compact() {
  const std::optional<size_t> node = RandomUpNode();
  if (!node) return;
  const int64_t current = nodes_[*node].member->store().CurrentRevision().value();
  const int64_t revision = current - static_cast<int64_t>(random_.Uniform(20));
  if (revision < 2) return;
  internal::InternalRequest request;
  request.mutable_compaction()->set_revision(revision);
  Trace("compact at " + std::to_string(revision) + " via member " + std::to_string(*node + 1));
  Propose(*node, std::move(request), [this](server::ApplyResult r) {
    if (r.status.ok()) ++result_.compactions;
  });
}

void ClusterSim::ProposeConfChange(size_t leader, raft::ConfChange cc,
                                   std::function<void()> applied) {
  nodes_[leader].inbox.conf_changes.push_back(
      server::ConfProposal{std::move(cc),
                           [applied = std::move(applied)](Status s) {
                             if (s.ok()) applied();
                           },
                           At(now_ + kRequestTimeoutMs)});
}

// One step of a cycle, as an operator would: add a learner, promote it once it caught up,
// remove a voter once there are more than the run started with.
void ClusterSim::ChangeMembership() {
  const std::optional<size_t> leader = Leader();
  if (!leader) return;
  const std::vector<internal::Member> members = nodes_[*leader].member->membership().List();
  std::vector<MemberId> voters;
  std::optional<MemberId> learner;
  for (const internal::Member& m : members) {
    if (m.is_learner()) {
      learner = MemberId(m.id());
    } else {
      voters.push_back(MemberId(m.id()));
    }
  }
  if (learner) {
    // Promote: etcd's rule first (the learner matched 90% of the leader's log), on the loop.
    const MemberId id = *learner;
    Trace("promote member " + std::to_string(id.value()));
    nodes_[*leader].inbox.tasks.push_back([this, node = *leader, id, members](Status s) {
      if (!s.ok() || !nodes_[node].member->up()) return;
      if (!nodes_[node].member->core().CheckLearnerReady(id).ok()) return;
      internal::Member promoted;
      for (const internal::Member& m : members) {
        if (MemberId(m.id()) == id) promoted = m;
      }
      promoted.set_is_learner(false);
      raft::ConfChange cc;
      cc.type = raft::ConfChangeType::kAddNode;
      cc.node_id = id;
      cc.context = promoted.SerializeAsString();
      ProposeConfChange(node, std::move(cc), [this] { ++result_.members_promoted; });
    });
    return;
  }
  if (voters.size() > static_cast<size_t>(o_.members)) {
    const MemberId id = voters[random_.Uniform(voters.size())];
    Trace("remove member " + std::to_string(id.value()));
    raft::ConfChange cc;
    cc.type = raft::ConfChangeType::kRemoveNode;
    cc.node_id = id;
    ProposeConfChange(*leader, std::move(cc), [this] { ++result_.members_removed; });
    return;
  }
  if (nodes_.size() >= static_cast<size_t>(o_.members) + 2) return;
  // Add a learner; the new member starts once its addition is applied, from an empty disk
  // that knows the members (Server::Join).
  const MemberId id(nodes_.size() + 1);
  internal::Member added = SimMemberRecord(id);
  added.set_is_learner(true);
  std::vector<internal::Member> known = members;
  known.push_back(added);
  NewNode(id, known, /*join=*/true);
  Trace("add learner " + std::to_string(id.value()));
  raft::ConfChange cc;
  cc.type = raft::ConfChangeType::kAddLearner;
  cc.node_id = id;
  cc.context = added.SerializeAsString();
  ProposeConfChange(*leader, std::move(cc), [this, node = nodes_.size() - 1] {
    ++result_.members_added;
    if (!nodes_[node].member->up()) nodes_[node].restart_at = now_;
  });
}

// The WAL's disk fails the member's next sync or tears its next append: the member stops at
// that turn (a failed fsync is never retried over lost pages) and is restarted like a crash.
void ClusterSim::FailDisk() {
  const std::optional<size_t> node = RandomUpNode();
  if (!node) return;
  io::FaultInjectionFileSystem& faults = nodes_[*node].member->wal_faults();
  CrashableBackend& backend = nodes_[*node].member->backend();
  const std::string member = "member " + std::to_string(*node + 1);
  switch (random_.Uniform(4)) {
    case 0:
      Trace("disk of " + member + " fails its next sync");
      faults.FailNth(io::FaultInjectionFileSystem::Op::kSync, 1);
      break;
    case 1:
      Trace("disk of " + member + " tears its next append");
      faults.TearNthAppend(1, random_.Uniform(64));
      break;
    case 2:
      Trace("backend of " + member + " fails its next commit");
      backend.FailNextCommit();
      break;
    default:
      Trace("backend of " + member + " fails its next sync");
      backend.FailNextSync();
      break;
  }
}

void ClusterSim::ShakeNetwork() {
  NetworkFaults f;
  f.drop_per_mille = static_cast<uint32_t>(random_.Uniform(100));
  f.duplicate_per_mille = static_cast<uint32_t>(random_.Uniform(50));
  f.min_delay = 1;
  f.max_delay = 1 + random_.Uniform(20);
  f.duplicate_proposals = false;
  network_.SetFaults(f);
  Trace("network: drop " + std::to_string(f.drop_per_mille) + "/1000, duplicate " +
        std::to_string(f.duplicate_per_mille) + "/1000, delay 1.." + std::to_string(f.max_delay) +
        " ms");
}

}  // namespace dolmen::sim
