// The driver's inbox without its owner thread: bounds refuse at once, a closed inbox answers
// kStopped, peer messages beyond the bound are dropped (snapshots never), and TakeOrWait on a
// manual clock returns at once when there is work or the wake-up time has passed (no sleep).
#include "server/driver_inbox.h"

#include <gtest/gtest.h>

namespace dolmen::server {
namespace {

Proposal P(uint64_t id) {
  return Proposal{id, "data", [](ApplyResult) {}, TimePoint()};
}

TEST(DriverInboxTest, FullInboxRefusesWithTooManyRequestsAndCountsWhatTheOwnerHolds) {
  DriverOptions o;
  o.max_pending = 3;
  DriverInbox inbox(o);
  Proposal a = P(1), b = P(2), c = P(3);
  ASSERT_TRUE(inbox.Add(std::move(a)).ok());
  ASSERT_TRUE(inbox.Add(std::move(b)).ok());
  // The owner holds one more: the bound counts it.
  inbox.PublishBacklog(Backlog{1, 0, 0});
  dolmen::Status refused = inbox.Add(std::move(c));
  EXPECT_EQ(refused.code(), Code::kTooManyRequests);
  EXPECT_EQ(refused.message(), "too many requests");
  ASSERT_TRUE(c.done) << "a refused proposal stays with its caller, who answers it";
  // Taken by the owner, the two count as held until it publishes again.
  ManualClock clock;
  InboxBatch batch;
  ASSERT_TRUE(inbox.TakeOrWait(clock.Now(), clock, &batch));
  EXPECT_EQ(batch.proposals.size(), 2u);
  EXPECT_EQ(inbox.Add(std::move(c)).code(), Code::kTooManyRequests);
  inbox.PublishBacklog(Backlog{0, 0, 0});
  EXPECT_TRUE(inbox.Add(std::move(c)).ok());
}

TEST(DriverInboxTest, EveryQueueIsBounded) {
  DriverOptions o;
  o.max_pending_reads = 1;
  o.max_pending_tasks = 1;
  o.max_pending_conf_changes = 1;
  o.max_pending_reports = 1;
  DriverInbox inbox(o);
  Waiter r1{[](dolmen::Status) {}, TimePoint()}, r2 = r1;
  EXPECT_TRUE(inbox.AddRead(std::move(r1)).ok());
  EXPECT_EQ(inbox.AddRead(std::move(r2)).code(), Code::kTooManyRequests);
  Task t1 = [](dolmen::Status) {}, t2 = t1;
  EXPECT_TRUE(inbox.Add(std::move(t1)).ok());
  EXPECT_EQ(inbox.Add(std::move(t2)).code(), Code::kTooManyRequests);
  ConfProposal c1{{}, [](dolmen::Status) {}, TimePoint()}, c2 = c1;
  EXPECT_TRUE(inbox.Add(std::move(c1)).ok());
  EXPECT_EQ(inbox.Add(std::move(c2)).code(), Code::kTooManyRequests);
  EXPECT_TRUE(inbox.AddReport(PeerReport{MemberId(2), PeerReport::Kind::kUnreachable}));
  EXPECT_FALSE(inbox.AddReport(PeerReport{MemberId(2), PeerReport::Kind::kUnreachable}));
  EXPECT_TRUE(inbox.AddTransfer(MemberId(2)));
  EXPECT_FALSE(inbox.AddTransfer(MemberId(3)));
}

TEST(DriverInboxTest, MessagesBeyondTheBoundAreDroppedButNeverASnapshot) {
  DriverOptions o;
  o.max_pending_messages = 2;
  DriverInbox inbox(o);
  std::vector<raft::Message> messages(3);
  messages[2].type = raft::MessageType::kApp;
  std::vector<raft::Message> snap(1);
  snap[0].type = raft::MessageType::kSnap;
  EXPECT_EQ(inbox.AddMessages(messages), 1u);
  EXPECT_EQ(inbox.AddMessages(snap), 0u);
  InboxBatch batch = inbox.TakeAll();
  ASSERT_EQ(batch.messages.size(), 3u);
  EXPECT_EQ(batch.messages[2].type, raft::MessageType::kSnap);
}

TEST(DriverInboxTest, ClosedInboxRefusesWithStoppedAndTheOwnerLeaves) {
  DriverInbox inbox(DriverOptions{});
  inbox.Close();
  Proposal p = P(1);
  EXPECT_EQ(inbox.Add(std::move(p)).code(), Code::kStopped);
  EXPECT_EQ(inbox.AddMessages(std::vector<raft::Message>(2)), 2u);
  ManualClock clock;
  InboxBatch batch;
  EXPECT_FALSE(inbox.TakeOrWait(clock.Now() + std::chrono::hours(1), clock, &batch))
      << "returns at once, closed";
}

TEST(DriverInboxTest, TakeOrWaitReturnsAtOnceWhenTheWakeUpHasPassed) {
  DriverInbox inbox(DriverOptions{});
  ManualClock clock;
  clock.Advance(std::chrono::seconds(10));
  InboxBatch batch;
  // Nothing queued, the wake-up is now: the owner takes its turn (a tick) without sleeping.
  ASSERT_TRUE(inbox.TakeOrWait(clock.Now(), clock, &batch));
  EXPECT_TRUE(batch.empty());
}

}  // namespace
}  // namespace dolmen::server
