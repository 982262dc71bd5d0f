#include "raft/quorum.h"

#include <algorithm>
#include <vector>

namespace dolmen::raft {

Index QuorumCommittedIndex(const std::set<MemberId>& voters,
                           const std::function<Index(MemberId)>& acked) {
  if (voters.empty()) return Index(0);
  std::vector<Index> indexes;
  indexes.reserve(voters.size());
  for (MemberId id : voters) indexes.push_back(acked(id));
  // Sorted descending, the (n/2)-th value is held by n/2 + 1 voters: a majority.
  std::sort(indexes.begin(), indexes.end(), std::greater<>());
  return indexes[voters.size() / 2];
}

VoteResult QuorumVoteResult(const std::set<MemberId>& voters,
                            const std::map<MemberId, bool>& votes) {
  // With no voters there is nobody to ask; a node only campaigns when it is a voter itself.
  if (voters.empty()) return VoteResult::kWon;
  size_t granted = 0;
  size_t rejected = 0;
  for (MemberId id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected)++;
  }
  const size_t majority = voters.size() / 2 + 1;
  if (granted >= majority) return VoteResult::kWon;
  if (voters.size() - rejected < majority) return VoteResult::kLost;
  return VoteResult::kPending;
}

bool QuorumActive(const std::set<MemberId>& voters, const std::function<bool(MemberId)>& active) {
  size_t n = 0;
  for (MemberId id : voters) n += active(id) ? 1 : 0;
  return n >= voters.size() / 2 + 1;
}

}  // namespace dolmen::raft
