#include "sim/cluster_sim.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "base/check.h"
#include "base/clock.h"
#include "dolmen/internal.pb.h"
#include "log/log.h"
#include "sim/history.h"
#include "sim/sim_member.h"
#include "sim/sim_network.h"

namespace dolmen::sim {
namespace {

using std::chrono::milliseconds;
using Kind = ClientOp::Kind;
using Outcome = ClientOp::Outcome;

// Virtual time 0 as the members' clock shows it (any fixed point will do).
const server::TimePoint kEpoch{std::chrono::hours(1)};
server::TimePoint At(uint64_t ms) { return kEpoch + milliseconds(ms); }
uint64_t Ms(server::TimePoint t) {
  const auto since = t - kEpoch;
  if (since <= std::chrono::nanoseconds(0)) return 0;
  // Rounded up: a wake-up due inside a millisecond is served at its end, never before.
  return static_cast<uint64_t>((since + milliseconds(1) - std::chrono::nanoseconds(1)) /
                               milliseconds(1));
}

constexpr uint64_t kRequestTimeoutMs = 1000;

// Small and fast Raft time so that a few virtual seconds see many elections, checkpoints and
// segment cuts.
SimMemberOptions MemberOptions(const ClusterSimOptions& o) {
  SimMemberOptions m;
  m.driver.tick_interval = milliseconds(10);
  m.driver.election_ticks = 10;
  m.driver.request_timeout = milliseconds(kRequestTimeoutMs);
  m.driver.backend_commit_interval = milliseconds(20);
  m.driver.checkpoint_entries = 100;
  m.driver.checkpoint_interval = milliseconds(500);
  m.driver.checkpoint_at_stop = false;
  m.wal.segment_bytes = 16 << 10;
  m.wal_sync_lies = o.wal_sync_lies;
  return m;
}

class ClusterSim {
 public:
  explicit ClusterSim(const ClusterSimOptions& options)
      : o_(options),
        random_(options.seed),
        network_(&random_, NetworkFaults{0, 0, 1, 5, /*duplicate_proposals=*/false}) {}

  ClusterSimResult Run();

 private:
  struct Node {
    std::unique_ptr<SimMember> member;
    bool removed = false;  // removed from the cluster: never restarted, never checked again
    server::InboxBatch inbox;
    std::optional<uint64_t> restart_at;
    uint64_t hashed_applied = UINT64_MAX;  // the applied index whose hash was last checked
    uint64_t checked_commit = 0;           // committed entries up to here were recorded
  };
  struct PendingSync {
    uint64_t at;
    size_t node;
    uint64_t incarnation;
    uint64_t applied;
  };
  struct Client {
    bool busy = false;
    uint64_t next_at = 0;
    std::map<std::string, std::string> known;  // key -> the last value it saw (for CAS)
  };
  enum class Phase { kChaos, kDrain, kFinalReads, kConverge, kDone };

  void Start();
  void NewNode(MemberId id, std::vector<internal::Member> members, bool join);
  void Step();
  uint64_t NextEventTime() const;
  void Deliver();
  bool ReceiveSnapshot(Node& n, const raft::Message& m);
  void ReportSnapshot(const raft::Message& m, bool done);
  void CompleteSyncs();
  void Restarts();
  void Faults();
  void Clients();
  void Turns();
  void Check();
  void Advance();

  // Clients.
  // False if no member is up to ask.
  bool Issue(int client, Kind kind, const std::string& key);
  std::optional<size_t> RandomUpNode();
  std::optional<size_t> RandomServingNode();
  size_t NewOp(int client, Kind kind, const std::string& key);
  void Complete(size_t op, const server::ApplyResult& result);
  void CompleteRead(size_t op, size_t node, const Status& barrier);
  void Finish(size_t op);
  void Propose(size_t node, internal::InternalRequest request, server::ProposalDone done);

  // Faults.
  void Crash(size_t node, uint64_t down_ms);
  void PowerLoss();
  void PartitionRandomly();
  void MoveLeader();
  void Compact();
  void ChangeMembership();
  void FailDisk();
  void ProposeConfChange(size_t leader, raft::ConfChange cc, std::function<void()> applied);
  void ShakeNetwork();
  std::optional<size_t> Leader() const;

