#include "tests/sim/raft_sim.h"

#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "base/clock.h"
#include "base/coding.h"
#include "raft/index_math.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "sim/sim_network.h"
#include "tests/sim/invariant_checker.h"

namespace dolmen::raft::sim {
namespace {

using dolmen::sim::NetworkFaults;
using dolmen::sim::SimNetwork;

constexpr uint64_t kUnitsPerTick = 10;
constexpr int kElectionTicks = 10;

// "prefix" + n, written so that GCC 12's -Wrestrict false positive on operator+ stays quiet.
std::string Label(const char* prefix, uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

std::set<MemberId> Members(const ConfState& cs) {
  std::set<MemberId> out(cs.voters.begin(), cs.voters.end());
  out.insert(cs.learners.begin(), cs.learners.end());
  out.insert(cs.voters_outgoing.begin(), cs.voters_outgoing.end());
  out.insert(cs.learners_next.begin(), cs.learners_next.end());
  return out;
}

uint64_t MixState(uint64_t state, const Entry& e) {
  return (state ^ HashEntry(e)) * 0x100000001B3ull + e.index.value();
}

// The application's state machine, as the simulator keeps it: a hash chain over every entry
// applied, plus the configuration.
struct AppState {
  Index applied;
  uint64_t hash = 0;
  ConfState conf_state;
};

std::string EncodeAppState(const AppState& s) {
  std::string out;
  coding::PutFixed64(&out, s.applied.value());
  coding::PutFixed64(&out, s.hash);
  return out;
}

AppState DecodeAppState(const Snapshot& snap) {
  AppState s;
  s.conf_state = snap.metadata.conf_state;
  s.applied = snap.metadata.index;  // the bootstrap snapshot carries no data: hash 0
  if (snap.data.size() == 16) {
    s.applied = Index(coding::DecodeFixed64(snap.data.data()));
    s.hash = coding::DecodeFixed64(snap.data.data() + 8);
  }
  CHECK_EQ(s.applied.value(), snap.metadata.index.value()) << "snapshot data does not match";
  return s;
}

struct SimNode {
  MemberId id;
  std::unique_ptr<MemoryStorage> storage;  // the disk: survives crashes
  std::unique_ptr<RawNode> node;           // null while down
  AppState app;
  bool removed = false;  // its removal committed: stopped for good
  uint64_t restart_at = 0;
  bool saw_final = false;
  std::map<std::string, Index> reads;  // context -> highest commit known when asked
};

class Simulator {
 public:
  explicit Simulator(const SimOptions& o)
      : o_(o), random_(o.seed * 0x9E3779B97F4A7C15ull + 7), network_(&random_, {}) {
    NetworkFaults f;
    f.drop_per_mille = static_cast<uint32_t>(random_.Uniform(120) + (o.hostile ? 150 : 0));
    f.duplicate_per_mille = static_cast<uint32_t>(random_.Uniform(60));
    f.min_delay = 1;
    f.max_delay = 1 + random_.Uniform((o.hostile ? 8 : 3) * kUnitsPerTick);
    network_.SetFaults(f);
    // One entry per append, or many.
    max_msg_bytes_ = o.hostile || random_.Uniform(2) == 0 ? 1 : 1 << 20;
    // Most runs use the production settings; some run plain Raft elections. All nodes of a run
    // agree (a mixed cluster is a misconfiguration: leases and stale-term replies must match).
    pre_vote_ = random_.Uniform(4) != 0 && !o.hostile;
    check_quorum_ = random_.Uniform(4) != 0 && !o.hostile;
    ConfState cs;
    for (int i = 1; i <= o.nodes; ++i) cs.voters.push_back(MemberId(i));
    for (int i = 1; i <= o.nodes; ++i) {
      SimNode& n = nodes_[MemberId(i)];
      n.id = MemberId(i);
      n.storage = std::make_unique<MemoryStorage>(cs);
      Start(n);
    }
    next_id_ = static_cast<uint64_t>(o.nodes) + 1;
  }

  SimResult Run();

 private:
  void Trace(const std::string& what) {
    if (o_.trace) std::cerr << "t=" << now_ << " " << what << "\n";
  }
  Config MakeConfig(const SimNode& n) const;
  void Start(SimNode& n);
  void Crash(SimNode& n);
  void Stop(SimNode& n);

  void Step(bool chaos);
  void Deliver();
  void HandleReady(SimNode& n);
  void ChaosEvents();
  void ProposeConfChange(SimNode& leader);
  void Compact(SimNode& n);
  void CheckLeaders();
  SimNode* Leader();
  SimResult Fail(const std::string& what);
  SimResult Finish();
  std::string DumpNodes() const;
  SimNode* RandomLive();

  SimOptions o_;
  SeededRandom random_;
  SimNetwork network_;
  InvariantChecker checker_;
  std::map<MemberId, SimNode> nodes_;
  uint64_t now_ = 0;
  uint64_t next_id_;
  uint64_t proposals_ = 0;
  uint64_t reads_ = 0;
  uint64_t max_msg_bytes_;
  bool chaos_ = true;
  MemberId isolate_leader_;
  uint64_t isolate_leader_at_ = 0;
  bool pre_vote_ = true;
  bool check_quorum_ = true;
  std::string final_data_;
  SimResult result_;
};

Config Simulator::MakeConfig(const SimNode& n) const {
  Config c;
  c.id = n.id;
  c.election_ticks = kElectionTicks;
  c.heartbeat_ticks = 1;
  c.storage = n.storage.get();
  c.max_size_per_msg_bytes = max_msg_bytes_;
  c.max_inflight_msgs = 8;
  c.random_seed = o_.seed * 1000003 + n.id.value();
  c.pre_vote = pre_vote_;
  c.check_quorum = check_quorum_;
  c.testing_unsafe_commit_previous_term = o_.unsafe_commit_previous_term;
  return c;
}

void Simulator::Start(SimNode& n) {
  auto snap = n.storage->GetSnapshot();
  CHECK(snap.ok());
  // The state machine restarts from the last snapshot; later entries are applied again.
  n.app = DecodeAppState(*snap);
  n.saw_final = false;
  n.reads.clear();
  Config c = MakeConfig(n);
  c.applied = n.app.applied;
  auto node = RawNode::Create(c);
  CHECK(node.ok()) << node.status().ToString();
  n.node = std::move(*node);
}

void Simulator::Crash(SimNode& n) {
  // Whatever was not handed out and persisted through a Ready is gone.
  n.node.reset();
  n.restart_at = now_ + 1 + random_.Uniform(40 * kUnitsPerTick);
  ++result_.crashes;
  Trace(Label("crash ", n.id.value()));
}

void Simulator::Stop(SimNode& n) {
  n.node.reset();
  n.removed = true;
  Trace(Label("stop removed ", n.id.value()));
}

SimResult Simulator::Fail(const std::string& what) {
  if (result_.ok) {
    result_.ok = false;
    std::ostringstream os;
    os << "t=" << now_ << " (tick " << now_ / kUnitsPerTick << "): " << what;
    result_.failure = os.str();
  }
  return Finish();
}

std::string Simulator::DumpNodes() const {
  std::ostringstream os;
  for (const auto& [id, n] : nodes_) {
    os << "\n  node " << id;
    if (n.removed) {
      os << " removed";
      continue;
    }
    if (!n.node) {
      os << " down";
      continue;
    }
    const NodeStatus st = n.node->GetStatus();
    os << " " << RoleName(st.soft_state.role) << " term=" << st.hard_state.term
       << " vote=" << st.hard_state.vote << " lead=" << st.soft_state.lead
       << " last=" << st.last_index << "@" << n.node->raft().log().LastTerm()
       << " commit=" << st.hard_state.commit << " applied=" << st.applied << " voters=";
    for (MemberId v : n.node->raft().tracker().voters()) os << v << ",";
    for (MemberId v : n.node->raft().tracker().voters_outgoing()) os << "&" << v << ",";
    os << " learners=";
    for (MemberId v : n.node->raft().tracker().learners()) os << v << ",";
  }
  return os.str();
}

SimResult Simulator::Finish() {
  result_.committed = checker_.max_committed().value();
  result_.elections = checker_.leader_terms();
  return result_;
}

SimNode* Simulator::RandomLive() {
  std::vector<SimNode*> live;
  for (auto& [id, n] : nodes_) {
    if (n.node) live.push_back(&n);
  }
  if (live.empty()) return nullptr;
  return live[random_.Uniform(live.size())];
}

SimNode* Simulator::Leader() {
  // The live leader with the highest term (a deposed leader may not know yet).
  SimNode* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (!n.node || n.node->raft().role() != Role::kLeader) continue;
    if (!best || n.node->raft().term() > best->node->raft().term()) best = &n;
  }
  return best;
}

void Simulator::Deliver() {
  std::vector<Message> cut;
  std::vector<Message> due = network_.TakeDue(now_, &cut);
  std::vector<Message> failed_snapshots = network_.TakeDroppedSnapshots();
  for (Message& m : cut) {
    if (m.type == MessageType::kSnap) failed_snapshots.push_back(std::move(m));
  }
  for (Message& m : due) {
    auto to = nodes_.find(m.to);
    auto from = nodes_.find(m.from);
    // The transport refuses removed members, as etcd's does.
    const bool deliverable =
        to != nodes_.end() && to->second.node && from != nodes_.end() && !from->second.removed;
    if (!deliverable) {
      // The transport notices a peer that is down (connection refused) and says so.
      if (to != nodes_.end() && !to->second.node && from != nodes_.end() && from->second.node) {
        from->second.node->ReportUnreachable(m.to);
      }
      if (m.type == MessageType::kSnap) failed_snapshots.push_back(std::move(m));
      continue;
    }
    if (o_.trace) {
      std::ostringstream os;
      os << "deliver " << MessageTypeName(m.type) << " " << m.from << "->" << m.to
         << " term=" << m.term << (m.reject ? " reject" : "");
      Trace(os.str());
    }
    to->second.node->Step(m).IgnoreError();  // a dropped forward is like a lost message
    if (m.type == MessageType::kSnap) {
      ++result_.snapshots_sent;
      if (from->second.node) from->second.node->ReportSnapshot(m.to, true);
    }
  }
  for (const Message& m : failed_snapshots) {
    auto from = nodes_.find(m.from);
    if (from != nodes_.end() && from->second.node) from->second.node->ReportSnapshot(m.to, false);
  }
}

void Simulator::HandleReady(SimNode& n) {
  if (!n.node->HasReady()) return;
  Ready rd = n.node->GetReady();
  if (o_.trace && rd.soft_state) {
    std::ostringstream os;
    os << "node " << n.id << " is " << RoleName(rd.soft_state->role) << " term "
       << n.node->raft().term() << " lead " << rd.soft_state->lead << " voters";
    for (MemberId v : n.node->raft().tracker().voters()) os << " " << v;
    os << " last " << n.node->raft().log().LastIndex() << " commit "
       << n.node->raft().log().committed() << " applied " << n.node->raft().log().applied();
    Trace(os.str());
  }
  if (rd.soft_state && rd.soft_state->role == Role::kLeader && chaos_ &&
      random_.Uniform(100) < (o_.hostile ? 40u : 5u)) {
    // A leader that fails right after its election leaves its first entries on a minority.
    isolate_leader_ = n.id;
    isolate_leader_at_ = now_ + random_.Uniform(2 * kUnitsPerTick);
  }
  // A leader may send while it writes (as the server's driver does); mostly it does, so that
  // the crash below often hits a leader whose appends are already on the wire.
  bool sent = false;
  if (rd.send_before_persist && random_.Uniform(4) != 0) {
    for (Message& m : rd.messages) network_.Send(std::move(m), now_);
    sent = true;
  }
  if (chaos_ && !rd.entries.empty() && random_.Uniform(1000) < 3) {
    // Crash in the middle of the write: the WAL's torn-tail repair keeps a prefix of the
    // entries, and the hard state written after them is lost. Nothing was applied, and nothing
    // sent unless the Ready allowed sending first.
    const size_t kept = random_.Uniform(rd.entries.size());
    std::vector<Entry> prefix(rd.entries.begin(),
                              rd.entries.begin() + static_cast<std::ptrdiff_t>(kept));
    if (rd.snapshot) CHECK(n.storage->ApplySnapshot(*rd.snapshot).ok());
    checker_.OnBeforePersistEntries(n.id, prefix, *n.storage);
    CHECK(n.storage->Append(prefix).ok());
    checker_.OnPersistEntries(n.id, prefix, *n.storage);
    Trace(Label("torn write, entries kept: ", kept));
    Crash(n);
    return;
  }
  // 1. Persist.
  if (rd.snapshot) {
    Status s = n.storage->ApplySnapshot(*rd.snapshot);
    CHECK(s.ok()) << s.ToString();
  }
  if (!rd.entries.empty()) {
    checker_.OnBeforePersistEntries(n.id, rd.entries, *n.storage);
    Status s = n.storage->Append(rd.entries);
    CHECK(s.ok()) << s.ToString();
    checker_.OnPersistEntries(n.id, rd.entries, *n.storage);
  }
  if (rd.hard_state) {
    const Raft& r = n.node->raft();
    if (r.role() == Role::kLeader && rd.hard_state->commit > n.storage->hard_state().commit &&
        r.log().ZeroTermOnError(rd.hard_state->commit) != r.term()) {
      ++result_.previous_term_commits;
    }
    n.storage->SetHardState(*rd.hard_state);
    checker_.OnCommit(n.id, rd.hard_state->commit, *n.storage);
  }
  // 2. Send.
  if (!sent) {
    for (Message& m : rd.messages) network_.Send(std::move(m), now_);
  }
  // 3. Apply.
  std::vector<MemberId> to_stop;
  if (rd.snapshot) {
    n.app = DecodeAppState(*rd.snapshot);
    checker_.OnApply(n.id, n.app.applied, n.app.hash);
  }
  for (const Entry& e : rd.committed_entries) {
    CHECK_EQ(e.index.value(), n.app.applied.value() + 1) << "applied out of order";
    n.app.hash = MixState(n.app.hash, e);
    n.app.applied = e.index;
    checker_.OnApply(n.id, e.index, n.app.hash);
    if (!final_data_.empty() && e.data == final_data_) n.saw_final = true;
    if (e.type == EntryType::kConfChange) {
      auto cc = DecodeConfChangeV2(e.data);
      CHECK(cc.ok()) << cc.status().ToString();
      const std::set<MemberId> before = Members(n.app.conf_state);
      n.app.conf_state = n.node->ApplyConfChangeV2(*cc);
      ++result_.conf_changes;
      // A member that left the configuration for good (not merely the incoming half of a
      // joint one) is shut down, as the server does once its removal is committed.
      const std::set<MemberId> after = Members(n.app.conf_state);
      for (MemberId id : before) {
        if (!after.count(id)) to_stop.push_back(id);
      }
    }
  }
  for (const ReadState& rs : rd.read_states) {
    auto it = n.reads.find(rs.context);
    if (it == n.reads.end()) continue;
    checker_.OnReadState(n.id, it->second, rs.index);
    n.reads.erase(it);
  }
  // 4. Advance.
  n.node->Advance(rd);
  for (MemberId id : to_stop) {
    auto it = nodes_.find(id);
    if (it != nodes_.end() && !it->second.removed) Stop(it->second);
  }
}

void Simulator::ProposeConfChange(SimNode& leader) {
  const ProgressTracker& t = leader.node->raft().tracker();
  if (t.IsJoint()) return;  // the leader leaves it by itself
  ConfChange cc;
  std::vector<MemberId> voters(t.voters().begin(), t.voters().end());
  const size_t n = static_cast<size_t>(o_.nodes);
  if (t.learners().empty() && voters.size() == n && random_.Uniform(3) == 0) {
    // Joint consensus: replace a voter with a new, empty node in one change.
    ConfChangeV2 v2;
    v2.changes = {{ConfChangeType::kAddNode, MemberId(next_id_)},
                  {ConfChangeType::kRemoveNode, voters[random_.Uniform(voters.size())]}};
    if (!leader.node->ProposeConfChangeV2(v2).ok()) return;
    std::ostringstream os;
    os << "propose joint: add " << next_id_ << " remove " << v2.changes[1].node_id;
    Trace(os.str());
    SimNode& added = nodes_[MemberId(next_id_)];
    added.id = MemberId(next_id_);
    added.storage = std::make_unique<MemoryStorage>();
    Start(added);
    ++next_id_;
    return;
  }
  if (!t.learners().empty()) {
    cc.type = ConfChangeType::kAddNode;
    cc.node_id = *t.learners().begin();
  } else if (voters.size() > n || (voters.size() == n && random_.Uniform(2) == 0)) {
    if (voters.size() <= 1) return;
    cc.type = ConfChangeType::kRemoveNode;
    cc.node_id = voters[random_.Uniform(voters.size())];
  } else {
    cc.type = ConfChangeType::kAddLearner;
    cc.node_id = MemberId(next_id_);
  }
  if (!leader.node->ProposeConfChange(cc).ok()) return;
  std::ostringstream os;
  os << "propose conf change type=" << static_cast<int>(cc.type) << " node=" << cc.node_id;
  Trace(os.str());
  if (cc.type == ConfChangeType::kAddLearner) {
    // The new member starts empty and learns everything from the leader.
    SimNode& added = nodes_[cc.node_id];
    added.id = cc.node_id;
    added.storage = std::make_unique<MemoryStorage>();
    Start(added);
    ++next_id_;
  }
}

void Simulator::Compact(SimNode& n) {
  const Index applied = n.app.applied;
  if (applied < n.storage->FirstIndex() + 4) return;
  auto snap = n.storage->CreateSnapshot(applied, n.app.conf_state, EncodeAppState(n.app));
  if (!snap.ok()) return;
  // Keep a few entries so that slightly lagging followers still get appends.
  const uint64_t keep = random_.Uniform(4);
  const Index compact = applied - std::min<uint64_t>(keep, applied.value() - 1);
  n.storage->Compact(compact).IgnoreError();
  Trace(Label("compact ", n.id.value()) + Label(" to ", compact.value()));
}

void Simulator::ChaosEvents() {
  // Per time unit probabilities, out of 100000.
  const uint64_t faults = o_.hostile ? 5 : 1;
  auto chance = [this](uint64_t p) { return random_.Uniform(100000) < p; };
  if (chance(200 * faults)) {
    if (SimNode* n = RandomLive()) Crash(*n);
  }
  if (chance(100 * faults)) {
    std::vector<std::set<MemberId>> groups(2);
    for (auto& [id, n] : nodes_) groups[random_.Uniform(2)].insert(id);
    network_.Partition(groups);
    Trace("partition");
  }
  SimNode* to_isolate = nullptr;
  if (isolate_leader_ != MemberId() && now_ >= isolate_leader_at_) {
    auto it = nodes_.find(isolate_leader_);
    if (it->second.node && it->second.node->raft().role() == Role::kLeader) {
      to_isolate = &it->second;
    }
    isolate_leader_ = MemberId();
  }
  if (!to_isolate && chance(100 * faults)) to_isolate = Leader();
  {
    // Cut the leader off: the classic trigger of a new term while its last entries are only
    // on some followers.
    if (SimNode* leader = to_isolate) {
      std::set<MemberId> rest;
      for (auto& [id, n] : nodes_) {
        if (id != leader->id) rest.insert(id);
      }
      network_.Partition({{leader->id}, rest});
      Trace(Label("isolate leader ", leader->id.value()));
    }
  }
  if (network_.partitioned() && chance(300 * faults)) {
    network_.Heal();
    Trace("heal partition");
  }
  if (chance(o_.hostile ? 20000 : 5000)) {
    if (SimNode* n = RandomLive()) {
      const std::string data = Label("p", ++proposals_);
      n->node->Propose(data).IgnoreError();  // no leader, or busy: the client would retry
    }
  }
  if (chance(1000)) {
    if (SimNode* n = RandomLive()) {
      const std::string ctx = Label("r", ++reads_);
      n->reads[ctx] = checker_.max_committed();
      n->node->ReadIndex(ctx).IgnoreError();
    }
  }
  if (o_.membership_changes && chance(300)) {
    if (SimNode* leader = Leader()) ProposeConfChange(*leader);
  }
  if (o_.leader_transfers && chance(150 * faults)) {
    if (SimNode* leader = Leader()) {
      const auto& voters = leader->node->raft().tracker().voters();
      std::vector<MemberId> v(voters.begin(), voters.end());
      const MemberId target = v[random_.Uniform(v.size())];
      Trace(Label("transfer leader to ", target.value()));
      leader->node->TransferLeader(target);
    }
  }
  if (chance(500)) {
    if (SimNode* n = RandomLive()) Compact(*n);
  }
}

void Simulator::CheckLeaders() {
  for (auto& [id, n] : nodes_) {
    if (n.node && n.node->raft().role() == Role::kLeader) {
      checker_.OnLeader(id, n.node->raft().term(), n.node->raft().log());
    }
  }
}

void Simulator::Step(bool chaos) {
  chaos_ = chaos;
  Deliver();
  if (now_ % kUnitsPerTick == 0) {
    for (auto& [id, n] : nodes_) {
      if (n.node) n.node->Tick();
    }
  }
  for (auto& [id, n] : nodes_) {
    if (!n.node && !n.removed && n.restart_at <= now_) {
      Start(n);
      Trace(Label("restart ", id.value()));
    }
  }
  if (chaos) ChaosEvents();
  // The disk is sometimes slower than the network: not every node persists every unit.
  for (auto& [id, n] : nodes_) {
    if (n.node && (!chaos || random_.Uniform(10) < 7)) HandleReady(n);
  }
  CheckLeaders();
  ++now_;
}

SimResult Simulator::Run() {
  const uint64_t chaos_end = static_cast<uint64_t>(o_.chaos_ticks) * kUnitsPerTick;
  while (now_ < chaos_end) {
    Step(/*chaos=*/true);
    if (checker_.failed()) return Fail(checker_.failure());
  }
  // Heal: a reliable network and every node back up.
  network_.Heal();
  network_.SetFaults(NetworkFaults{0, 0, 1, 3});
  for (auto& [id, n] : nodes_) n.restart_at = 0;
  const uint64_t heal_start = now_;
  // Without PreVote a node that cannot win (behind on the log or on the configuration) still
  // bumps terms and resets the others' timers; elections converge, but only by a random race,
  // so those runs get a looser bound.
  const uint64_t heal_ticks = static_cast<uint64_t>(o_.heal_ticks) * (pre_vote_ ? 1 : 4);
  const uint64_t bound = heal_ticks * kUnitsPerTick;
  SimNode* leader = nullptr;
  while (now_ < heal_start + bound) {
    Step(/*chaos=*/false);
    if (checker_.failed()) return Fail(checker_.failure());
    leader = Leader();
    if (leader) break;
  }
  if (!leader) return Fail("liveness: no leader within the bound after healing" + DumpNodes());
  final_data_ = Label("final-", o_.seed);
  const uint64_t commit_start = now_;
  while (now_ < commit_start + bound) {
    // Propose (again) each tick until the whole membership has applied it: the leader may
    // change under us, and a proposal is not acknowledged until it applies.
    if (now_ % kUnitsPerTick == 0) {
      if (SimNode* l = Leader()) l->node->Propose(final_data_).IgnoreError();
    }
    Step(/*chaos=*/false);
    if (checker_.failed()) return Fail(checker_.failure());
    SimNode* l = Leader();
    if (!l || !l->saw_final) continue;
    bool all = true;
    for (const auto& [id, n] : nodes_) {
      if (l->node->raft().tracker().IsMember(id) && !n.saw_final) all = false;
    }
    if (all) break;
  }
  SimNode* l = Leader();
  bool all = l != nullptr && l->saw_final;
  std::ostringstream missing;
  if (l) {
    for (const auto& [id, n] : nodes_) {
      if (l->node->raft().tracker().IsMember(id) && !n.saw_final) {
        all = false;
        missing << " " << id;
      }
    }
  }
  if (!all) {
    return Fail(
        "liveness: the final proposal did not reach every member within the bound;"
        " missing:" +
        missing.str() + DumpNodes());
  }
  return Finish();
}

}  // namespace

SimResult RunRaftSimulation(const SimOptions& options) {
  Simulator sim(options);
  return sim.Run();
}

}  // namespace dolmen::raft::sim
