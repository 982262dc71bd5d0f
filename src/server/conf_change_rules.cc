#include "server/conf_change_rules.h"

#include <algorithm>
#include <set>
#include <string>

namespace dolmen::server {

Status CheckPeerUrlsFree(const Membership& membership, const std::vector<std::string>& urls) {
  std::set<std::string> in_use;
  for (const auto& m : membership.List()) in_use.insert(m.peer_urls().begin(), m.peer_urls().end());
  for (const auto& url : urls) {
    if (in_use.count(url)) return {Code::kFailedPrecondition, "Peer URLs already exists"};
  }
  return OkStatus();
}

Status CheckRoomForALearner(const Membership& membership, size_t max_learners) {
  size_t learners = 0;
  for (const auto& m : membership.List()) learners += m.is_learner() ? 1 : 0;
  if (learners >= std::max<size_t>(max_learners, 1)) {
    return {Code::kFailedPrecondition, "too many learner members in cluster"};
  }
  return OkStatus();
}

Status CheckLearnerAddAtApply(const raft::ConfChange& cc, const internal::Member& member,
                              const Membership& membership, size_t max_learners) {
  if (cc.type != raft::ConfChangeType::kAddLearner) return OkStatus();
  // Known already (or removed: Membership::Add ignores it): not a new learner.
  if (membership.Get(cc.node_id) || membership.IsRemoved(cc.node_id)) return OkStatus();
  RETURN_IF_ERROR(CheckPeerUrlsFree(
      membership, std::vector<std::string>(member.peer_urls().begin(), member.peer_urls().end())));
  return CheckRoomForALearner(membership, max_learners);
}

bool TookEffect(const raft::ConfChange& cc, const Membership& membership) {
  if (cc.type != raft::ConfChangeType::kAddLearner) return true;
  return membership.Get(cc.node_id).has_value() || membership.IsRemoved(cc.node_id);
}

}  // namespace dolmen::server
