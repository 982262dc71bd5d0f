#include "watch/inbox.h"

#include <gtest/gtest.h>

namespace dolmen::watch {
namespace {

using namespace std::chrono_literals;

std::vector<mvcc::Event> OnePut(int64_t rev) {
  mvcc::Event e;
  e.kv.key = "k";
  e.kv.mod_revision = Revision(rev);
  return {e};
}

TEST(WatchInboxTest, QueuesBatchesInOrderWhileWatched) {
  Inbox inbox(100);
  EXPECT_FALSE(inbox.WatcherAdded());
  inbox.Push(OnePut(2), Revision(2));
  inbox.Push({}, Revision(3));  // a batch without events (a lease grant) still moves on
  Inbox::Work work = inbox.Take(0ns);
  ASSERT_EQ(work.batches.size(), 2u);
  EXPECT_EQ(work.batches[0].revision, 2);
  EXPECT_EQ(work.batches[0].events.size(), 1u);
  EXPECT_EQ(work.batches[1].revision, 3);
  EXPECT_EQ(work.dropped_through, 0);
  EXPECT_FALSE(work.stop);
}

// A batch costs its events plus one, so batches without events cannot pile up either.
TEST(WatchInboxTest, BatchesWithoutEventsCountAgainstTheBound) {
  Inbox inbox(8);
  inbox.WatcherAdded();
  for (int64_t rev = 2; rev < 1002; ++rev) inbox.Push({}, Revision(rev));
  Inbox::Work work = inbox.Take(0ns);
  EXPECT_LE(work.batches.size(), 8u);
  EXPECT_GT(work.dropped_through, 0);
  // What was kept follows the drop.
  for (const auto& b : work.batches) EXPECT_GT(b.revision, work.dropped_through);
  EXPECT_EQ(work.batches.empty() ? work.dropped_through : work.batches.back().revision, 1001);
}

TEST(WatchInboxTest, WithNoWatcherBatchesAreRecordedAsDropped) {
  Inbox inbox(100);
  inbox.Push(OnePut(2), Revision(2));
  EXPECT_TRUE(inbox.WatcherAdded());  // the new watcher's creator must kick the worker
  Inbox::Work work = inbox.Take(0ns);
  EXPECT_TRUE(work.batches.empty());
  EXPECT_EQ(work.dropped_through, 2);
  inbox.WatcherGone();
  inbox.Push(OnePut(3), Revision(3));
  EXPECT_EQ(inbox.Take(0ns).dropped_through, 3);
}

TEST(WatchInboxTest, TakeReturnsOnKickStopOrTimeout) {
  Inbox inbox(100);
  Inbox::Work idle = inbox.Take(1ms);  // nothing: returns when the wait is over
  EXPECT_TRUE(idle.batches.empty());
  EXPECT_FALSE(idle.stop);
  inbox.Kick();
  EXPECT_FALSE(inbox.Take(1h).stop);  // the kick was recorded: no wait
  inbox.Stop();
  EXPECT_TRUE(inbox.Take(1h).stop);
}

}  // namespace
}  // namespace dolmen::watch