  // Checks.
  void CheckLeaders();
  void CheckCommitted(Node& n);
  void CheckHash(Node& n);
  void FinalChecks();
  std::vector<Node*> CurrentMembers(size_t leader);
  void Fail(const std::string& what);
  void Trace(const std::string& what) const;

  const ClusterSimOptions o_;
  SeededRandom random_;
  SimNetwork network_;
  uint64_t now_ = 0;
  Phase phase_ = Phase::kChaos;
  std::vector<Node> nodes_;
  std::vector<PendingSync> syncs_;
  std::vector<Client> clients_;
  std::vector<ClientOp> ops_;
  std::set<std::string> final_reads_pending_;    // keys without a successful final read
  std::map<std::string, size_t> final_read_op_;  // key -> its final read in flight
  uint64_t next_request_id_ = 1;
  size_t final_leader_ = 0;
  uint64_t next_fault_at_ = 0;
  std::optional<uint64_t> heal_partition_at_;
  ClusterSimResult result_;
  // Snapshot images in flight, by (receiver, snapshot index): the peer stream's file.
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<backend::Backend>> images_;
  std::map<uint64_t, MemberId> leaders_;          // term -> its leader
  std::map<uint64_t, uint64_t> committed_terms_;  // index -> term of the committed entry
  std::map<uint64_t, std::pair<uint32_t, MemberId>> hash_at_;  // applied index -> hash, by whom
};

ClusterSimResult ClusterSim::Run() {
  Start();
  // Bounded: a run that stops making steps without finishing is a liveness failure below.
  const uint64_t end = o_.chaos_ms + o_.heal_ms;
  // Runs take a few thousand steps; a run that stops advancing its clock (a member whose
  // NextWake stays in the past) must fail, not hang.
  constexpr uint64_t kMaxSteps = 1000000;
  while (result_.ok && phase_ != Phase::kDone && now_ <= end) {
    if (result_.steps >= kMaxSteps) {
      Fail("the run made " + std::to_string(kMaxSteps) + " steps without finishing: time stopped");
      break;
    }
    Step();
  }
  if (result_.ok && phase_ != Phase::kDone) {
    std::ostringstream os;
    os << "liveness: not converged " << o_.heal_ms << " ms after the faults stopped (phase "
       << static_cast<int>(phase_) << ", final reads missing " << final_reads_pending_.size()
       << ")";
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const Node& n = nodes_[i];
      os << "; member " << i + 1 << ": "
         << (n.member->up()
                 ? "applied " + std::to_string(n.member->core().applied_index().value()) +
                       " commit " + std::to_string(n.member->core().commit_index().value()) +
                       " leader " + std::to_string(n.member->core().leader().value())
                 : std::string("down"));
    }
    Fail(os.str());
  }
  result_.leader_terms = leaders_.size();
  for (const ClientOp& op : ops_) {
    if (op.outcome == Outcome::kFailed) ++result_.failed_ops;
    if (op.outcome != Outcome::kOk) continue;
    if (op.wrote) ++result_.acked_writes;
    if (op.kind == Kind::kRead) ++result_.acked_reads;
  }
  return result_;
}

void ClusterSim::NewNode(MemberId id, std::vector<internal::Member> members, bool join) {
  Node n;
  n.member = std::make_unique<SimMember>(
      id, std::move(members), join, MemberOptions(o_),
      [this](raft::Message m) { network_.Send(m, now_); },
      [this](raft::Message m, std::shared_ptr<backend::Backend> image) {
        images_[{m.to.value(), m.snapshot ? m.snapshot->metadata.index.value() : 0}] =
            std::move(image);
        network_.Send(m, now_);
      });
  nodes_.push_back(std::move(n));
}

void ClusterSim::Start() {
  std::vector<internal::Member> initial;
  for (int i = 0; i < o_.members; ++i) initial.push_back(SimMemberRecord(MemberId(i + 1)));
  for (int i = 0; i < o_.members; ++i) NewNode(MemberId(i + 1), initial, /*join=*/false);
  for (Node& n : nodes_) {
    if (Status s = n.member->Start(At(now_), random_.Next()); !s.ok()) {
      return Fail("member " + std::to_string(n.member->id().value()) +
                  " did not start: " + s.ToString());
    }
  }
  clients_.resize(static_cast<size_t>(o_.clients));
  for (Client& c : clients_) c.next_at = random_.Uniform(20);
  next_fault_at_ = 100 + random_.Uniform(200);
}

uint64_t ClusterSim::NextEventTime() const {
  uint64_t next = UINT64_MAX;
  auto consider = [&next](uint64_t t) { next = std::min(next, t); };
  if (auto due = network_.NextDue()) consider(*due);
  for (const PendingSync& s : syncs_) consider(s.at);
  for (const Node& n : nodes_) {
    if (n.restart_at) consider(*n.restart_at);
    if (!n.member->up()) continue;
    if (!n.inbox.empty()) consider(now_);
    consider(Ms(n.member->core().NextWake()));
  }
  if (phase_ == Phase::kChaos) {
    consider(next_fault_at_);
    consider(o_.chaos_ms);
    for (const Client& c : clients_) {
      if (!c.busy) consider(c.next_at);
    }
  }
  if (heal_partition_at_) consider(*heal_partition_at_);
  return std::max(next, now_);
}

void ClusterSim::Step() {
  ++result_.steps;
  now_ = NextEventTime();
  Deliver();
  CompleteSyncs();
  Restarts();
  Faults();
  Clients();
  Turns();
  Check();
  Advance();
}

void ClusterSim::Deliver() {
  std::vector<raft::Message> cut;
  for (raft::Message& m : network_.TakeDue(now_, &cut)) {
    const uint64_t to = m.to.value();
    if (to == 0 || to > nodes_.size()) continue;
    Node& n = nodes_[to - 1];
    if (!n.member->up()) {
      if (m.type == raft::MessageType::kSnap) ReportSnapshot(m, false);
      continue;
    }
    if (m.type == raft::MessageType::kSnap && !ReceiveSnapshot(n, m)) continue;
    n.inbox.messages.push_back(std::move(m));
  }
  // A snapshot stream that broke is noticed by its sender (the transport reports it to Raft).
  for (const raft::Message& m : cut) {
    if (m.type == raft::MessageType::kSnap) ReportSnapshot(m, false);
  }
  for (const raft::Message& m : network_.TakeDroppedSnapshots()) ReportSnapshot(m, false);
}

// Server::ReceiveSnapshot: the image arrives with the message and is kept before Raft sees
// the message; the sender hears that the stream completed.
bool ClusterSim::ReceiveSnapshot(Node& n, const raft::Message& m) {
  const uint64_t index = m.snapshot ? m.snapshot->metadata.index.value() : 0;
  auto image = images_.find({m.to.value(), index});
  Status kept = image == images_.end() ? Status(Code::kNotFound, "no image sent for this snapshot")
                                       : n.member->ReceiveImage(Index(index), image->second);
  if (!kept.ok()) {
    Fail("member " + std::to_string(m.to.value()) + " refused the snapshot at index " +
         std::to_string(index) + " from member " + std::to_string(m.from.value()) + ": " +
         kept.ToString());
  }
  ReportSnapshot(m, kept.ok());
  ++result_.snapshots;
  return kept.ok();
}

void ClusterSim::ReportSnapshot(const raft::Message& m, bool done) {
  const uint64_t from = m.from.value();
  if (from == 0 || from > nodes_.size() || !nodes_[from - 1].member->up()) return;
  nodes_[from - 1].inbox.reports.push_back(
      server::PeerReport{m.to, done ? server::PeerReport::Kind::kSnapshotDone
                                    : server::PeerReport::Kind::kSnapshotFailed});
}

// The checkpoint's backend sync ran beside the loop; it completes now (after a random delay)
// unless the member died meanwhile.
void ClusterSim::CompleteSyncs() {
  for (size_t i = 0; i < syncs_.size();) {
    PendingSync s = syncs_[i];
    if (s.at > now_) {
      ++i;
      continue;
    }
    syncs_.erase(syncs_.begin() + static_cast<std::ptrdiff_t>(i));
    Node& n = nodes_[s.node];
    if (!n.member->up() || n.member->incarnation() != s.incarnation) continue;
    n.inbox.synced.push_back(server::SyncDone{s.applied, n.member->store().Sync()});
    ++result_.checkpoints;
  }
}

void ClusterSim::Restarts() {
  for (Node& n : nodes_) {
    if (!n.restart_at || *n.restart_at > now_) continue;
    n.restart_at.reset();
    n.hashed_applied = UINT64_MAX;
    n.checked_commit = 0;
    Trace("restart member " + std::to_string(n.member->id().value()));
    if (Status s = n.member->Start(At(now_), random_.Next()); !s.ok()) {
      return Fail("member " + std::to_string(n.member->id().value()) +
                  " did not restart after its crash: " + s.ToString());
    }
  }
}

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
  if (random_.Uniform(2) == 0) {
    Trace("disk of member " + std::to_string(*node + 1) + " fails its next sync");
    faults.FailNth(io::FaultInjectionFileSystem::Op::kSync, 1);
  } else {
    Trace("disk of member " + std::to_string(*node + 1) + " tears its next append");
    faults.TearNthAppend(1, random_.Uniform(64));
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

std::optional<size_t> ClusterSim::RandomServingNode() {
  std::vector<size_t> serving;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    SimMember& m = *nodes_[i].member;
    if (!m.up()) continue;
    // Server::RefuseIfLearner: a learner (or a member that does not know itself yet) serves
    // no writes and no linearizable reads.
    std::optional<internal::Member> self = m.membership().Get(m.id());
    if (self && !self->is_learner()) serving.push_back(i);
  }
  if (serving.empty()) return std::nullopt;
  return serving[random_.Uniform(serving.size())];
}

std::optional<size_t> ClusterSim::RandomUpNode() {
  std::vector<size_t> up;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].member->up()) up.push_back(i);
  }
  if (up.empty()) return std::nullopt;
  return up[random_.Uniform(up.size())];
}

