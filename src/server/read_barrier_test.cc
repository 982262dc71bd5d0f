// The read barrier's rounds against a real Raft leader (raft's TestCluster) and the two read
// index metrics it counts as etcd 3.4 does: failed when the leader changed under a round, slow
// when a round timed out or its answer came after it stopped waiting.
#include "server/read_barrier.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "raft/test_cluster.h"
#include "server/server_metrics.h"

namespace dolmen::server {
namespace {

using std::chrono::seconds;

// The counters are process-wide: each test reads what it added.
struct MetricDelta {
  double slow0 = metric::SlowReadIndexes().Get();
  double failed0 = metric::ReadIndexesFailed().Get();
  double slow() const { return metric::SlowReadIndexes().Get() - slow0; }
  double failed() const { return metric::ReadIndexesFailed().Get() - failed0; }
};

class ReadBarrierTest : public ::testing::Test {
 protected:
  ReadBarrierTest() : cluster_(3), barrier_(DriverOptions{}) { cluster_.Elect(1); }

  // A read due at `deadline`; its outcome lands in `out`.
  Waiter Read(TimePoint deadline, std::optional<Status>* out) {
    return Waiter{[out](Status s) { *out = std::move(s); }, deadline};
  }
  // The read states the leader produced since the last call.
  std::vector<raft::ReadState> TakeReadStates() {
    cluster_.Stabilize();
    return std::exchange(cluster_[1].read_states, {});
  }

  const TimePoint t0_{};
  raft::testing::TestCluster cluster_;
  ReadBarrier barrier_;
};

TEST_F(ReadBarrierTest, AnsweredRoundCountsNothing) {
  MetricDelta delta;
  std::optional<Status> got;
  barrier_.Add(Read(t0_ + seconds(5), &got));
  ASSERT_TRUE(barrier_.Issue(cluster_.node(1)));
  barrier_.Confirmed(TakeReadStates());
  barrier_.Release(cluster_.raft(1).log().committed().value());
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->ok()) << got->ToString();
  EXPECT_EQ(delta.slow(), 0);
  EXPECT_EQ(delta.failed(), 0);
}

// A round with no answer before its reads' deadline is slow once, however many of its reads
// expire and in how many turns; its answer arriving afterwards is out of date: slow again.
TEST_F(ReadBarrierTest, TimedOutRoundAndItsLateAnswerAreSlow) {
  MetricDelta delta;
  std::optional<Status> first, second;
  barrier_.Add(Read(t0_ + seconds(1), &first));
  barrier_.Add(Read(t0_ + seconds(2), &second));
  ASSERT_TRUE(barrier_.Issue(cluster_.node(1)));
  const Status timeout(Code::kTimeout, "request timed out");
  barrier_.Expire(t0_ + seconds(1), timeout);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->code(), Code::kTimeout);
  EXPECT_FALSE(second.has_value());
  barrier_.Expire(t0_ + seconds(2), timeout);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(delta.slow(), 1);

  std::vector<raft::ReadState> late = TakeReadStates();
  ASSERT_EQ(late.size(), 1u);
  barrier_.Confirmed(late);
  EXPECT_EQ(delta.slow(), 2);
  EXPECT_EQ(delta.failed(), 0);
  EXPECT_EQ(barrier_.size(), 0u);
}

// Reads that never got a round (Raft refused: no leader) and expire are one slow batch.
TEST_F(ReadBarrierTest, ExpiredUnissuedReadsAreOneSlowBatch) {
  MetricDelta delta;
  std::optional<Status> a, b;
  barrier_.Add(Read(t0_ + seconds(1), &a));
  barrier_.Add(Read(t0_ + seconds(1), &b));
  barrier_.Expire(t0_ + seconds(1), Status(Code::kTimeout, "request timed out"));
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(delta.slow(), 1);
  EXPECT_EQ(delta.failed(), 0);
}

// A round asked of a leader that was replaced fails (etcd's retryable "leader changed"):
// failed once per round; a round asked of the new leader is kept.
TEST_F(ReadBarrierTest, LeaderChangeFailsTheRoundsOfTheOldLeader) {
  MetricDelta delta;
  std::optional<Status> old_round;
  barrier_.Add(Read(t0_ + seconds(5), &old_round));
  ASSERT_TRUE(barrier_.Issue(cluster_.node(1)));
  barrier_.LeaderChanged(MemberId(1));  // the same leader: nothing fails
  EXPECT_FALSE(old_round.has_value());
  barrier_.LeaderChanged(MemberId(2));
  ASSERT_TRUE(old_round.has_value());
  EXPECT_EQ(old_round->code(), Code::kLeaderChanged);
  EXPECT_EQ(delta.failed(), 1);
  EXPECT_EQ(delta.slow(), 0);
}

// A member that restarted starts its contexts elsewhere: the leader's answer to the round its
// earlier life asked (in flight across the restart) is out of date here and releases nothing;
// the round of this life is released by its own answer only.
TEST_F(ReadBarrierTest, AnAnswerForAnEarlierLifeReleasesNoRoundOfThisOne) {
  MetricDelta delta;
  std::optional<Status> before_restart, after_restart;
  barrier_.Add(Read(t0_ + seconds(5), &before_restart));
  ASSERT_TRUE(barrier_.Issue(cluster_.node(1)));
  std::vector<raft::ReadState> earlier_life = TakeReadStates();
  ASSERT_EQ(earlier_life.size(), 1u);

  ReadBarrier this_life(DriverOptions{}, (uint64_t{2} << 40) | 1);
  this_life.Add(Read(t0_ + seconds(5), &after_restart));
  ASSERT_TRUE(this_life.Issue(cluster_.node(1)));
  this_life.Confirmed(earlier_life);
  this_life.Release(cluster_.raft(1).log().committed().value());
  EXPECT_FALSE(after_restart.has_value()) << "released by an answer meant for the earlier life";
  EXPECT_EQ(delta.slow(), 1) << "the earlier life's answer is out of date here";

  this_life.Confirmed(TakeReadStates());
  this_life.Release(cluster_.raft(1).log().committed().value());
  ASSERT_TRUE(after_restart.has_value());
  EXPECT_TRUE(after_restart->ok()) << after_restart->ToString();
}

}  // namespace
}  // namespace dolmen::server
