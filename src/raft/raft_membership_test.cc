// Membership changes (Raft thesis §4.1, one member at a time), learners, leader transfer
// (thesis §3.10) and ReadIndex (thesis §6.4).
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace dolmen::raft {
namespace {

using testing::TestCluster;

std::vector<std::string> AppliedData(const testing::TestNode& n) {
  std::vector<std::string> out;
  for (const Entry& e : n.applied) {
    if (!e.data.empty() && e.type == EntryType::kNormal) out.push_back(e.data);
  }
  return out;
}

ConfChange Change(ConfChangeType type, uint64_t id) { return ConfChange{type, MemberId(id), ""}; }

TEST(RaftMembership, AddLearnerThenPromote) {  // §6 / thesis §4.2.1
  TestCluster c(3);
  c.Elect(1);
  c.AddEmptyNode(4);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).ok());
  c.Stabilize();
  EXPECT_TRUE(c.raft(1).tracker().IsLearner(MemberId(4)));
  ASSERT_TRUE(c.node(1).Propose("x").ok());
  c.Stabilize();
  // The learner got the log (through the bootstrap snapshot and then entries)...
  EXPECT_EQ(AppliedData(c[4]), std::vector<std::string>{"x"});
  EXPECT_EQ(c[4].conf_state.learners, std::vector<MemberId>{MemberId(4)});
  // ...but does not count: with two voters cut off nothing commits.
  c.SetDropFilter([](const Message& m) {
    return m.to == MemberId(2) || m.to == MemberId(3) || m.from == MemberId(2) ||
           m.from == MemberId(3);
  });
  const Index committed = c.raft(1).log().committed();
  ASSERT_TRUE(c.node(1).Propose("y").ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).log().committed(), committed);
  c.Heal();
  c.Tick(1, 1);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddNode, 4)).ok());
  c.Stabilize();
  EXPECT_TRUE(c.raft(1).tracker().IsVoter(MemberId(4)));
  EXPECT_EQ(c.raft(1).tracker().voters().size(), 4u);
}

TEST(RaftMembership, OneChangeAtATime) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(2);
  c.SetDropFilter([](const Message& m) { return m.from != MemberId(1); });  // nothing commits
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).ok());
  Status s = c.node(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 5));
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  c.Heal();
  c.Tick(1, 1);
  EXPECT_TRUE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 5)).ok());
}

TEST(RaftMembership, NewLeaderWaitsForItsOwnEntryBeforeAChange) {
  // A new leader may hold an unapplied change from an earlier term in its log; it must not
  // propose another until it has applied everything up to its election.
  TestCluster c(3);
  c.SetDropFilter([](const Message& m) { return m.type == MessageType::kAppResp; });
  ASSERT_TRUE(c.node(1).Campaign().ok());
  c.Stabilize();
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).code(),
            Code::kFailedPrecondition);
}

TEST(RaftMembership, RemoveFollowerShrinksQuorum) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(ConfChangeType::kRemoveNode, 3)).ok());
  c.Stabilize();
  EXPECT_FALSE(c.raft(1).tracker().IsMember(MemberId(3)));
  // With {1, 2} both are needed; node 3's absence no longer matters.
  c.Isolate(3);
  ASSERT_TRUE(c.node(1).Propose("after").ok());
  c.Stabilize();
  EXPECT_EQ(AppliedData(c[2]), std::vector<std::string>{"after"});
}

TEST(RaftMembership, RemovedLeaderStepsDown) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(ConfChangeType::kRemoveNode, 1)).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  // The remaining two elect a leader among themselves.
  c.Isolate(1);
  c.TickAll(40);
  const uint64_t leader = c.Leader();
  EXPECT_TRUE(leader == 2 || leader == 3) << leader;
}

TEST(RaftMembership, CannotRemoveLastVoter) {
  TestCluster c(1);
  c.Elect(1);
  EXPECT_EQ(c.node(1).ProposeConfChange(Change(ConfChangeType::kRemoveNode, 1)).code(),
            Code::kInvalidArgument);
}

