#include "server/read_pool.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

namespace dolmen::server {
namespace {

TEST(ReadPoolTest, RunsEveryPostedReadOffTheCallersThread) {
  ReadPool pool(2, 100);
  std::atomic<int> ran{0};
  std::promise<std::thread::id> where;
  ASSERT_TRUE(pool.Post([&] { where.set_value(std::this_thread::get_id()); }).ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.Post([&] { ran.fetch_add(1); }).ok());
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
  pool.Stop();  // drains
  EXPECT_EQ(ran.load(), 50);
}

TEST(ReadPoolTest, ThreadsRunAtTheirNiceValue) {
  errno = 0;
  const int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  ASSERT_EQ(errno, 0);
  ReadPool pool(1, 10, 5);
  std::promise<int> seen;
  ASSERT_TRUE(
      pool.Post([&] { seen.set_value(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()))); })
          .ok());
  // Lowered by 5, capped at 19 (the test may already run niced).
  EXPECT_EQ(seen.get_future().get(), std::min(19, mine + 5));
  // The caller's own priority is untouched.
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), mine);
}

TEST(ReadPoolTest, RefusesBeyondItsBoundAndAfterStop) {
  ReadPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  // The one thread is held inside the first read, so the next two fill the queue.
  ASSERT_TRUE(pool.Post([&] {
                    started.set_value();
                    released.wait();
                  })
                  .ok());
  started.get_future().wait();
  EXPECT_TRUE(pool.Post([] {}).ok());
  EXPECT_TRUE(pool.Post([] {}).ok());
  EXPECT_EQ(pool.Post([] {}).code(), Code::kTooManyRequests);
  release.set_value();
  pool.Stop();
  EXPECT_EQ(pool.Post([] {}).code(), Code::kStopped);
}

}  // namespace
}  // namespace dolmen::server
