// Quorum arithmetic against a brute-force model: every subset of voters is enumerated.
#include "raft/quorum.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/clock.h"

namespace dolmen::raft {
namespace {

// The largest index i such that some majority of voters all acked >= i.
Index ModelCommitted(const std::vector<uint64_t>& acked) {
  const size_t n = acked.size();
  uint64_t best = 0;
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    if (static_cast<size_t>(__builtin_popcount(mask)) <= n / 2) continue;
    uint64_t lowest = UINT64_MAX;
    for (size_t i = 0; i < n; ++i) {
      if (mask & (1u << i)) lowest = std::min(lowest, acked[i]);
    }
    best = std::max(best, lowest);
  }
  return Index(best);
}

TEST(Quorum, CommittedIndexMatchesBruteForce) {
  SeededRandom random(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t n = 1 + random.Uniform(7);
    std::set<MemberId> voters;
    std::map<MemberId, Index> acks;
    std::vector<uint64_t> acked;
    for (size_t i = 0; i < n; ++i) {
      voters.insert(MemberId(i + 1));
      const uint64_t a = random.Uniform(10);
      acks[MemberId(i + 1)] = Index(a);
      acked.push_back(a);
    }
    EXPECT_EQ(QuorumCommittedIndex(voters, [&](MemberId id) { return acks.at(id); }),
              ModelCommitted(acked));
  }
}

TEST(Quorum, VoteResultMatchesBruteForce) {
  SeededRandom random(11);
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t n = 1 + random.Uniform(7);
    std::set<MemberId> voters;
    std::map<MemberId, bool> votes;
    size_t yes = 0;
    size_t missing = 0;
    for (size_t i = 0; i < n; ++i) {
      voters.insert(MemberId(i + 1));
      switch (random.Uniform(3)) {
        case 0:
          votes[MemberId(i + 1)] = true;
          ++yes;
          break;
        case 1:
          votes[MemberId(i + 1)] = false;
          break;
        default:
          ++missing;
          break;
      }
    }
    VoteResult want = VoteResult::kPending;
    if (yes > n / 2) {
      want = VoteResult::kWon;
    } else if (yes + missing <= n / 2) {
      want = VoteResult::kLost;
    }
    EXPECT_EQ(QuorumVoteResult(voters, votes), want) << "n=" << n << " yes=" << yes;
  }
}

TEST(Quorum, NonVotersAreIgnored) {
  std::set<MemberId> voters{MemberId(1), MemberId(2), MemberId(3)};
  std::map<MemberId, bool> votes{{MemberId(1), true}, {MemberId(9), true}};
  EXPECT_EQ(QuorumVoteResult(voters, votes), VoteResult::kPending);
  EXPECT_EQ(QuorumCommittedIndex({}, [](MemberId) { return Index(5); }), Index(0));
}

}  // namespace
}  // namespace dolmen::raft
