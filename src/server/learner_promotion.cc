// Server's side of --auto-promote-learners: the LearnerPromoter (learner_promoter.h) on this
// member's membership, Raft progress (Driver::CheckLearnerReady) and MemberPromote.
#include "log/log.h"
#include "server/await_status.h"
#include "server/server.h"

namespace dolmen::server {

void Server::StartLearnerPromotion() {
  if (!config_.auto_promote_learners) return;
  LearnerPromoter::Deps deps;
  deps.clock = clock_;
  deps.is_leader = [this] { return IsLeader(); };
  deps.learners = [this] {
    std::vector<LearnerPromoter::Learner> out;
    for (const auto& m : membership_->List()) {
      if (m.is_learner()) out.push_back({MemberId(m.id()), m.name()});
    }
    return out;
  };
  const auto timeout = config_.driver.request_timeout;
  deps.check_ready = [this, timeout](MemberId id) {
    return AwaitStatus([this, id](auto done) { driver_->CheckLearnerReady(id, done); }, timeout);
  };
  deps.promote = [this, timeout](MemberId id) {
    etcdserverpb::MemberPromoteRequest request;
    request.set_id(id.value());
    return AwaitStatus(
        [this, request](auto done) {
          MemberPromoteHere(
              request, [done](Result<etcdserverpb::MemberPromoteResponse> r) { done(r.status()); });
        },
        timeout);
  };
  deps.log = [](const std::string& line) { log::Info(line); };
  log::Info("auto-promote-learners: the leader promotes a learner once it has stayed in sync",
            {{"check-interval", config_.learner_promotion.interval},
             {"in-sync-window", config_.learner_promotion.window}});
  learner_promoter_ = std::make_unique<LearnerPromoter>(config_.learner_promotion, std::move(deps));
  learner_promoter_->Start();
}

}  // namespace dolmen::server
