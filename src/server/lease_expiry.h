// The leader's lease clock: a thread that, every check interval, (1) follows leadership —
// promoting the lessor when this member became leader (every lease then expires TTL plus an
// extension from now) and demoting it when it lost leadership — and (2) on the leader, takes
// at most a bounded batch of expired leases and proposes a LeaseRevoke for each through the
// normal log path, so every member deletes the same keys at the same log index.
//
// Nothing here decides anything on a follower: expiry is the leader's decision, carried by
// the log. Keep-alives are not logged; they only move the leader's expiry times.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "base/ids.h"
#include "lease/lessor.h"

namespace dolmen::server {

struct LeaseExpiryOptions {
  std::chrono::milliseconds check_interval{500};
  // Revokes proposed per round: with the interval, etcd's 1000 revokes per second at most.
  size_t max_revokes_per_round = 500;
  // Added to every lease's TTL on promotion (etcd: one election timeout), so a lease the old
  // leader renewed just before it failed is not revoked by the new one.
  std::chrono::nanoseconds promote_extension{std::chrono::seconds(1)};
};

class LeaseExpiryChecker {
 public:
  using IsLeader = std::function<bool()>;
  // Proposes a revoke; must not block (the result arrives later, or never: the lessor hands
  // the lease out again after its retry interval).
  using ProposeRevoke = std::function<void(LeaseId)>;

  LeaseExpiryChecker(lease::Lessor* lessor, const Clock* clock, LeaseExpiryOptions options,
                     IsLeader is_leader, ProposeRevoke propose_revoke);
  ~LeaseExpiryChecker();
  LeaseExpiryChecker(const LeaseExpiryChecker&) = delete;
  LeaseExpiryChecker& operator=(const LeaseExpiryChecker&) = delete;

  void Start();
  void Stop();

  // Any thread: promote or demote the lessor if leadership changed since the last look.
  // Called every round, and by keep-alives arriving before the first round after an election.
  void FollowLeadership();
  // One round: FollowLeadership, then revoke what expired (leader only). Public for tests.
  void RunOnce();

 private:
  void Loop();

  lease::Lessor* const lessor_;
  const Clock* const clock_;
  const LeaseExpiryOptions options_;
  IsLeader is_leader_;
  ProposeRevoke propose_revoke_;

  std::mutex leadership_mu_;  // serializes FollowLeadership's look-and-act
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::server
