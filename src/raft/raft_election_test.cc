// Leader election: Raft paper §5.1, §5.2, §5.4.1, PreVote (thesis §9.6), CheckQuorum and leases
// (thesis §6.2, §4.2.3), and the single-voter cluster.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace dolmen::raft {
namespace {

using testing::TestCluster;

void NoPreVote(Config* c) {
  c->pre_vote = false;
  c->check_quorum = false;
}

TEST(RaftElection, SingleVoterElectsItselfAndCommitsAlone) {
  TestCluster c(1);
  c.Tick(1, 20);  // 2 * election_ticks covers any randomized timeout
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  ASSERT_TRUE(c.node(1).Propose("x").ok());
  c.Stabilize();
  const auto& applied = c[1].applied;
  ASSERT_EQ(applied.size(), 2u);  // the leader's empty entry, then "x"
  EXPECT_EQ(applied[1].data, "x");
  EXPECT_EQ(c[1].storage->hard_state().commit, Index(3));  // after the bootstrap snapshot at 1
}

TEST(RaftElection, FollowerStartsElectionAfterRandomizedTimeout) {  // §5.2
  TestCluster c(3, 0, NoPreVote);
  const int timeout = c.raft(1).randomized_election_timeout();
  EXPECT_GE(timeout, 10);
  EXPECT_LT(timeout, 20);
  c.Isolate(1);  // so that it stays a candidate we can observe
  c.Tick(1, timeout - 1);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  c.Tick(1, 1);
  EXPECT_EQ(c.raft(1).role(), Role::kCandidate);
  EXPECT_EQ(c.raft(1).term(), Term(1));
  EXPECT_EQ(c.raft(1).vote(), MemberId(1));
}

TEST(RaftElection, CandidateWithMajorityBecomesLeader) {  // §5.2
  TestCluster c(5, 0, NoPreVote);
  // Two of five are unreachable: three votes (with its own) are still a majority.
  c.SetDropFilter([](const Message& m) { return m.to.value() >= 4 || m.from.value() >= 4; });
  c.Elect(1);
  EXPECT_EQ(c.raft(1).term(), Term(1));
  EXPECT_EQ(c.raft(2).lead(), MemberId(1));
}

TEST(RaftElection, CandidateWithoutMajorityDoesNotWin) {  // §5.2
  TestCluster c(5, 0, NoPreVote);
  c.SetDropFilter([](const Message& m) { return m.to.value() >= 3 || m.from.value() >= 3; });
  ASSERT_TRUE(c.node(1).Campaign().ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).role(), Role::kCandidate);
}

TEST(RaftElection, VoterGrantsAtMostOneVotePerTerm) {  // §5.2
  TestCluster c(3, 0, NoPreVote);
  Message vote;
  vote.type = MessageType::kVote;
  vote.term = Term(1);
  vote.from = MemberId(2);
  vote.to = MemberId(1);
  vote.index = Index(1);  // as up to date as the voter (the bootstrap snapshot)
  vote.log_term = Term(1);
  ASSERT_TRUE(c.node(1).Step(vote).ok());
  EXPECT_EQ(c.raft(1).vote(), MemberId(2));
  vote.from = MemberId(3);
  ASSERT_TRUE(c.node(1).Step(vote).ok());
  Ready rd = c.node(1).GetReady();
  ASSERT_EQ(rd.messages.size(), 2u);
  EXPECT_FALSE(rd.messages[0].reject);
  EXPECT_EQ(rd.messages[0].to, MemberId(2));
  EXPECT_TRUE(rd.messages[1].reject);
  EXPECT_EQ(rd.messages[1].to, MemberId(3));
  // The vote must be persisted with the reply: it is in the same Ready's hard state.
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, MemberId(2));
  EXPECT_TRUE(rd.must_sync);
  c.node(1).Advance(rd);
}

TEST(RaftElection, HigherTermMakesLeaderStepDown) {  // §5.1
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.term = Term(5);
  hb.from = MemberId(2);
  hb.to = MemberId(1);
  ASSERT_TRUE(c.node(1).Step(hb).ok());
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).term(), Term(5));
  EXPECT_EQ(c.raft(1).lead(), MemberId(2));
}

TEST(RaftElection, StaleTermMessageIsIgnored) {  // §5.1
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  c.Elect(2);  // term 2
  Message app;
  app.type = MessageType::kApp;
  app.term = Term(1);
  app.from = MemberId(1);
  app.to = MemberId(3);
  app.entries.push_back(Entry{Term(1), Index(3), EntryType::kNormal, "stale"});
  app.index = Index(2);
  app.log_term = Term(1);
  const Index before = c.raft(3).log().LastIndex();
  ASSERT_TRUE(c.node(3).Step(app).ok());
  EXPECT_EQ(c.raft(3).log().LastIndex(), before);
  EXPECT_EQ(c.raft(3).term(), Term(2));
}

