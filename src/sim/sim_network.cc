#include "sim/sim_network.h"

#include <utility>

namespace dolmen::sim {

bool SimNetwork::Connected(MemberId a, MemberId b) const {
  int ga = -1;
  int gb = -1;
  for (size_t i = 0; i < groups_.size(); ++i) {
    if (groups_[i].count(a)) ga = static_cast<int>(i);
    if (groups_[i].count(b)) gb = static_cast<int>(i);
  }
  return ga == -1 || gb == -1 || ga == gb;
}

void SimNetwork::Enqueue(raft::Message m, uint64_t now) {
  if (queue_.size() >= kMaxInFlight) {
    if (m.type == raft::MessageType::kSnap) dropped_snapshots_.push_back(std::move(m));
    return;
  }
  const uint64_t span = faults_.max_delay - faults_.min_delay + 1;
  const uint64_t at = now + faults_.min_delay + random_->Uniform(span);
  queue_.push(Pending{at, seq_++, std::move(m)});
}

void SimNetwork::Send(raft::Message m, uint64_t now) {
  if (random_->Uniform(1000) < faults_.drop_per_mille) {
    if (m.type == raft::MessageType::kSnap) dropped_snapshots_.push_back(std::move(m));
    return;
  }
  const bool duplicate = random_->Uniform(1000) < faults_.duplicate_per_mille;
  if (duplicate && (faults_.duplicate_proposals || m.type != raft::MessageType::kProp)) {
    Enqueue(m, now);
  }
  Enqueue(std::move(m), now);
}

std::vector<raft::Message> SimNetwork::TakeDue(uint64_t now, std::vector<raft::Message>* cut) {
  std::vector<raft::Message> out;
  while (!queue_.empty() && queue_.top().at <= now) {
    // priority_queue::top is const; the element is popped right after, so moving is safe.
    raft::Message m = std::move(const_cast<Pending&>(queue_.top()).m);
    queue_.pop();
    if (Connected(m.from, m.to)) {
      out.push_back(std::move(m));
    } else {
      cut->push_back(std::move(m));
    }
  }
  return out;
}

std::vector<raft::Message> SimNetwork::TakeDroppedSnapshots() {
  std::vector<raft::Message> out = std::move(dropped_snapshots_);
  dropped_snapshots_.clear();
  return out;
}

}  // namespace dolmen::sim
