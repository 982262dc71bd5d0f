// --auto-promote-learners (dolmen; etcd-io/etcd#15107): on the leader, a learner that has stayed
// in sync with the leader's log for a whole window is promoted to a voter, with no operator.
// "In sync" is etcd's rule for a promotion (isLearnerReady: the learner's match index is at
// least 90% of the leader's), checked at every round; a learner that falls behind starts its
// window again. One promotion at a time: a round that promotes waits for the conf change to be
// applied and ends. Every decision is logged with its reason. docs/membership.md.
//
// Runs on its own thread from Server::Start to Server::Stop; Round is also called directly by
// tests with a ManualClock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "server/periodic_thread.h"

namespace dolmen::server {

struct LearnerPromoterOptions {
  // How often the leader looks at its learners, and how long one must stay in sync.
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds window{5000};
};

class LearnerPromoter {
 public:
  struct Learner {
    MemberId id;
    std::string name;  // empty until the learner has started and published it
  };
  struct Deps {
    const Clock* clock = nullptr;
    std::function<bool()> is_leader;
    std::function<std::vector<Learner>()> learners;
    // Blocking, bounded by the caller: OK when `id` is in sync (etcd's 90% rule) on this
    // leader; the reason otherwise.
    std::function<Status(MemberId id)> check_ready;
    // Blocking, bounded: promotes `id` through the log (MemberPromote's rules).
    std::function<Status(MemberId id)> promote;
    std::function<void(const std::string&)> log;
  };

  LearnerPromoter(LearnerPromoterOptions options, Deps deps);
  ~LearnerPromoter();  // Stop
  LearnerPromoter(const LearnerPromoter&) = delete;
  LearnerPromoter& operator=(const LearnerPromoter&) = delete;

  void Start();
  void Stop();
  // One look at the learners; promotes at most one.
  void Round();

 private:
  std::string Describe(const Learner& learner) const;

  LearnerPromoterOptions options_;
  Deps deps_;
  // Since when each learner has been in sync at every round (by member id). Thread of Round.
  std::map<uint64_t, std::chrono::steady_clock::time_point> in_sync_since_;
  PeriodicThread thread_;  // last: stopped (joined) before the state above goes
};

}  // namespace dolmen::server
