// Majority quorum arithmetic over a set of voters. Pure functions; the tests check them against a
// brute-force model.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>

#include "base/ids.h"

namespace dolmen::raft {

enum class VoteResult { kPending, kLost, kWon };

// The largest index that a majority of `voters` has acknowledged, given `acked(id)` (0 if a
// voter has acknowledged nothing). An empty voter set commits nothing (returns 0).
Index QuorumCommittedIndex(const std::set<MemberId>& voters,
                           const std::function<Index(MemberId)>& acked);

// The outcome of an election given the votes received so far (true = granted).
VoteResult QuorumVoteResult(const std::set<MemberId>& voters,
                            const std::map<MemberId, bool>& votes);

// Whether a majority of voters satisfies `active`.
bool QuorumActive(const std::set<MemberId>& voters, const std::function<bool(MemberId)>& active);

}  // namespace dolmen::raft