TEST(RaftMembership, ConfChangeEncodingRoundTrips) {
  ConfChange cc{ConfChangeType::kAddLearner, MemberId(123456789), "http://peer:2380"};
  auto decoded = DecodeConfChange(EncodeConfChange(cc));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, cc);
  EXPECT_FALSE(DecodeConfChange("").ok());
  EXPECT_FALSE(DecodeConfChange(std::string("\x01\x09", 2)).ok());
  std::string truncated = EncodeConfChange(cc);
  truncated.pop_back();
  EXPECT_FALSE(DecodeConfChange(truncated).ok());
}

TEST(RaftLearner, LearnerIsNotCountedInElections) {
  TestCluster c(3, 1);  // learner 4
  c.SetDropFilter([](const Message& m) {
    return m.to == MemberId(3) || m.from == MemberId(3) || m.to == MemberId(2) ||
           m.from == MemberId(2);
  });
  ASSERT_TRUE(c.node(1).Campaign().ok());
  c.Stabilize();
  EXPECT_NE(c.raft(1).role(), Role::kLeader);  // 1 + learner 4 is not a majority of {1,2,3}
}

TEST(RaftTransfer, TransferToUpToDateFollower) {  // thesis §3.10
  TestCluster c(3);
  c.Elect(1);
  c.node(1).TransferLeader(MemberId(2));
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).lead(), MemberId(2));
}

TEST(RaftTransfer, TransferCatchesUpLaggingTargetFirst) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  c.Heal();
  c.node(1).TransferLeader(MemberId(3));
  c.Stabilize();
  EXPECT_EQ(c.raft(3).role(), Role::kLeader);
  EXPECT_EQ(AppliedData(c[3]), std::vector<std::string>{"a"});
}

TEST(RaftTransfer, ProposalsRefusedDuringTransferAndTransferTimesOut) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  c.node(1).TransferLeader(MemberId(3));
  c.Stabilize();
  EXPECT_EQ(c.raft(1).lead_transferee(), MemberId(3));
  EXPECT_EQ(c.node(1).Propose("x").code(), Code::kLeaderChanged);
  // After an election timeout the leader gives up and serves again.
  c.SetDropFilter([](const Message& m) { return m.to == MemberId(3) || m.from == MemberId(3); });
  c.Tick(1, 10);
  EXPECT_EQ(c.raft(1).lead_transferee(), MemberId(0));
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_TRUE(c.node(1).Propose("x").ok());
}

TEST(RaftTransfer, FollowerForwardsTransferRequest) {
  TestCluster c(3);
  c.Elect(1);
  c.node(2).TransferLeader(MemberId(2));
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kLeader);
}

TEST(RaftTransfer, TransferBypassesLeaseButPreVoteStillApplies) {
  // The transferee's vote request carries the transfer marker, so followers within their lease
  // still vote: otherwise CheckQuorum would make transfers impossible.
  TestCluster c(5);
  c.Elect(1);
  c.node(1).TransferLeader(MemberId(4));
  c.Stabilize();
  EXPECT_EQ(c.raft(4).role(), Role::kLeader);
  EXPECT_GT(c.raft(4).term(), Term(1));
}

TEST(RaftReadIndex, LeaderAnswersAfterHeartbeatRound) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("w").ok());
  c.Stabilize();
  c.ClearSent();
  ASSERT_TRUE(c.node(1).ReadIndex("r1").ok());
  c.Stabilize();
  ASSERT_EQ(c[1].read_states.size(), 1u);
  EXPECT_EQ(c[1].read_states[0].context, "r1");
  EXPECT_EQ(c[1].read_states[0].index, c.raft(1).log().committed());
  int heartbeats = 0;
  for (const Message& m : c.sent()) heartbeats += m.type == MessageType::kHeartbeat ? 1 : 0;
  EXPECT_EQ(heartbeats, 2);  // one round, to both followers
}

