#include "server/lease_expiry.h"

#include <utility>
#include <vector>

namespace dolmen::server {

LeaseExpiryChecker::LeaseExpiryChecker(lease::Lessor* lessor, const Clock* clock,
                                       LeaseExpiryOptions options, IsLeader is_leader,
                                       ProposeRevoke propose_revoke)
    : lessor_(lessor),
      clock_(clock),
      options_(options),
      is_leader_(std::move(is_leader)),
      propose_revoke_(std::move(propose_revoke)) {}

LeaseExpiryChecker::~LeaseExpiryChecker() { Stop(); }

void LeaseExpiryChecker::Start() {
  CHECK(!thread_.joinable()) << "lease expiry checker started twice";
  thread_ = std::thread([this] { Loop(); });
}

void LeaseExpiryChecker::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseExpiryChecker::FollowLeadership() {
  std::lock_guard lock(leadership_mu_);
  const bool leader = is_leader_();
  if (leader && !lessor_->primary()) {
    lessor_->Promote(options_.promote_extension, clock_->Now());
  } else if (!leader && lessor_->primary()) {
    lessor_->Demote();
  }
}

void LeaseExpiryChecker::RunOnce() {
  FollowLeadership();
  if (!lessor_->primary()) return;
  std::vector<LeaseId> expired =
      lessor_->TakeExpired(clock_->Now(), options_.max_revokes_per_round);
  for (LeaseId id : expired) propose_revoke_(id);
}

void LeaseExpiryChecker::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    RunOnce();
    lock.lock();
    // Real time between rounds; the decisions themselves use the injected clock.
    cv_.wait_for(lock, options_.check_interval, [this] { return stopping_; });
  }
}

}  // namespace dolmen::server
