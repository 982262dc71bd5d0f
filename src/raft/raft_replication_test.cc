// Log replication and commitment: Raft paper §5.3, §5.4.2, flow control, bounds, snapshots.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace dolmen::raft {
namespace {

using testing::TestCluster;

void NoPreVote(Config* c) {
  c->pre_vote = false;
  c->check_quorum = false;
}

std::vector<std::string> AppliedData(const testing::TestNode& n) {
  std::vector<std::string> out;
  for (const Entry& e : n.applied) {
    if (!e.data.empty()) out.push_back(e.data);
  }
  return out;
}

TEST(RaftReplication, LeaderReplicatesAndCommitsOnMajority) {  // §5.3
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  ASSERT_TRUE(c.node(1).Propose("b").ok());
  c.Stabilize();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(AppliedData(c[id]), (std::vector<std::string>{"a", "b"})) << "node " << id;
  }
}

TEST(RaftReplication, CommitsWithOneFollowerDown) {  // §5.3
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  EXPECT_EQ(AppliedData(c[1]), std::vector<std::string>{"a"});
  EXPECT_EQ(AppliedData(c[2]), std::vector<std::string>{"a"});  // learnt commit from next append
  EXPECT_TRUE(AppliedData(c[3]).empty());
  // The lagging follower catches up once it is reachable again.
  c.Heal();
  c.Tick(1, 1);
  EXPECT_EQ(AppliedData(c[3]), std::vector<std::string>{"a"});
}

TEST(RaftReplication, NoCommitWithoutMajority) {
  TestCluster c(3);
  c.Elect(1);
  c.SetDropFilter([](const Message& m) { return m.from != MemberId(1) && m.to == MemberId(1); });
  const Index committed = c.raft(1).log().committed();
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).log().committed(), committed);
}

TEST(RaftReplication, FollowerRejectsAppendWithMismatchedPrevious) {  // §5.3 consistency check
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  Message app;
  app.type = MessageType::kApp;
  app.term = c.raft(2).term();
  app.from = MemberId(1);
  app.to = MemberId(2);
  app.index = Index(7);  // beyond node 2's log
  app.log_term = app.term;
  app.entries.push_back(Entry{app.term, Index(8), EntryType::kNormal, "x"});
  ASSERT_TRUE(c.node(2).Step(app).ok());
  Ready rd = c.node(2).GetReady();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type, MessageType::kAppResp);
  EXPECT_TRUE(rd.messages[0].reject);
  EXPECT_EQ(rd.messages[0].reject_hint, c.raft(2).log().LastIndex());  // fast backtracking hint
  EXPECT_TRUE(rd.entries.empty());
  c.node(2).Advance(rd);
}

TEST(RaftReplication, FollowerReplacesConflictingSuffix) {  // §5.3
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);  // term 1, entry 1
  // Leader 1 appends two entries only it holds.
  c.Isolate(1);
  ASSERT_TRUE(c.node(1).Propose("lost-1").ok());
  ASSERT_TRUE(c.node(1).Propose("lost-2").ok());
  c.Stabilize();
  // Node 2 leads term 2 with the others and commits different entries at the same indexes.
  c.SetDropFilter([](const Message& m) { return m.from == MemberId(1) || m.to == MemberId(1); });
  c.Elect(2);
  ASSERT_TRUE(c.node(2).Propose("kept").ok());
  c.Stabilize();
  // Node 1 rejoins: its conflicting entries are replaced with the leader's.
  c.Heal();
  c.Tick(2, 1);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(AppliedData(c[1]), std::vector<std::string>{"kept"});
  EXPECT_EQ(c.raft(1).log().LastIndex(), c.raft(2).log().LastIndex());
  for (Index i(1); i <= c.raft(2).log().LastIndex(); i = Index(i.value() + 1)) {
    EXPECT_EQ(c.raft(1).log().ZeroTermOnError(i), c.raft(2).log().ZeroTermOnError(i));
  }
}

TEST(RaftReplication, LeaderBacktracksPastLongDivergentSuffixQuickly) {
  TestCluster c(3, 0, NoPreVote);
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(c.node(1).Propose("stale").ok());
  c.Stabilize();
  c.SetDropFilter([](const Message& m) { return m.from == MemberId(1) || m.to == MemberId(1); });
  c.Elect(2);
  c.Heal();
  c.ClearSent();
  c.Tick(2, 1);
  int rejections = 0;
  for (const Message& m : c.sent()) {
    if (m.type == MessageType::kAppResp && m.reject && m.from == MemberId(1)) ++rejections;
  }
  // One rejection carries enough to skip all fifty term-1 entries.
  EXPECT_LE(rejections, 2);
  EXPECT_EQ(c.raft(1).log().LastIndex(), c.raft(2).log().LastIndex());
}

