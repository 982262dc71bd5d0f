// SimNetwork: a deterministic network for the simulators (the Raft-only one in tests/sim and
// the whole-cluster one here). Every message gets a fate when
// sent: dropped, delivered once or twice, after a random delay (so messages reorder). A
// partition splits nodes into groups; messages crossing groups are dropped at delivery time, so
// a partition also cuts what was already in flight.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <vector>

#include "base/clock.h"
#include "raft/message.h"

namespace dolmen::sim {

struct NetworkFaults {
  uint32_t drop_per_mille = 0;
  uint32_t duplicate_per_mille = 0;
  uint64_t min_delay = 1;  // in simulator time units
  uint64_t max_delay = 1;
  // A duplicated proposal forwarded to the leader is appended and applied twice (Raft does not
  // deduplicate proposals; etcd's TCP streams never duplicate a message). The whole-cluster
  // simulator turns this off: its clients count on each write applying once.
  bool duplicate_proposals = true;
};

class SimNetwork {
 public:
  // Bound on messages in flight; beyond it new messages are dropped, as a full socket buffer
  // would.
  static constexpr size_t kMaxInFlight = 200000;

  SimNetwork(Random* random, NetworkFaults faults) : random_(random), faults_(faults) {}

  void Send(raft::Message m, uint64_t now);
  // Removes and returns the messages due at or before `now`, in delivery order. Messages
  // crossing a partition are moved to `cut` instead.
  std::vector<raft::Message> TakeDue(uint64_t now, std::vector<raft::Message>* cut);

  // Nodes in different groups cannot talk; nodes in no group talk to everyone.
  void Partition(std::vector<std::set<MemberId>> groups) { groups_ = std::move(groups); }
  void Heal() { groups_.clear(); }
  void SetFaults(NetworkFaults faults) { faults_ = faults; }
  bool Connected(MemberId a, MemberId b) const;
  bool partitioned() const { return !groups_.empty(); }
  size_t in_flight() const { return queue_.size(); }
  // When the earliest message in flight is due; nullopt when none is.
  std::optional<uint64_t> NextDue() const {
    if (queue_.empty()) return std::nullopt;
    return queue_.top().at;
  }
  // Messages dropped at send time that the sender's transport would notice (snapshots).
  std::vector<raft::Message> TakeDroppedSnapshots();

 private:
  struct Pending {
    uint64_t at;
    uint64_t seq;
    raft::Message m;
    bool operator>(const Pending& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void Enqueue(raft::Message m, uint64_t now);

  Random* random_;
  NetworkFaults faults_;
  uint64_t seq_ = 0;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> queue_;
  std::vector<std::set<MemberId>> groups_;
  std::vector<raft::Message> dropped_snapshots_;
};

}  // namespace dolmen::sim
