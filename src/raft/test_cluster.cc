#include "raft/test_cluster.h"

#include <utility>

namespace dolmen::raft::testing {

TestCluster::TestCluster(int voters, int learners, std::function<void(Config*)> tweak)
    : tweak_(std::move(tweak)) {
  ConfState cs;
  for (int i = 1; i <= voters; ++i) cs.voters.push_back(MemberId(i));
  for (int i = voters + 1; i <= voters + learners; ++i) cs.learners.push_back(MemberId(i));
  for (int i = 1; i <= voters + learners; ++i) {
    TestNode& n = nodes_[MemberId(i)];
    n.storage = std::make_unique<MemoryStorage>(cs);
    n.conf_state = cs;
    auto node = RawNode::Create(MakeConfig(MemberId(i)));
    CHECK(node.ok()) << node.status().ToString();
    n.node = std::move(*node);
  }
}

Config TestCluster::MakeConfig(MemberId id) {
  Config c;
  c.id = id;
  c.election_ticks = 10;
  c.heartbeat_ticks = 1;
  c.storage = nodes_.at(id).storage.get();
  c.random_seed = 42;
  if (tweak_) tweak_(&c);
  return c;
}

void TestCluster::AddEmptyNode(uint64_t id) {
  TestNode& n = nodes_[MemberId(id)];
  n.storage = std::make_unique<MemoryStorage>();
  auto node = RawNode::Create(MakeConfig(MemberId(id)));
  CHECK(node.ok()) << node.status().ToString();
  n.node = std::move(*node);
}

void TestCluster::Restart(uint64_t id) {
  TestNode& n = nodes_.at(MemberId(id));
  // The state machine is rebuilt from the log: applied restarts at the snapshot.
  n.applied.clear();
  auto snap = n.storage->GetSnapshot();
  CHECK(snap.ok());
  n.conf_state = snap->metadata.conf_state;
  Config c = MakeConfig(MemberId(id));
  auto node = RawNode::Create(c);
  CHECK(node.ok()) << node.status().ToString();
  n.node = std::move(*node);
}

bool TestCluster::ProcessReady(MemberId id) {
  TestNode& n = nodes_.at(id);
  if (!n.node->HasReady()) return false;
  Ready rd = n.node->GetReady();
  if (rd.snapshot) {
    CHECK(n.storage->ApplySnapshot(*rd.snapshot).ok());
    n.conf_state = rd.snapshot->metadata.conf_state;
  }
  CHECK(n.storage->Append(rd.entries).ok());
  if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
  for (Message& m : rd.messages) {
    sent_.push_back(m);
    in_flight_.push_back(std::move(m));
  }
  for (const Entry& e : rd.committed_entries) {
    if (e.type == EntryType::kConfChange) {
      auto cc = DecodeConfChangeV2(e.data);
      CHECK(cc.ok());
      n.conf_state = n.node->ApplyConfChangeV2(*cc);
    }
    n.applied.push_back(e);
  }
  for (ReadState& r : rd.read_states) n.read_states.push_back(std::move(r));
  n.node->Advance(rd);
  return true;
}

void TestCluster::Stabilize() {
  for (int round = 0; round < 10000; ++round) {
    bool moved = false;
    for (auto& [id, n] : nodes_) moved |= ProcessReady(id);
    while (!in_flight_.empty()) {
      Message m = std::move(in_flight_.front());
      in_flight_.pop_front();
      moved = true;
      const bool dropped = drop_ && drop_(m);
      deliveries_.emplace_back(m, dropped);
      if (dropped) continue;
      auto it = nodes_.find(m.to);
      if (it == nodes_.end()) continue;
      it->second.node->Step(m).IgnoreError();  // a dropped forward is the sender's problem
    }
    if (!moved) return;
  }
  CHECK(false) << "TestCluster did not stabilize";
}

void TestCluster::Tick(uint64_t id, int n) {
  for (int i = 0; i < n; ++i) {
    node(id).Tick();
    Stabilize();
  }
}

void TestCluster::TickAll(int n) {
  for (int i = 0; i < n; ++i) {
    for (auto& [id, node] : nodes_) node.node->Tick();
    Stabilize();
  }
}

void TestCluster::Elect(uint64_t id) {
  CHECK(node(id).Campaign().ok());
  Stabilize();
  CHECK(raft(id).role() == Role::kLeader) << "node " << id << " did not win";
}

void TestCluster::Isolate(uint64_t id) {
  const MemberId m(id);
  drop_ = [m](const Message& msg) { return msg.from == m || msg.to == m; };
}

uint64_t TestCluster::Leader() {
  uint64_t leader = 0;
  for (auto& [id, n] : nodes_) {
    if (n.node->raft().role() == Role::kLeader) leader = id.value();
  }
  return leader;
}

}  // namespace dolmen::raft::testing
