// PlanStandaloneRestart on recovered logs built by hand: what is kept, what is discarded, which
// conf changes are appended (etcd's restartAsStandaloneNode, getIDs, createConfigChangeEnts).
#include "server/force_new_cluster.h"

#include <gtest/gtest.h>

#include "raft/conf_change.h"

namespace dolmen::server {
namespace {

raft::Entry Normal(uint64_t index, uint64_t term) {
  raft::Entry e;
  e.index = Index(index);
  e.term = Term(term);
  e.type = raft::EntryType::kNormal;
  e.data = "x";
  return e;
}

raft::Entry Conf(uint64_t index, uint64_t term, raft::ConfChangeType type, uint64_t id) {
  raft::ConfChange cc;
  cc.type = type;
  cc.node_id = MemberId(id);
  raft::Entry e;
  e.index = Index(index);
  e.term = Term(term);
  e.type = raft::EntryType::kConfChange;
  e.data = raft::EncodeConfChange(cc);
  return e;
}

raft::ConfChange Decode(const raft::Entry& e) {
  auto cc = raft::DecodeConfChange(e.data);
  EXPECT_TRUE(cc.ok());
  return cc.ok() ? *cc : raft::ConfChange{};
}

// Snapshot at 10 with voters {1,2,3}; entries 11..15, 12 adds learner 4, commit at 13.
wal::Recovered ThreeMembersAndALearner() {
  wal::Recovered r;
  raft::SnapshotMetadata snap;
  snap.index = Index(10);
  snap.term = Term(3);
  snap.conf_state.voters = {MemberId(1), MemberId(2), MemberId(3)};
  r.snapshot = snap;
  r.entries = {Normal(9, 3),  // below the snapshot: the log keeps some, ignored
               Normal(11, 3), Conf(12, 3, raft::ConfChangeType::kAddLearner, 4),
               Normal(13, 4), Normal(14, 4),
               Normal(15, 4)};
  r.hard_state.term = Term(5);
  r.hard_state.vote = MemberId(2);
  r.hard_state.commit = Index(13);
  return r;
}

TEST(ForceNewClusterTest, DiscardsUncommittedAndRemovesEveryOtherMember) {
  wal::Recovered r = ThreeMembersAndALearner();
  internal::Member self;
  auto plan = PlanStandaloneRestart(&r, Index(12), MemberId(2), self);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->discarded_entries, 2u);
  EXPECT_FALSE(plan->added_self);
  EXPECT_EQ(plan->removed, (std::vector<MemberId>{MemberId(1), MemberId(3), MemberId(4)}));
  ASSERT_EQ(plan->appended.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const raft::Entry& e = plan->appended[i];
    EXPECT_EQ(e.index, Index(14 + i));
    EXPECT_EQ(e.term, Term(5));  // the logged term, as etcd
    EXPECT_EQ(e.type, raft::EntryType::kConfChange);
    EXPECT_EQ(Decode(e).type, raft::ConfChangeType::kRemoveNode);
    EXPECT_EQ(Decode(e).node_id, plan->removed[i]);
  }
  EXPECT_EQ(plan->commit, Index(16));
  EXPECT_EQ(r.hard_state.commit, Index(16));
  EXPECT_EQ(r.hard_state.vote, MemberId(2));
  ASSERT_EQ(r.entries.size(), 6u);  // 11, 12, 13 kept; 14, 15, 16 the removals
  EXPECT_EQ(r.entries.front().index, Index(11));
  EXPECT_EQ(r.entries[2].data, "x");
  EXPECT_EQ(r.entries.back().index, Index(16));
}

TEST(ForceNewClusterTest, RemovalsInTheLogAreHonoured) {
  wal::Recovered r = ThreeMembersAndALearner();
  r.entries.push_back(Conf(16, 5, raft::ConfChangeType::kRemoveNode, 3));
  r.hard_state.commit = Index(16);
  auto plan = PlanStandaloneRestart(&r, Index(16), MemberId(1), internal::Member());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->discarded_entries, 0u);
  EXPECT_EQ(plan->removed, (std::vector<MemberId>{MemberId(2), MemberId(4)}));
  EXPECT_EQ(plan->appended.front().index, Index(17));
}