TEST(RaftReadIndex, NoAnswerWithoutQuorum) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.node(1).ReadIndex("r").ok());
  c.Stabilize();
  EXPECT_TRUE(c[1].read_states.empty());
  // Once a quorum acknowledges a heartbeat carrying the round, the read is served.
  c.Heal();
  c.Tick(1, 1);
  EXPECT_EQ(c[1].read_states.size(), 1u);
}

TEST(RaftReadIndex, ReadsArrivingDuringARoundShareTheNextRound) {
  TestCluster c(3);
  c.Elect(1);
  // Hold the acknowledgements so that several reads pile up behind the first round.
  c.SetDropFilter([](const Message& m) { return m.type == MessageType::kHeartbeatResp; });
  c.ClearSent();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.node(1).ReadIndex(std::to_string(i)).ok());
  c.Stabilize();
  int heartbeats = 0;
  for (const Message& m : c.sent()) heartbeats += m.type == MessageType::kHeartbeat ? 1 : 0;
  EXPECT_EQ(heartbeats, 2);  // ten reads, one round
  c.Heal();
  c.Tick(1, 1);  // round 1 (read "0") completes, round 2 (reads 1..9) starts and completes
  ASSERT_EQ(c[1].read_states.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c[1].read_states[i].context, std::to_string(i));
}

TEST(RaftReadIndex, FollowerReadGoesThroughLeader) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("w").ok());
  c.Stabilize();
  ASSERT_TRUE(c.node(3).ReadIndex("f").ok());
  c.Stabilize();
  ASSERT_EQ(c[3].read_states.size(), 1u);
  EXPECT_EQ(c[3].read_states[0].context, "f");
  EXPECT_EQ(c[3].read_states[0].index, c.raft(1).log().committed());
}

TEST(RaftReadIndex, NewLeaderWaitsForItsFirstCommit) {
  TestCluster c(3);
  c.Elect(1);
  // Node 2 wins term 2 but hears no append acknowledgement, so commits nothing of its term.
  c.SetDropFilter([](const Message& m) { return m.type == MessageType::kAppResp; });
  c.node(1).TransferLeader(MemberId(2));  // bypasses the followers' leases
  c.Stabilize();
  ASSERT_EQ(c.raft(2).role(), Role::kLeader);
  ASSERT_TRUE(c.node(2).ReadIndex("early").ok());
  c.Stabilize();
  EXPECT_TRUE(c[2].read_states.empty());  // its commit index may still lag a previous leader
  c.Heal();
  c.Tick(2, 1);
  ASSERT_EQ(c[2].read_states.size(), 1u);
  EXPECT_EQ(c[2].read_states[0].index, c.raft(2).log().committed());
  EXPECT_EQ(c.raft(2).log().ZeroTermOnError(c.raft(2).log().committed()), c.raft(2).term());
}

TEST(RaftReadIndex, SingleVoterAnswersAtOnce) {
  TestCluster c(1);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).ReadIndex("solo").ok());
  c.Stabilize();
  EXPECT_EQ(c[1].read_states.size(), 1u);
}

TEST(RaftReadIndex, LeaseBasedReadIsOptional) {
  TestCluster c(3, 0, [](Config* cfg) { cfg->read_only_option = ReadOnlyOption::kLeaseBased; });
  c.Elect(1);
  c.Isolate(1);  // no heartbeat round can complete
  ASSERT_TRUE(c.node(1).ReadIndex("lease").ok());
  c.Stabilize();
  EXPECT_EQ(c[1].read_states.size(), 1u);
  Config bad;
  bad.id = MemberId(1);
  MemoryStorage storage;
  bad.storage = &storage;
  bad.check_quorum = false;
  bad.read_only_option = ReadOnlyOption::kLeaseBased;
  EXPECT_FALSE(bad.Validate().ok());
}

TEST(RaftReadIndex, NoLeaderReadFails) {
  TestCluster c(3);
  EXPECT_EQ(c.node(2).ReadIndex("x").code(), Code::kNoLeader);
}

}  // namespace
}  // namespace dolmen::raft