// §5.4.2 / Figure 8: a leader must not commit an entry from an earlier term by counting
// replicas. Node 1 (term 1) appends "old" that only node 2 receives; node 3, behind, campaigns
// and moves node 1 to term 2; node 1 then wins term 3 with node 3's vote and replicates "old"
// to node 3, but never hears that node 3 also holds its term-3 entry. "old" is then known to be
// on a majority, but it is from term 1: counting would commit it, Raft must not.
struct Figure8 {
  explicit Figure8(bool unsafe)
      : c(3, 0, [unsafe](Config* cfg) {
          NoPreVote(cfg);
          cfg->max_size_per_msg_bytes = 1;  // one entry per append
          cfg->testing_unsafe_commit_previous_term = unsafe;
        }) {}

  void Run() {
    c.Elect(1);  // term 1
    c.SetDropFilter([](const Message& m) {
      return m.from == MemberId(3) || m.to == MemberId(3) || m.to == MemberId(1);
    });
    ASSERT_TRUE(c.node(1).Propose("old").ok());
    c.Stabilize();
    old_index = c.raft(1).log().LastIndex();
    ASSERT_LT(c.raft(1).log().committed(), old_index);
    // Node 3 loses (its log is behind) but node 1 learns term 2 and steps down.
    c.SetDropFilter([](const Message& m) { return m.from == MemberId(2) || m.to == MemberId(2); });
    ASSERT_TRUE(c.node(3).Campaign().ok());
    c.Stabilize();
    ASSERT_EQ(c.raft(1).role(), Role::kFollower);
    // Node 1 wins term 3; node 3's acknowledgements beyond "old" are lost.
    c.SetDropFilter([this](const Message& m) {
      if (m.from == MemberId(2) || m.to == MemberId(2)) return true;
      return m.type == MessageType::kAppResp && !m.reject && m.index > old_index;
    });
    ASSERT_TRUE(c.node(1).Campaign().ok());
    c.Stabilize();
  }

  TestCluster c;
  Index old_index;
};

TEST(RaftCommitRule, PreviousTermEntryNotCommittedByCounting) {  // §5.4.2
  Figure8 f(/*unsafe=*/false);
  f.Run();
  ASSERT_EQ(f.c.raft(1).role(), Role::kLeader);
  EXPECT_GE(f.c.raft(3).log().LastIndex(), f.old_index);
  EXPECT_LT(f.c.raft(1).log().committed(), f.old_index);
}

TEST(RaftCommitRule, TestKnobBreaksTheRule) {
  // The knob the simulator's self-test uses really does break §5.4.2.
  Figure8 f(/*unsafe=*/true);
  f.Run();
  ASSERT_EQ(f.c.raft(1).role(), Role::kLeader);
  EXPECT_GE(f.c.raft(1).log().committed(), f.old_index);
}

TEST(RaftCommitRule, CurrentTermEntryCommitsEarlierOnes) {  // §5.4.2
  Figure8 f(/*unsafe=*/false);
  f.Run();
  f.c.Heal();
  f.c.Tick(1, 1);
  EXPECT_GT(f.c.raft(1).log().committed(), f.old_index);
}

TEST(RaftFlowControl, InflightWindowBoundsUnacknowledgedAppends) {
  TestCluster c(2, 0, [](Config* cfg) {
    cfg->max_inflight_msgs = 3;
    cfg->max_size_per_msg_bytes = 1;  // one entry per append
  });
  c.Elect(1);
  c.SetDropFilter([](const Message& m) { return m.to == MemberId(1); });  // no acks
  c.ClearSent();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.node(1).Propose("p").ok());
  c.Stabilize();
  int appends = 0;
  for (const Message& m : c.sent()) {
    if (m.type == MessageType::kApp && !m.entries.empty()) ++appends;
  }
  EXPECT_EQ(appends, 3);
  // Acknowledgements open the window and everything gets through.
  c.Heal();
  c.Tick(1, 1);
  EXPECT_EQ(c.raft(2).log().LastIndex(), c.raft(1).log().LastIndex());
  EXPECT_EQ(c.raft(1).log().committed(), c.raft(1).log().LastIndex());
}

TEST(RaftFlowControl, FollowersLearnCommitWithoutWaitingForHeartbeat) {
  // With a full window when the commit index advances, the leader still tells every follower
  // as soon as it acknowledges, instead of at the next heartbeat.
  TestCluster c(3, 0, [](Config* cfg) {
    cfg->max_inflight_msgs = 2;
    cfg->max_size_per_msg_bytes = 1;
  });
  c.Elect(1);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.node(1).Propose(std::to_string(i)).ok());
  c.Stabilize();  // no tick: no heartbeat
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(AppliedData(c[id]).size(), 10u) << "node " << id;
  }
}

TEST(RaftFlowControl, MessageSizeIsBounded) {
  TestCluster c(2, 0, [](Config* cfg) { cfg->max_size_per_msg_bytes = 200; });
  c.Elect(1);
  c.Isolate(2);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.node(1).Propose(std::string(50, 'x')).ok());
  c.Stabilize();
  c.Heal();
  c.ClearSent();
  c.Tick(1, 1);
  size_t max_entries = 0;
  for (const Message& m : c.sent()) {
    if (m.type == MessageType::kApp) max_entries = std::max(max_entries, m.entries.size());
  }
  EXPECT_GE(max_entries, 1u);
  EXPECT_LE(max_entries, 3u);  // 200 bytes / (50 + 24 per entry)
  EXPECT_EQ(c.raft(2).log().LastIndex(), c.raft(1).log().LastIndex());
}

