#include "server/removal_rule.h"

#include <gtest/gtest.h>

namespace dolmen::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = RemovalVerdict::Kind;

const auto kT0 = std::chrono::steady_clock::time_point{} + seconds(1000);
constexpr milliseconds kGrace{2000};

RemovalCandidateView Voter(uint64_t id, bool healthy) {
  RemovalCandidateView m;
  m.id = MemberId(id);
  m.name = "i-" + std::to_string(id);
  m.healthy = healthy;
  return m;
}

RemovalCandidateView Dead(RemovalCandidateView m, seconds dead_for) {
  m.dead_since = kT0 - dead_for;
  m.why_dead = "instance " + m.name + " is Terminated";
  return m;
}

RemovalCandidateView Self(uint64_t id) {
  RemovalCandidateView m = Voter(id, true);
  m.is_self = true;
  return m;
}

Kind VerdictFor(const RemovalPlan& plan, uint64_t id) {
  for (const auto& v : plan.verdicts) {
    if (v.id == MemberId(id)) return v.kind;
  }
  ADD_FAILURE() << "no verdict for " << id;
  return Kind::kRemove;
}

TEST(RemovalRuleTest, NothingDeadNothingToDo) {
  auto plan = DecideRemoval({Self(1), Voter(2, true), Voter(3, true)}, kT0, kGrace);
  EXPECT_FALSE(plan.remove);
  EXPECT_TRUE(plan.verdicts.empty());
}

TEST(RemovalRuleTest, WaitsForTheGracePeriodThenRemoves) {
  auto early =
      DecideRemoval({Self(1), Voter(2, true), Dead(Voter(3, false), seconds(1))}, kT0, kGrace);
  EXPECT_FALSE(early.remove);
  EXPECT_EQ(VerdictFor(early, 3), Kind::kWaitingForGrace);
  EXPECT_NE(early.verdicts[0].reason.find("1000 of 2000 ms"), std::string::npos)
      << early.verdicts[0].reason;

  auto late =
      DecideRemoval({Self(1), Voter(2, true), Dead(Voter(3, false), seconds(2))}, kT0, kGrace);
  ASSERT_TRUE(late.remove);
  EXPECT_EQ(*late.remove, MemberId(3));
  EXPECT_NE(late.verdicts[0].reason.find("instance i-3 is Terminated; removing it"),
            std::string::npos)
      << late.verdicts[0].reason;
}

// Consul autopilot's min-quorum rule: a healthy member whose instance is terminated cannot go
// while a dead voter still counts in the configuration; the dead one goes first.
TEST(RemovalRuleTest, TwoOfThreeTerminatedOnlyTheSafeRemovalHappens) {
  auto plan = DecideRemoval(
      {Self(1), Dead(Voter(2, true), seconds(5)), Dead(Voter(3, false), seconds(5))}, kT0, kGrace);
  ASSERT_TRUE(plan.remove);
  EXPECT_EQ(*plan.remove, MemberId(3));
  EXPECT_EQ(VerdictFor(plan, 2), Kind::kRefusedByQuorum);
  const std::string& why = plan.verdicts[1].reason;
  EXPECT_NE(why.find("would leave 1 healthy of 2 voters, fewer than their quorum of 2"),
            std::string::npos)
      << why;
  // Once member 3 is gone, member 2 can go: member 1 alone is a healthy quorum of one.
  auto next = DecideRemoval({Self(1), Dead(Voter(2, true), seconds(6))}, kT0, kGrace);
  ASSERT_TRUE(next.remove);
  EXPECT_EQ(*next.remove, MemberId(2));
}

TEST(RemovalRuleTest, NoRemovalWithoutAHealthyQuorumNow) {
  // Member 2 is not heard from either: the removal of 3 could not commit.
  auto plan =
      DecideRemoval({Self(1), Voter(2, false), Dead(Voter(3, false), seconds(9))}, kT0, kGrace);
  EXPECT_FALSE(plan.remove);
  EXPECT_EQ(VerdictFor(plan, 3), Kind::kRefusedByQuorum);
  EXPECT_NE(plan.verdicts[0].reason.find("only 1 of 3 voters are healthy"), std::string::npos)
      << plan.verdicts[0].reason;
}

