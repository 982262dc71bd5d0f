// TestCluster: a few RawNodes wired together by a synchronous in-memory network, for unit tests.
// Each node follows the Ready contract exactly (persist, send, apply, advance). Messages are
// delivered in FIFO order unless a filter drops them. Test-only; the randomized, fault-injecting
// simulator lives in tests/sim.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace dolmen::raft::testing {

struct TestNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  std::vector<Entry> applied;  // every committed entry applied, in order
  std::vector<ReadState> read_states;
  ConfState conf_state;
};

class TestCluster {
 public:
  // Voters 1..voters (plus learners voters+1..voters+learners), all bootstrapped with the same
  // configuration. `tweak` adjusts each node's Config before it starts.
  explicit TestCluster(int voters, int learners = 0, std::function<void(Config*)> tweak = nullptr);

  TestNode& operator[](uint64_t id) { return nodes_.at(MemberId(id)); }
  RawNode& node(uint64_t id) { return *nodes_.at(MemberId(id)).node; }
  const Raft& raft(uint64_t id) { return node(id).raft(); }

  // Handles every node's Ready and delivers messages until nothing moves (bounded).
  void Stabilize();
  // Ticks one node n times, stabilizing after each tick.
  void Tick(uint64_t id, int n = 1);
  // Ticks every node once, n times, stabilizing after each round.
  void TickAll(int n = 1);
  // Elects `id` by campaigning and stabilizing. CHECKs that it won.
  void Elect(uint64_t id);

  // Messages matching the filter are dropped (e.g. to cut a link).
  void SetDropFilter(std::function<bool(const Message&)> drop) { drop_ = std::move(drop); }
  void Isolate(uint64_t id);
  void Heal() { drop_ = nullptr; }

  // Adds a fresh node with an empty log (for membership tests).
  void AddEmptyNode(uint64_t id);
  // Crash-restarts a node from what it persisted.
  void Restart(uint64_t id);
  // The leader among the nodes, or 0.
  uint64_t Leader();

  // Every message sent so far (for asserting on traffic).
  const std::vector<Message>& sent() const { return sent_; }
  void ClearSent() { sent_.clear(); }
  // Every delivery attempt so far, in order, with whether the drop filter ate it.
  const std::vector<std::pair<Message, bool>>& deliveries() const { return deliveries_; }
  void ClearDeliveries() { deliveries_.clear(); }

 private:
  Config MakeConfig(MemberId id);
  bool ProcessReady(MemberId id);

  std::function<void(Config*)> tweak_;
  std::map<MemberId, TestNode> nodes_;
  std::deque<Message> in_flight_;
  std::vector<Message> sent_;
  std::vector<std::pair<Message, bool>> deliveries_;
  std::function<bool(const Message&)> drop_;
};

}  // namespace dolmen::raft::testing
