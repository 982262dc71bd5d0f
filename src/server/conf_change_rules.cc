#include "server/conf_change_rules.h"

#include <algorithm>
#include <string>

namespace dolmen::server {

Status CheckLearnerAddAtApply(const raft::ConfChange& cc, const internal::Member& member,
                              const Membership& membership, size_t max_learners) {
  if (cc.type != raft::ConfChangeType::kAddLearner) return OkStatus();
  // Known already (or removed: Membership::Add ignores it): not a new learner.
  if (membership.Get(cc.node_id) || membership.IsRemoved(cc.node_id)) return OkStatus();
  size_t learners = 0;
  for (const auto& m : membership.List()) {
    learners += m.is_learner() ? 1 : 0;
    for (const auto& url : m.peer_urls()) {
      if (std::find(member.peer_urls().begin(), member.peer_urls().end(), url) !=
          member.peer_urls().end()) {
        return {Code::kFailedPrecondition, "Peer URLs already exists"};
      }
    }
  }
  if (learners >= std::max<size_t>(max_learners, 1)) {
    return {Code::kFailedPrecondition, "too many learner members in cluster"};
  }
  return OkStatus();
}

bool TookEffect(const raft::ConfChange& cc, const Membership& membership) {
  if (cc.type != raft::ConfChangeType::kAddLearner) return true;
  return membership.Get(cc.node_id).has_value() || membership.IsRemoved(cc.node_id);
}

}  // namespace dolmen::server