TEST(RaftFlowControl, UncommittedLogIsBounded) {
  TestCluster c(3, 0, [](Config* cfg) { cfg->max_uncommitted_entries_bytes = 100; });
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.node(1).Propose(std::string(60, 'a')).ok());
  EXPECT_EQ(c.node(1).Propose(std::string(60, 'b')).code(), Code::kResourceExhausted);
  c.Heal();
  c.Tick(1, 1);  // the first entry commits, freeing room
  EXPECT_TRUE(c.node(1).Propose(std::string(60, 'b')).ok());
}

TEST(RaftReplication, FollowerForwardsProposalToLeader) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(3).Propose("via-3").ok());
  c.Stabilize();
  EXPECT_EQ(AppliedData(c[1]), std::vector<std::string>{"via-3"});
  EXPECT_EQ(AppliedData(c[3]), std::vector<std::string>{"via-3"});
}

TEST(RaftReplication, ForwardingCanBeDisabled) {
  TestCluster c(3, 0, [](Config* cfg) { cfg->disable_proposal_forwarding = true; });
  c.Elect(1);
  EXPECT_EQ(c.node(3).Propose("x").code(), Code::kNotLeader);
}

TEST(RaftReplication, CrashedFollowerKeepsPersistedLog) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1).Propose("a").ok());
  c.Stabilize();
  c.Restart(2);
  EXPECT_EQ(c.raft(2).log().LastIndex(), c.raft(1).log().LastIndex());
  c.Tick(1, 1);
  // Applied again from the start: the state machine is rebuilt from the log.
  EXPECT_EQ(AppliedData(c[2]), std::vector<std::string>{"a"});
}

TEST(RaftFlowControl, UnreachableFollowerGoesBackToProbing) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_EQ(c.raft(1).tracker().Get(MemberId(2))->state, ProgressState::kReplicate);
  c.node(1).ReportUnreachable(MemberId(2));
  EXPECT_EQ(c.raft(1).tracker().Get(MemberId(2))->state, ProgressState::kProbe);
}

TEST(RaftSnapshot, FailedSnapshotIsRetried) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.node(1).Propose(std::to_string(i)).ok());
  c.Stabilize();
  const Index applied = c.raft(1).log().applied();
  ASSERT_TRUE(c[1].storage->CreateSnapshot(applied, c[1].conf_state, "s").ok());
  ASSERT_TRUE(c[1].storage->Compact(applied).ok());
  c.Heal();
  c.SetDropFilter([](const Message& m) { return m.type == MessageType::kSnap; });
  c.Tick(1, 1);
  ASSERT_EQ(c.raft(1).tracker().Get(MemberId(3))->state, ProgressState::kSnapshot);
  c.node(1).ReportSnapshot(MemberId(3), false);  // the transport lost it
  EXPECT_EQ(c.raft(1).tracker().Get(MemberId(3))->state, ProgressState::kProbe);
  c.Heal();
  c.Tick(1, 2);  // a heartbeat response unpauses the probe, which needs the snapshot again
  c.node(1).ReportSnapshot(MemberId(3), true);
  c.Tick(1, 1);
  EXPECT_EQ(c.raft(3).log().committed(), c.raft(1).log().committed());
  EXPECT_EQ(c.raft(1).tracker().Get(MemberId(3))->state, ProgressState::kReplicate);
}

TEST(RaftSnapshot, LeaderSendsSnapshotToFollowerBehindCompaction) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.node(1).Propose(std::to_string(i)).ok());
  c.Stabilize();
  // The leader snapshots and compacts everything applied.
  const Index applied = c.raft(1).log().applied();
  ASSERT_TRUE(c[1].storage->CreateSnapshot(applied, c[1].conf_state, "state").ok());
  ASSERT_TRUE(c[1].storage->Compact(applied).ok());
  c.Heal();
  c.ClearSent();
  c.Tick(1, 1);
  bool sent_snapshot = false;
  for (const Message& m : c.sent()) sent_snapshot |= m.type == MessageType::kSnap;
  EXPECT_TRUE(sent_snapshot);
  // Report the snapshot delivered, as the transport would.
  c.node(1).ReportSnapshot(MemberId(3), true);
  c.Tick(1, 1);
  auto snap = c[3].storage->GetSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata.index, applied);
  EXPECT_EQ(snap->data, "state");
  ASSERT_TRUE(c.node(1).Propose("after").ok());
  c.Stabilize();
  EXPECT_EQ(AppliedData(c[3]), std::vector<std::string>{"after"});
  EXPECT_EQ(c.raft(3).log().committed(), c.raft(1).log().committed());
}

}  // namespace
}  // namespace dolmen::raft
