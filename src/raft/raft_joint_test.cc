// Joint consensus (Raft paper §6): several members change at once through a configuration in
// which every decision needs a majority of the old voters and of the new.
#include <gtest/gtest.h>

#include <functional>

#include "raft/test_cluster.h"

namespace dolmen::raft {
namespace {

using testing::TestCluster;

ConfChangeV2 Replace3With4(ConfChangeTransition transition) {
  ConfChangeV2 cc;
  cc.transition = transition;
  cc.changes = {{ConfChangeType::kAddNode, MemberId(4)},
                {ConfChangeType::kRemoveNode, MemberId(3)}};
  return cc;
}

// Nodes 1-3, node 4 started empty; node 1 leads and enters the joint configuration
// {1,2,4} & {1,2,3}.
struct JointCluster {
  explicit JointCluster(ConfChangeTransition transition,
                        std::function<void(Config*)> tweak = nullptr)
      : c(3, 0, std::move(tweak)) {
    c.Elect(1);
    c.AddEmptyNode(4);
    Status s = c.node(1).ProposeConfChangeV2(Replace3With4(transition));
    CHECK(s.ok()) << s.ToString();
    c.Stabilize();
  }
  Index ProposeAndCommitIndex(const std::string& data) {
    CHECK(c.node(1).Propose(data).ok());
    c.Stabilize();
    return c.raft(1).log().committed();
  }
  TestCluster c;
};

TEST(RaftJoint, AutoLeaveReachesTheNewConfiguration) {
  JointCluster j(ConfChangeTransition::kAuto);
  const ProgressTracker& t = j.c.raft(1).tracker();
  EXPECT_FALSE(t.IsJoint());
  EXPECT_EQ(t.voters(), (std::set<MemberId>{MemberId(1), MemberId(2), MemberId(4)}));
  EXPECT_FALSE(t.IsMember(MemberId(3)));
  EXPECT_TRUE(j.c[4].conf_state.voters_outgoing.empty());
  EXPECT_EQ(j.c[4].conf_state.voters,
            (std::vector<MemberId>{MemberId(1), MemberId(2), MemberId(4)}));
}

TEST(RaftJoint, ExplicitLeaveWaitsForTheApplication) {
  JointCluster j(ConfChangeTransition::kJointExplicit);
  const ProgressTracker& t = j.c.raft(1).tracker();
  ASSERT_TRUE(t.IsJoint());
  EXPECT_EQ(t.voters_outgoing(), (std::set<MemberId>{MemberId(1), MemberId(2), MemberId(3)}));
  // No other change while joint.
  EXPECT_EQ(j.c.node(1).ProposeConfChange({ConfChangeType::kAddLearner, MemberId(9), ""}).code(),
            Code::kInvalidArgument);
  ASSERT_TRUE(j.c.node(1).ProposeConfChangeV2(ConfChangeV2{}).ok());
  j.c.Stabilize();
  EXPECT_FALSE(t.IsJoint());
  EXPECT_FALSE(t.IsMember(MemberId(3)));
}

TEST(RaftJoint, CommitNeedsBothMajorities) {
  JointCluster j(ConfChangeTransition::kJointExplicit);
  ASSERT_TRUE(j.c.raft(1).tracker().IsJoint());
  auto cut = [&](uint64_t a, uint64_t b) {
    j.c.SetDropFilter([a, b](const Message& m) {
      return m.to == MemberId(a) || m.from == MemberId(a) || m.to == MemberId(b) ||
             m.from == MemberId(b);
    });
  };
  // 2 down: {1,4} of the new and {1,3} of the old are majorities.
  cut(2, 2);
  Index before = j.c.raft(1).log().committed();
  EXPECT_GT(j.ProposeAndCommitIndex("a"), before);
  // 2 and 4 down: the new configuration has no majority.
  j.c.Heal();
  j.c.Tick(1, 1);
  cut(2, 4);
  before = j.c.raft(1).log().committed();
  EXPECT_EQ(j.ProposeAndCommitIndex("b"), before);
  // 2 and 3 down: the old configuration has no majority.
  j.c.Heal();
  j.c.Tick(1, 1);
  cut(2, 3);
  before = j.c.raft(1).log().committed();
  EXPECT_EQ(j.ProposeAndCommitIndex("c"), before);
}

TEST(RaftJoint, ElectionNeedsBothMajorities) {
  JointCluster j(ConfChangeTransition::kJointExplicit, [](Config* c) {
    c->pre_vote = false;  // the plain election rule, without leases in the way
    c->check_quorum = false;
  });
  // Node 2 reaches only node 4: a majority of {1,2,4} but not of {1,2,3}.
  j.c.SetDropFilter([](const Message& m) {
    return m.to == MemberId(1) || m.from == MemberId(1) || m.to == MemberId(3) ||
           m.from == MemberId(3);
  });
  ASSERT_TRUE(j.c.node(2).Campaign().ok());
  j.c.Stabilize();
  EXPECT_EQ(j.c.raft(2).role(), Role::kCandidate);
  // With node 3's vote as well, it wins.
  j.c.SetDropFilter([](const Message& m) { return m.to == MemberId(1) || m.from == MemberId(1); });
  ASSERT_TRUE(j.c.node(2).Campaign().ok());
  j.c.Stabilize();
  EXPECT_EQ(j.c.raft(2).role(), Role::kLeader);
}

TEST(RaftJoint, LeaderRemovedByJointChangeStepsDownOnLeaving) {
  TestCluster c(3);
  c.Elect(1);
  c.AddEmptyNode(4);
  ConfChangeV2 cc;
  cc.changes = {{ConfChangeType::kAddNode, MemberId(4)},
                {ConfChangeType::kRemoveNode, MemberId(1)}};
  ASSERT_TRUE(c.node(1).ProposeConfChangeV2(cc).ok());
  c.Stabilize();
  // It led through the joint phase (it was still an outgoing voter), then stepped down.
  EXPECT_FALSE(c.raft(2).tracker().IsJoint());
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_FALSE(c.raft(2).tracker().IsMember(MemberId(1)));
}

TEST(RaftJoint, DemotedVoterStaysVoterUntilLeaving) {
  TestCluster c(3);
  c.Elect(1);
  ConfChangeV2 cc;
  cc.transition = ConfChangeTransition::kJointExplicit;
  cc.changes = {{ConfChangeType::kAddLearner, MemberId(3)}};
  ASSERT_TRUE(c.node(1).ProposeConfChangeV2(cc).ok());
  c.Stabilize();
  const ProgressTracker& t = c.raft(1).tracker();
  EXPECT_TRUE(t.IsVoter(MemberId(3)));  // still in the outgoing voters
  EXPECT_EQ(c[1].conf_state.learners_next, std::vector<MemberId>{MemberId(3)});
  ASSERT_TRUE(c.node(1).ProposeConfChangeV2(ConfChangeV2{}).ok());
  c.Stabilize();
  EXPECT_FALSE(t.IsVoter(MemberId(3)));
  EXPECT_TRUE(t.IsLearner(MemberId(3)));
}

TEST(RaftJoint, SimpleChangeMayAlterOneVoterOnly) {
  TestCluster c(3);
  c.Elect(1);
  ConfChangeV2 cc;  // one change, kAuto: a simple change
  cc.changes = {{ConfChangeType::kAddNode, MemberId(4)}};
  EXPECT_TRUE(c.node(1).ProposeConfChangeV2(cc).ok());
  ConfChangeV2 leave;  // not joint: nothing to leave
  c.Stabilize();
  EXPECT_EQ(c.node(1).ProposeConfChangeV2(leave).code(), Code::kInvalidArgument);
}

TEST(RaftJoint, EncodingRoundTripsAndAcceptsV1) {
  ConfChangeV2 cc = Replace3With4(ConfChangeTransition::kJointImplicit);
  cc.context = "ctx";
  auto decoded = DecodeConfChangeV2(EncodeConfChangeV2(cc));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, cc);
  auto from_v1 =
      DecodeConfChangeV2(EncodeConfChange({ConfChangeType::kRemoveNode, MemberId(7), "x"}));
  ASSERT_TRUE(from_v1.ok());
  EXPECT_EQ(from_v1->changes.size(), 1u);
  EXPECT_FALSE(from_v1->EntersJoint());
  std::string bad = EncodeConfChangeV2(cc);
  bad[1] = 9;  // unknown transition
  EXPECT_FALSE(DecodeConfChangeV2(bad).ok());
}

}  // namespace
}  // namespace dolmen::raft