void ClusterSim::Clients() {
  if (phase_ != Phase::kChaos) return;
  for (size_t c = 0; c < clients_.size(); ++c) {
    Client& client = clients_[c];
    if (client.busy || client.next_at > now_) continue;
    const uint64_t dice = random_.Uniform(100);
    const Kind kind = dice < 35   ? Kind::kPut
                      : dice < 55 ? Kind::kCas
                      : dice < 65 ? Kind::kDelete
                                  : Kind::kRead;
    const std::string key = "k" + std::to_string(random_.Uniform(o_.keys));
    if (!Issue(static_cast<int>(c), kind, key)) client.next_at = now_ + 10;
  }
}

size_t ClusterSim::NewOp(int client, Kind kind, const std::string& key) {
  ClientOp op;
  op.id = ops_.size() + 1;
  op.client = client;
  op.kind = kind;
  op.key = key;
  op.invoked_ms = now_;
  if (kind == Kind::kPut || kind == Kind::kCas) {
    op.value = "c" + std::to_string(client) + "-" + std::to_string(op.id);
  }
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

void ClusterSim::Propose(size_t node, internal::InternalRequest request,
                         server::ProposalDone done) {
  const uint64_t id = next_request_id_++;
  request.set_id(id);
  nodes_[node].inbox.proposals.push_back(server::Proposal{
      id, request.SerializeAsString(), std::move(done), At(now_ + kRequestTimeoutMs)});
}

// As the server's front-end (Server::Put, Txn, DeleteRange, Range): writes are proposals
// answered once applied on the member asked; a linearizable read passes the read barrier and
// then reads that member's store.
bool ClusterSim::Issue(int client, Kind kind, const std::string& key) {
  const std::optional<size_t> node = RandomServingNode();
  if (!node) return false;
  if (client >= 0) clients_[static_cast<size_t>(client)].busy = true;
  const size_t op = NewOp(client, kind, key);
  auto done = [this, op](server::ApplyResult r) { Complete(op, r); };
  internal::InternalRequest request;
  switch (kind) {
    case Kind::kPut: {
      request.mutable_put()->set_key(key);
      request.mutable_put()->set_value(ops_[op].value);
      Propose(*node, std::move(request), std::move(done));
      return true;
    }
    case Kind::kCas: {
      std::string expected;
      if (client >= 0) expected = clients_[static_cast<size_t>(client)].known[key];
      ops_[op].expected = expected;
      etcdserverpb::TxnRequest* txn = request.mutable_txn();
      etcdserverpb::Compare* cmp = txn->add_compare();
      cmp->set_key(key);
      if (expected.empty()) {
        cmp->set_target(etcdserverpb::Compare::VERSION);
        cmp->set_version(0);
      } else {
        cmp->set_target(etcdserverpb::Compare::VALUE);
        cmp->set_value(expected);
      }
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(ops_[op].value);
      txn->add_failure()->mutable_request_range()->set_key(key);
      Propose(*node, std::move(request), std::move(done));
      return true;
    }
    case Kind::kDelete: {
      request.mutable_delete_range()->set_key(key);
      Propose(*node, std::move(request), std::move(done));
      return true;
    }
    case Kind::kRead: {
      nodes_[*node].inbox.reads.push_back(server::Waiter{
          [this, op, node = *node](Status barrier) { CompleteRead(op, node, barrier); },
          At(now_ + kRequestTimeoutMs)});
      return true;
    }
  }
  return false;
}

void ClusterSim::Complete(size_t index, const server::ApplyResult& r) {
  ClientOp& op = ops_[index];
  if (!r.status.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = r.status.ToString();
    return Finish(index);
  }
  op.outcome = Outcome::kOk;
  if (const auto* put = std::get_if<etcdserverpb::PutResponse>(&r.response)) {
    op.revision = put->header().revision();
    op.wrote = true;
  } else if (const auto* txn = std::get_if<etcdserverpb::TxnResponse>(&r.response)) {
    op.revision = txn->header().revision();
    op.wrote = txn->succeeded();
    if (!txn->succeeded()) {
      op.observed = true;
      if (txn->responses_size() == 1 && txn->responses(0).response_range().kvs_size() == 1) {
        const mvccpb::KeyValue& kv = txn->responses(0).response_range().kvs(0);
        op.found = true;
        op.read_value = kv.value();
        op.mod_revision = kv.mod_revision();
      }
    }
  } else if (const auto* del = std::get_if<etcdserverpb::DeleteRangeResponse>(&r.response)) {
    op.revision = del->header().revision();
    op.wrote = del->deleted() > 0;
    op.observed = !op.wrote;  // deleted nothing: the key was absent at that revision
  } else {
    op.outcome = Outcome::kFailed;
    op.error = "unexpected response type";
  }
  Finish(index);
}

void ClusterSim::CompleteRead(size_t index, size_t node, const Status& barrier) {
  ClientOp& op = ops_[index];
  if (!barrier.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = barrier.ToString();
    return Finish(index);
  }
  mvcc::RangeOptions range;
  range.key = op.key;
  Result<mvcc::RangeResult> rr = nodes_[node].member->store().Range(range);
  if (!rr.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = rr.status().ToString();
    return Finish(index);
  }
  op.outcome = Outcome::kOk;
  op.observed = true;
  op.revision = rr->revision.value();
  if (!rr->kvs.empty()) {
    op.found = true;
    op.read_value = rr->kvs[0].value;
    op.mod_revision = rr->kvs[0].mod_revision.value();
  }
  Finish(index);
}

void ClusterSim::Finish(size_t index) {
  ClientOp& op = ops_[index];
  op.completed_ms = now_;
  if (op.outcome == Outcome::kFailed) Trace("failed: " + op.Describe());
  if (op.client < 0) {
    // A final read: done once one succeeds per key.
    final_read_op_.erase(op.key);
    if (op.outcome == Outcome::kOk) final_reads_pending_.erase(op.key);
    return;
  }
  Client& c = clients_[static_cast<size_t>(op.client)];
  c.busy = false;
  c.next_at = now_ + random_.Uniform(20);
  if (op.outcome != Outcome::kOk) return;
  if (op.wrote) {
    c.known[op.key] = op.kind == Kind::kDelete ? "" : op.value;
  } else if (op.observed) {
    c.known[op.key] = op.found ? op.read_value : "";
  }
}

void ClusterSim::Turns() {
  for (size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    Node& n = nodes_[i];
    if (!n.member->up()) continue;
    server::MemberCore& core = n.member->core();
    if (n.inbox.empty() && Ms(core.NextWake()) > now_) continue;
    Status s = core.Turn(std::exchange(n.inbox, {}), At(now_));
    if (s.code() == Code::kRemoved) {
      // Its removal applied here: the member stops for good, as etcd's does.
      Trace("member " + std::to_string(i + 1) + " removed");
      n.removed = true;
      n.member->Stop(s);
      continue;
    }
    if (!s.ok() && s.message().find("injected fault") != std::string::npos) {
      // The disk fault FailDisk asked for: the member exits; its disk keeps what was durable.
      Trace("member " + std::to_string(i + 1) + " stopped on its disk fault: " + s.ToString());
      ++result_.disk_failures;
      Crash(i, 20 + random_.Uniform(300));
      continue;
    }
    if (!s.ok()) {
      n.member->Stop(s);
      return Fail("member " + std::to_string(i + 1) + " stopped: " + s.ToString());
    }
    if (std::optional<uint64_t> sync = core.TakeSyncRequest()) {
      // Usually quick; one in ten stalls for up to a second (a slow disk), while the loop
      // goes on without it.
      const uint64_t delay =
          random_.Uniform(10) == 0 ? 100 + random_.Uniform(900) : 1 + random_.Uniform(30);
      syncs_.push_back(PendingSync{now_ + delay, i, n.member->incarnation(), *sync});
    }
  }
}

void ClusterSim::Check() {
  if (!result_.ok) return;
  if (!o_.step_checks) return;
  CheckLeaders();
  for (Node& n : nodes_) {
    if (!result_.ok) return;
    if (!n.member->up()) continue;
    CheckCommitted(n);
    CheckHash(n);
  }
}

// Election safety (Raft Figure 3): at most one leader per term.
void ClusterSim::CheckLeaders() {
  for (const Node& n : nodes_) {
    const SimMember& m = *n.member;
    if (!m.up() || m.core().leader() != m.id()) continue;
    auto [it, fresh] = leaders_.emplace(m.core().term().value(), m.id());
    if (!fresh && it->second != m.id()) {
      return Fail("two leaders in term " + std::to_string(it->first) + ": members " +
                  std::to_string(it->second.value()) + " and " + std::to_string(m.id().value()));
    }
  }
}

// State machine safety: an entry once committed anywhere is the entry at its index everywhere
// it is committed, crashes included.
void ClusterSim::CheckCommitted(Node& n) {
  SimMember& m = *n.member;
  const uint64_t commit = m.core().commit_index().value();
  const uint64_t first = m.raft_storage().FirstIndex().value();
  for (uint64_t i = std::max(n.checked_commit + 1, first); i <= commit; ++i) {
    Result<Term> term = m.raft_storage().TermAt(Index(i));
    if (!term.ok()) continue;  // compacted away
    auto [it, fresh] = committed_terms_.emplace(i, term->value());
    if (!fresh && it->second != term->value()) {
      return Fail("committed entry " + std::to_string(i) + " changed: term " +
                  std::to_string(it->second) + " before, term " + std::to_string(term->value()) +
                  " on member " + std::to_string(m.id().value()));
    }
  }
  n.checked_commit = std::max(n.checked_commit, commit);
}

// Members agree: the same applied index, the same store (etcd's HashKV, as the corruption
// check compares it).
void ClusterSim::CheckHash(Node& n) {
  SimMember& m = *n.member;
  // The index the store's state stands for: the applied one, or past it right after a snapshot
  // install (the leader's image covers more than the snapshot's index; Raft then re-applies
  // entries the store already holds and skips them).
  const uint64_t applied =
      std::max(m.core().applied_index().value(), m.store().ConsistentIndex().value());
  if (applied == n.hashed_applied) return;
  n.hashed_applied = applied;
  Result<mvcc::Store::HashKvResult> h = m.store().HashKv(Revision(0));
  if (!h.ok())
    return Fail("HashKV on member " + std::to_string(m.id().value()) + ": " +
                h.status().ToString());
  auto [it, fresh] = hash_at_.emplace(applied, std::make_pair(h->hash, m.id()));
  if (fresh) return;
  ++result_.hash_checks;
  if (it->second.first != h->hash) {
    Fail("members disagree at applied index " + std::to_string(applied) + ": member " +
         std::to_string(it->second.second.value()) + " hashed " + std::to_string(it->second.first) +
         ", member " + std::to_string(m.id().value()) + " hashed " + std::to_string(h->hash));
  }
}

// Phases after the chaos: heal everything, let clients finish, read every key once more, wait
// for every member to catch up, then check the whole run.
void ClusterSim::Advance() {
  if (!result_.ok) return;
  switch (phase_) {
    case Phase::kChaos:
      if (now_ < o_.chaos_ms) return;
      Trace("healing");
      network_.Heal();
      heal_partition_at_.reset();
      network_.SetFaults(NetworkFaults{0, 0, 1, 5, /*duplicate_proposals=*/false});
      for (Node& n : nodes_) {
        if (!n.member->up() && !n.removed) n.restart_at = now_;
      }
      phase_ = Phase::kDrain;
      return;
    case Phase::kDrain:
      for (const Client& c : clients_) {
        if (c.busy) return;
      }
      for (int k = 0; k < o_.keys; ++k) final_reads_pending_.insert("k" + std::to_string(k));
      phase_ = Phase::kFinalReads;
      return;
    case Phase::kFinalReads:
      if (final_reads_pending_.empty()) {
        phase_ = Phase::kConverge;
        return;
      }
      for (const std::string& key : final_reads_pending_) {
        if (!final_read_op_.count(key) && Issue(-1, Kind::kRead, key)) {
          final_read_op_[key] = ops_.size() - 1;
        }
      }
      return;
    case Phase::kConverge: {
      const std::optional<size_t> leader = Leader();
      if (!leader) return;
      const uint64_t commit = nodes_[*leader].member->core().commit_index().value();
      for (const Node* n : CurrentMembers(*leader)) {
        if (!n->member->up() || n->member->core().applied_index().value() != commit) return;
      }
      result_.final_index = commit;
      final_leader_ = *leader;
      FinalChecks();
      phase_ = Phase::kDone;
      return;
    }
    case Phase::kDone:
      return;
  }
}

// The nodes the leader's membership lists (removed members that never learned it, and
// learners whose addition never applied, are left out).
std::vector<ClusterSim::Node*> ClusterSim::CurrentMembers(size_t leader) {
  std::vector<Node*> out;
  for (const internal::Member& m : nodes_[leader].member->membership().List()) {
    if (m.id() >= 1 && m.id() <= nodes_.size()) out.push_back(&nodes_[m.id() - 1]);
  }
  return out;
}

void ClusterSim::FinalChecks() {
  // Every member at the same index: the same store.
  const std::vector<Node*> members = CurrentMembers(final_leader_);
  for (Node* n : members) {
    n->hashed_applied = UINT64_MAX;
    CheckHash(*n);
    if (!result_.ok) return;
  }
  // No acknowledged write lost: each is in every member's store at its revision, unless a
  // compaction removed that revision since.
  for (const ClientOp& op : ops_) {
    if (op.outcome != Outcome::kOk || !op.wrote || op.kind == Kind::kDelete) continue;
    for (Node* member : members) {
      Node& n = *member;
      mvcc::RangeOptions range;
      range.key = op.key;
      range.revision = Revision(op.revision);
      Result<mvcc::RangeResult> rr = n.member->store().Range(range);
      if (!rr.ok() && rr.status().code() == Code::kCompacted) continue;
      const bool there = rr.ok() && rr->kvs.size() == 1 && rr->kvs[0].value == op.value &&
                         rr->kvs[0].mod_revision.value() == op.revision;
      if (!there) {
        return Fail("acknowledged write lost on member " + std::to_string(n.member->id().value()) +
                    ": " + op.Describe() + " (the store holds " +
                    (!rr.ok()          ? rr.status().ToString()
                     : rr->kvs.empty() ? std::string("nothing")
                                       : rr->kvs[0].value + "@" +
                                             std::to_string(rr->kvs[0].mod_revision.value())) +
                    ")");
      }
    }
  }
  HistoryChecker checker(ops_);
  if (std::optional<std::string> violation = checker.Check()) {
    Fail("not linearizable: " + *violation);
  }
}

void ClusterSim::Fail(const std::string& what) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.failure = "at " + std::to_string(now_) + " ms: " + what;
  Trace("FAILURE " + result_.failure);
}

void ClusterSim::Trace(const std::string& what) const {
  if (o_.trace) std::cerr << "[" << now_ << " ms] " << what << "\n";
}

}  // namespace

ClusterSimResult RunClusterSimulation(const ClusterSimOptions& options) {
  // Members log every election and crash; thousands of runs would drown a failure's message.
  // A traced run keeps them, interleaved with the simulator's own trace.
  const log::Level level = log::CurrentLevel();
  log::SetLevel(options.trace ? log::Level::kInfo : log::Level::kError);
  ClusterSim sim(options);
  ClusterSimResult result = sim.Run();
  log::SetLevel(level);
  return result;
}

}  // namespace dolmen::sim
