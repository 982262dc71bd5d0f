#include "sim/cluster_sim.h"

#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "log/log.h"
#include "sim/cluster_sim_run.h"

namespace dolmen::sim {
namespace {

using std::chrono::milliseconds;

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
  if (o.lease_expires_early) m.services.lease_clock_ahead = milliseconds(700);
  if (o.watch_drops_events) m.services.drop_watch_batch_every = 16;
  m.services.lease_expiry.check_interval = kLeaseCheckInterval;
  return m;
}

}  // namespace

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
                       " leader " + std::to_string(n.member->core().leader().value()) + " leases " +
                       std::to_string(n.member->services().lessor().size())
                 : std::string("down"));
    }
    Fail(os.str());
  }
  result_.leader_terms = leaders_.size();
  result_.end_ms = now_;
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
  SimMemberOptions options = MemberOptions(o_);
  options.services.clock = &clock_;
  options.services.applied_tap = [this](MemberId m, const std::vector<mvcc::Event>& events,
                                        Revision) {
    if (o_.step_checks && !applied_violation_) applied_violation_ = revisions_.Applied(m, events);
  };
  n.member = std::make_unique<SimMember>(
      id, std::move(members), join, std::move(options),
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
  next_expiry_check_at_ = kLeaseCheckInterval.count();
  if (o_.watches) next_watch_at_ = random_.Uniform(200);
}

uint64_t ClusterSim::NextEventTime() const {
  uint64_t next = UINT64_MAX;
  auto consider = [&next](uint64_t t) { next = std::min(next, t); };
  if (auto due = network_.NextDue()) consider(*due);
  for (const PendingSync& s : syncs_) consider(s.at);
  for (const PendingPersist& p : persists_) consider(p.at);
  for (const Node& n : nodes_) {
    if (n.restart_at) consider(*n.restart_at);
    if (!n.member->up()) continue;
    if (n.busy_until > now_) {
      consider(n.busy_until);
      continue;
    }
    if (!n.inbox.empty()) consider(now_);
    consider(Ms(n.member->core().NextWake()));
  }
  if (phase_ == Phase::kChaos) {
    consider(next_fault_at_);
    consider(o_.chaos_ms);
    for (const Client& c : clients_) {
      if (!c.busy) consider(c.next_at);
    }
    if (o_.watches && o_.step_checks) consider(next_watch_at_);
  }
  if (std::optional<uint64_t> lease = NextLeaseEvent()) consider(*lease);
  if (heal_partition_at_) consider(*heal_partition_at_);
  return std::max(next, now_);
}

void ClusterSim::Step() {
  ++result_.steps;
  now_ = NextEventTime();
  Deliver();
  CompleteSyncs();
  CompletePersists();
  Restarts();
  Faults();
  Clients();
  KeepAlives();
  ExpireLeases();
  Watches();
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
    if (n.member->membership().IsRemoved(m.from)) {
      RefuseRemoved(m.from);
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

// The peer transport's admission (src/transport/admission.cc, as etcd's rafthttp): a member
// that knows the sender was removed refuses its messages, and the sender stops ("the member
// has been permanently removed from the cluster", src/embed/member.cc). Without it a removed
// member that never applied its own removal campaigns forever and traps the clients that ask
// it.
void ClusterSim::RefuseRemoved(MemberId from) {
  if (from.value() == 0 || from.value() > nodes_.size()) return;
  Node& n = nodes_[from.value() - 1];
  if (n.removed || !n.member->up()) return;
  Trace("member " + std::to_string(from.value()) + " stops: a peer says it was removed");
  n.removed = true;
  const Status why(Code::kRemoved, "the member has been permanently removed from the cluster");
  n.member->core().FailAll(Status(Code::kStopped, "server stopped: " + why.ToString()),
                           std::exchange(n.inbox, {}));
  n.member->Stop(why);
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
    n.busy_until = 0;
    n.hashed_applied = UINT64_MAX;
    n.checked_commit = 0;
    Trace("restart member " + std::to_string(n.member->id().value()));
    if (Status s = n.member->Start(At(now_), random_.Next()); !s.ok()) {
      return Fail("member " + std::to_string(n.member->id().value()) +
                  " did not restart after its crash: " + s.ToString());
    }
  }
}

void ClusterSim::Turns() {
  for (size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    Node& n = nodes_[i];
    if (!n.member->up() || n.busy_until > now_) continue;
    server::MemberCore& core = n.member->core();
    if (n.inbox.empty() && Ms(core.NextWake()) > now_) continue;
    const uint64_t commits_before = n.member->backend().commits();
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
    if (const server::PersistRequest* write = core.TakePersistRequest()) StartPersist(i, *write);
    MaybeStallCommit(i, commits_before);
    if (std::optional<uint64_t> sync = core.TakeSyncRequest()) {
      // Usually quick; one in ten stalls for up to a second (a slow disk), while the loop
      // goes on without it.
      const uint64_t delay =
          random_.Uniform(10) == 0 ? 100 + random_.Uniform(900) : 1 + random_.Uniform(30);
      syncs_.push_back(PendingSync{now_ + delay, i, n.member->incarnation(), *sync});
    }
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
      // Every lease expires once nobody keeps it alive: the leader revokes them all.
      if (nodes_[*leader].member->services().lessor().size() != 0) return;
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

void ClusterSim::Fail(const std::string& what) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.failure = "at " + std::to_string(now_) + " ms: " + what;
  Trace("FAILURE " + result_.failure);
}

void ClusterSim::Trace(const std::string& what) const {
  if (o_.trace) std::cerr << "[" << now_ << " ms] " << what << "\n";
}

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
