// When a message from each peer last reached this member: the leader's view of which voters are
// healthy, for dead-member removal (removal_rule.h). The driver records every message it steps
// (owner thread); the remover reads a copy from its own thread. Bounded by the member list: one
// entry per peer that ever sent a message (a removed peer's entry stays until restart, a few
// bytes).
#pragma once

#include <chrono>
#include <map>
#include <mutex>

#include "base/ids.h"

namespace dolmen::server {

class PeerContact {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  void Heard(MemberId from, TimePoint at) {
    std::lock_guard lock(mu_);
    last_heard_[from] = at;
  }
  std::map<MemberId, TimePoint> LastHeard() const {
    std::lock_guard lock(mu_);
    return last_heard_;
  }

 private:
  mutable std::mutex mu_;
  std::map<MemberId, TimePoint> last_heard_;
};

}  // namespace dolmen::server