TEST(RemovalRuleTest, OneAtATimeDeadLearnersFirst) {
  RemovalCandidateView learner = Dead(Voter(9, false), seconds(3));
  learner.is_learner = true;
  auto plan = DecideRemoval({Self(1), Voter(2, true), Voter(3, true), Voter(4, true),
                             Dead(Voter(5, false), seconds(30)), learner},
                            kT0, kGrace);
  ASSERT_TRUE(plan.remove);
  EXPECT_EQ(*plan.remove, MemberId(9));
  EXPECT_EQ(VerdictFor(plan, 5), Kind::kWaitingForTurn);
}

TEST(RemovalRuleTest, FiveMembersTwoDeadAreRemovedOneAfterTheOther) {
  auto first = DecideRemoval({Self(1), Voter(2, true), Voter(3, true),
                              Dead(Voter(4, false), seconds(4)), Dead(Voter(5, false), seconds(3))},
                             kT0, kGrace);
  ASSERT_TRUE(first.remove);
  EXPECT_EQ(*first.remove, MemberId(4));  // dead for longer
  EXPECT_EQ(VerdictFor(first, 5), Kind::kWaitingForTurn);
  auto second = DecideRemoval(
      {Self(1), Voter(2, true), Voter(3, true), Dead(Voter(5, false), seconds(3))}, kT0, kGrace);
  ASSERT_TRUE(second.remove);
  EXPECT_EQ(*second.remove, MemberId(5));
}

TEST(RemovalRuleTest, TheLeaderNeverRemovesItself) {
  auto plan =
      DecideRemoval({Dead(Self(1), seconds(10)), Voter(2, true), Voter(3, true)}, kT0, kGrace);
  EXPECT_FALSE(plan.remove);
  EXPECT_EQ(VerdictFor(plan, 1), Kind::kRefusedSelf);
}

TEST(RemovalRuleTest, TheLastVoterStays) {
  // A two-member cluster whose other member is healthy but terminated: removing it leaves the
  // leader alone, a healthy quorum of one: allowed. The leader itself is never removed.
  auto plan = DecideRemoval({Self(1), Dead(Voter(2, true), seconds(5))}, kT0, kGrace);
  ASSERT_TRUE(plan.remove);
  EXPECT_EQ(*plan.remove, MemberId(2));
  // A dead member of a two-member cluster cannot be removed: the removal needs both votes.
  auto stuck = DecideRemoval({Self(1), Dead(Voter(2, false), seconds(5))}, kT0, kGrace);
  EXPECT_FALSE(stuck.remove);
  EXPECT_EQ(VerdictFor(stuck, 2), Kind::kRefusedByQuorum);
}

// Brute force over every 3- and 5-voter health pattern: a removal the rule allows always leaves
// a healthy majority of the voters that remain, and is committable by the current ones.
TEST(RemovalRuleTest, AnAllowedRemovalAlwaysKeepsAHealthyMajority) {
  for (int n : {3, 4, 5}) {
    for (int mask = 0; mask < (1 << n); ++mask) {
      for (int victim = 1; victim < n; ++victim) {
        std::vector<RemovalCandidateView> members{Self(1)};
        for (int i = 1; i < n; ++i) {
          auto v = Voter(i + 1, (mask >> i) & 1);
          members.push_back(i == victim ? Dead(v, seconds(10)) : v);
        }
        auto plan = DecideRemoval(members, kT0, kGrace);
        int healthy_now = 0, healthy_after = 0;
        for (const auto& m : members) {
          const bool h = m.healthy || m.is_self;
          healthy_now += h;
          if (m.id != MemberId(victim + 1)) healthy_after += h;
        }
        const bool safe = healthy_now >= n / 2 + 1 && healthy_after >= (n - 1) / 2 + 1;
        EXPECT_EQ(plan.remove.has_value(), safe) << "n=" << n << " mask=" << mask;
      }
    }
  }
}

}  // namespace
}  // namespace dolmen::server
