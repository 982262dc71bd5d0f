// Server's side of dead-member removal (docs/membership.md): the DeadMemberRemover
// (dead_member_remover.h) on this member's membership, the driver's peer contact times and
// MemberRemove. Which members look dead comes from ServerConfig::find_dead_members (the auto
// scaling group, wired by embed) or, for static clusters, from unreachability here.
#include <algorithm>

#include "log/log.h"
#include "server/await_status.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

long long Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

void Server::StartMemberRemoval() {
  const bool by_group = static_cast<bool>(config_.find_dead_members);
  const bool by_reachability = config_.remove_unreachable_after.count() > 0;
  if (!by_group && !by_reachability) return;
  DeadMemberRemoverOptions options = config_.member_removal;
  // Healthy: heard from within one election timeout (a follower answers every heartbeat).
  options.health_window = config_.driver.tick_interval * config_.driver.election_ticks;
  DeadMemberRemover::Deps deps;
  deps.clock = clock_;
  deps.self = member_id_;
  deps.is_leader = [this] { return IsLeader(); };
  deps.members = [this] {
    std::vector<DeadMemberRemover::Member> out;
    for (const auto& m : membership_->List()) {
      out.push_back({MemberId(m.id()), m.name(),
                     std::vector<std::string>(m.peer_urls().begin(), m.peer_urls().end()),
                     m.is_learner()});
    }
    return out;
  };
  deps.last_heard = [this] { return driver_->peer_contact().LastHeard(); };
  if (by_group) {
    deps.find_dead = config_.find_dead_members;
  } else {
    // Static clusters: a voter not heard from for a health window looks dead; the grace is
    // --auto-remove-unreachable-after.
    options.grace = config_.remove_unreachable_after;
    options.interval = std::clamp(options.grace / 4, std::chrono::milliseconds(250),
                                  std::chrono::milliseconds(5000));
    const auto window = options.health_window;
    deps.find_dead = [this, window](const std::vector<DeadMemberRemover::Member>& members)
        -> Result<std::map<MemberId, std::string>> {
      const auto now = clock_->Now();
      const auto heard = driver_->peer_contact().LastHeard();
      std::map<MemberId, std::string> dead;
      for (const auto& m : members) {
        if (m.is_learner || m.id == member_id_) continue;
        auto h = heard.find(m.id);
        if (h == heard.end()) {
          dead[m.id] = "unreachable: never heard from since this member started";
        } else if (now - h->second > window) {
          dead[m.id] =
              "unreachable: not heard from for " + std::to_string(Ms(now - h->second)) + " ms";
        }
      }
      return dead;
    };
  }
  const auto timeout = config_.driver.request_timeout;
  deps.remove = [this, timeout](MemberId id) {
    etcdserverpb::MemberRemoveRequest request;
    request.set_id(id.value());
    return AwaitStatus(
        [this, request](auto done) {
          MemberRemove(request,
                       [done](Result<etcdserverpb::MemberRemoveResponse> r) { done(r.status()); });
        },
        timeout);
  };
  deps.log = [](const std::string& line) { log::Info(line); };
  deps.warn = [](const std::string& line) { log::Warn(line); };
  log::Info(by_group ? "dead-member removal: the leader removes members whose instance left the "
                       "auto scaling group"
                     : "dead-member removal: the leader removes voters unreachable for longer "
                       "than the grace period",
            {{"check-interval", options.interval},
             {"grace", options.grace},
             {"health-window", options.health_window}});
  dead_member_remover_ = std::make_unique<DeadMemberRemover>(options, std::move(deps));
  dead_member_remover_->Start();
}

}  // namespace dolmen::server