TEST(RaftElection, CandidateStepsDownOnAppendFromLeaderOfSameTerm) {  // §5.2
  TestCluster c(3, 0, NoPreVote);
  c.Isolate(2);
  ASSERT_TRUE(c.node(2).Campaign().ok());
  c.Stabilize();
  ASSERT_EQ(c.raft(2).role(), Role::kCandidate);
  Message app;
  app.type = MessageType::kApp;
  app.term = c.raft(2).term();
  app.from = MemberId(3);
  app.to = MemberId(2);
  c.Heal();
  ASSERT_TRUE(c.node(2).Step(app).ok());
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  EXPECT_EQ(c.raft(2).lead(), MemberId(3));
}

TEST(RaftElection, VoteDeniedToCandidateWithStalerLog) {  // §5.4.1
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  // Node 3 misses an entry that 1 and 2 hold.
  c.Isolate(3);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  c.Heal();
  c.SetDropFilter([](const Message& m) { return m.from == MemberId(1) || m.to == MemberId(1); });
  ASSERT_TRUE(c.node(3).Campaign().ok());
  c.Stabilize();
  EXPECT_NE(c.raft(3).role(), Role::kLeader);
  // Node 2, whose log is up to date, can win.
  ASSERT_TRUE(c.node(2).Campaign().ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kLeader);
}

TEST(RaftElection, PreVoteKeepsPartitionedNodeFromBumpingTerms) {  // §9.6
  TestCluster c(3);
  c.Elect(1);
  const Term term = c.raft(1).term();
  c.Isolate(3);
  c.Tick(3, 100);  // many election timeouts alone
  EXPECT_EQ(c.raft(3).term(), term);
  EXPECT_EQ(c.raft(3).role(), Role::kPreCandidate);
  // Rejoining does not depose the leader.
  c.Heal();
  c.TickAll(3);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(3).lead(), MemberId(1));
}

TEST(RaftElection, WithoutPreVoteAPartitionedNodeDisruptsOnReturn) {
  // The counterpart of the test above, showing what PreVote prevents.
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  const Term term = c.raft(1).term();
  c.Isolate(3);
  c.Tick(3, 100);
  EXPECT_GT(c.raft(3).term(), term);
  c.Heal();
  c.TickAll(20);                      // node 3 ignores the leader's older term and campaigns again
  EXPECT_GT(c.raft(1).term(), term);  // the leader was forced to a new term
}

TEST(RaftElection, PreVoteGrantedThenRealElection) {  // §9.6
  TestCluster c(3);
  ASSERT_TRUE(c.node(1).Campaign().ok());
  EXPECT_EQ(c.raft(1).role(), Role::kPreCandidate);
  EXPECT_EQ(c.raft(1).term(), Term(0));
  c.Stabilize();
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), Term(1));
}

TEST(RaftCheckQuorum, LeaderStepsDownWithoutQuorum) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(1);
  c.Tick(1, 10);                               // election_ticks
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);  // heard from all in the first interval
  c.Tick(1, 10);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
}

TEST(RaftCheckQuorum, LeaderWithQuorumStays) {
  TestCluster c(3);
  c.Elect(1);
  c.SetDropFilter([](const Message& m) { return m.from == MemberId(3) || m.to == MemberId(3); });
  c.Tick(1, 50);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
}

TEST(RaftCheckQuorum, FollowerInLeaseIgnoresVoteRequest) {  // thesis §4.2.3
  TestCluster c(3);
  c.Elect(1);
  const Term term = c.raft(2).term();
  Message vote;
  vote.type = MessageType::kVote;
  vote.term = Term(term.value() + 5);
  vote.from = MemberId(3);
  vote.to = MemberId(2);
  vote.index = Index(100);
  vote.log_term = Term(100);
  ASSERT_TRUE(c.node(2).Step(vote).ok());
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).lead(), MemberId(1));
  // Once the lease has run out (no leader heard for an election timeout) the vote counts.
  c.Isolate(2);
  c.Tick(2, 10);
  ASSERT_TRUE(c.node(2).Step(vote).ok());
  EXPECT_EQ(c.raft(2).term(), vote.term);
  EXPECT_EQ(c.raft(2).vote(), MemberId(3));
}

TEST(RaftElection, RestartKeepsTermAndVote) {
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  c.Restart(2);
  EXPECT_EQ(c.raft(2).term(), Term(1));
  EXPECT_EQ(c.raft(2).vote(), MemberId(1));
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
}

TEST(RaftElection, NoLeaderProposalFails) {
  TestCluster c(3);
  Status s = c.node(1).Propose("x");
  EXPECT_EQ(s.code(), Code::kNoLeader);
}

TEST(RaftElection, LearnerNeverCampaigns) {
  TestCluster c(1, 1);
  c.Isolate(2);
  c.Tick(2, 100);
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  EXPECT_EQ(c.raft(2).term(), Term(0));
}

}  // namespace
}  // namespace dolmen::raft
