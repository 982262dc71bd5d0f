#include "server/dead_member_remover.h"

#include <algorithm>

#include "log/log.h"

namespace dolmen::server {

DeadMemberRemover::DeadMemberRemover(DeadMemberRemoverOptions options, Deps deps)
    : options_(options), deps_(std::move(deps)) {}

DeadMemberRemover::~DeadMemberRemover() { Stop(); }

void DeadMemberRemover::Start() {
  thread_.Start(options_.interval, [this] { return Round(); });
}

void DeadMemberRemover::Stop() { thread_.Stop(); }

std::vector<RemovalCandidateView> DeadMemberRemover::Views(
    const std::vector<Member>& members, const std::map<MemberId, std::string>& dead) const {
  const auto now = deps_.clock->Now();
  const auto heard = deps_.last_heard();
  std::vector<RemovalCandidateView> views;
  for (const Member& m : members) {
    RemovalCandidateView v;
    v.id = m.id;
    v.name = m.name;
    v.is_learner = m.is_learner;
    v.is_self = m.id == deps_.self;
    auto h = heard.find(m.id);
    v.healthy = v.is_self || (h != heard.end() && now - h->second <= options_.health_window);
    if (auto d = dead.find(m.id); d != dead.end()) {
      v.dead_since = dead_since_.at(m.id);
      v.why_dead = d->second;
    }
    views.push_back(std::move(v));
  }
  return views;
}

void DeadMemberRemover::LogVerdicts(const RemovalPlan& plan) {
  for (const RemovalVerdict& v : plan.verdicts) {
    auto [it, fresh] = last_verdict_.emplace(v.id, v.kind);
    if (!fresh && it->second == v.kind && v.kind != RemovalVerdict::Kind::kRemove) continue;
    it->second = v.kind;
    const std::string line = std::string("dead-member removal: ") + v.reason;
    const bool refused = v.kind == RemovalVerdict::Kind::kRefusedByQuorum ||
                         v.kind == RemovalVerdict::Kind::kRefusedSelf;
    (refused ? deps_.warn : deps_.log)(line);
  }
}

std::chrono::milliseconds DeadMemberRemover::Round() {
  if (!deps_.is_leader()) {
    // Only the leader removes; a new leader watches every member afresh.
    dead_since_.clear();
    last_verdict_.clear();
    backoff_ = std::chrono::milliseconds(0);
    return options_.interval;
  }
  const std::vector<Member> members = deps_.members();
  Result<std::map<MemberId, std::string>> dead = deps_.find_dead(members);
  if (!dead.ok()) {
    backoff_ = std::min(options_.max_backoff, std::max(options_.interval, backoff_ * 2));
    deps_.warn("dead-member removal: cannot tell which members are dead (" +
               dead.status().message() + "); nothing is removed; asking again in " +
               std::to_string(backoff_.count()) + " ms");
    return backoff_;
  }
  backoff_ = std::chrono::milliseconds(0);
  const auto now = deps_.clock->Now();
  for (auto it = dead_since_.begin(); it != dead_since_.end();) {
    if (dead->count(it->first)) {
      ++it;
      continue;
    }
    auto v = last_verdict_.find(it->first);
    if (v != last_verdict_.end()) {
      deps_.log("dead-member removal: member " + log::Hex(it->first.value()) +
                " no longer looks dead (or was removed); it is kept");
      last_verdict_.erase(v);
    }
    it = dead_since_.erase(it);
  }
  for (const auto& [id, why] : *dead) dead_since_.emplace(id, now);

  const RemovalPlan plan = DecideRemoval(Views(members, *dead), now, options_.grace);
  LogVerdicts(plan);
  if (!plan.remove) return options_.interval;
  const Status removed = deps_.remove(*plan.remove);
  if (removed.ok()) {
    deps_.log("dead-member removal: removed member " + log::Hex(plan.remove->value()));
    dead_since_.erase(*plan.remove);
    last_verdict_.erase(*plan.remove);
  } else {
    deps_.warn("dead-member removal: removing member " + log::Hex(plan.remove->value()) +
               " failed (" + removed.message() + "); trying again next round");
  }
  return options_.interval;
}

}  // namespace dolmen::server