// A member missing from the configuration adds itself first (the voter set is never empty),
// with its record as the conf change's context.
TEST(ForceNewClusterTest, AddsItselfFirstWhenMissing) {
  wal::Recovered r = ThreeMembersAndALearner();
  internal::Member self;
  self.set_name("m9");
  self.add_peer_urls("http://127.0.0.1:9");
  auto plan = PlanStandaloneRestart(&r, Index(13), MemberId(9), self);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->added_self);
  ASSERT_EQ(plan->appended.size(), 5u);
  raft::ConfChange add = Decode(plan->appended[0]);
  EXPECT_EQ(add.type, raft::ConfChangeType::kAddNode);
  EXPECT_EQ(add.node_id, MemberId(9));
  internal::Member ctx;
  ASSERT_TRUE(ctx.ParseFromString(add.context));
  EXPECT_EQ(ctx.id(), 9u);
  EXPECT_EQ(ctx.peer_urls(0), "http://127.0.0.1:9");
  EXPECT_TRUE(ctx.name().empty());  // the name arrives with the member's published attributes
  EXPECT_EQ(plan->removed.size(), 4u);
}

// Without a snapshot marker the members come from the bootstrap conf changes.
TEST(ForceNewClusterTest, BootstrapEntriesOnly) {
  wal::Recovered r;
  r.entries = {Conf(1, 1, raft::ConfChangeType::kAddNode, 7),
               Conf(2, 1, raft::ConfChangeType::kAddNode, 8), Normal(3, 2)};
  r.hard_state.term = Term(2);
  r.hard_state.commit = Index(3);
  auto plan = PlanStandaloneRestart(&r, Index(3), MemberId(8), internal::Member());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->removed, (std::vector<MemberId>{MemberId(7)}));
  EXPECT_EQ(plan->commit, Index(4));
}

// Already alone: nothing to append, but the uncommitted tail still goes.
TEST(ForceNewClusterTest, AloneAlready) {
  wal::Recovered r;
  r.entries = {Conf(1, 1, raft::ConfChangeType::kAddNode, 7), Normal(2, 2), Normal(3, 2)};
  r.hard_state.term = Term(2);
  r.hard_state.commit = Index(2);
  auto plan = PlanStandaloneRestart(&r, Index(2), MemberId(7), internal::Member());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->appended.empty());
  EXPECT_EQ(plan->discarded_entries, 1u);
  EXPECT_EQ(r.entries.size(), 2u);
  EXPECT_EQ(r.hard_state.commit, Index(2));
}

// The backend's applied index is committed even if the logged commit lags it.
TEST(ForceNewClusterTest, NeverDropsWhatTheBackendApplied) {
  wal::Recovered r = ThreeMembersAndALearner();
  auto plan = PlanStandaloneRestart(&r, Index(14), MemberId(2), internal::Member());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->discarded_entries, 1u);
  EXPECT_EQ(plan->appended.front().index, Index(15));
}

TEST(ForceNewClusterTest, RefusesAnEmptyLog) {
  wal::Recovered r;
  auto plan = PlanStandaloneRestart(&r, Index(0), MemberId(2), internal::Member());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(plan.status().message().find("holds no entries"), std::string::npos);
}

TEST(ForceNewClusterTest, RefusesAJointConfiguration) {
  wal::Recovered r = ThreeMembersAndALearner();
  r.snapshot->conf_state.voters_outgoing = {MemberId(1)};
  auto plan = PlanStandaloneRestart(&r, Index(13), MemberId(2), internal::Member());
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("joint"), std::string::npos);
}

TEST(ForceNewClusterTest, RefusesAnUndecodableConfChange) {
  wal::Recovered r = ThreeMembersAndALearner();
  r.entries[2].data = "\xff\xff";
  auto plan = PlanStandaloneRestart(&r, Index(13), MemberId(2), internal::Member());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace dolmen::server
