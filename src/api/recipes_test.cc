#include "api/recipes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace dolmen::api {
namespace {

TEST(ApiRecipesTest, PrefixEndAndLeaseKey) {
  EXPECT_EQ(PrefixEnd("a/"), "a0");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff\xff"), std::string(1, '\0'));  // every key
  EXPECT_EQ(LeaseKey("L/", 0x10), "L/10");
  EXPECT_EQ(LeaseKey("E/", 0x694d0000000000ab), "E/694d0000000000ab");
}

TEST(ApiRecipesTest, PollingWaiterFiresOnceTheConditionHolds) {
  PollingKeyWaiter waiter;
  std::atomic<bool> flag{false};
  std::promise<Status> done;
  waiter.WaitUntil([&]() -> Result<bool> { return flag.load(); }, [] { return false; },
                   [&](Status s) { done.set_value(s); });
  auto f = done.get_future();
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  flag.store(true);
  EXPECT_TRUE(f.get().ok());
}

TEST(ApiRecipesTest, PollingWaiterReportsCancelErrorsAndItsBound) {
  PollingOptions options;
  options.max_waits = 2;
  std::promise<Status> cancelled, failed, refused, stopped;
  {
    PollingKeyWaiter waiter(options);
    std::atomic<bool> cancel{false};
    waiter.WaitUntil([]() -> Result<bool> { return false; }, [&] { return cancel.load(); },
                     [&](Status s) { cancelled.set_value(s); });
    waiter.WaitUntil([]() -> Result<bool> { return false; }, [] { return false; },
                     [&](Status s) { stopped.set_value(s); });
    waiter.WaitUntil([]() -> Result<bool> { return true; }, [] { return false; },
                     [&](Status s) { refused.set_value(s); });
    EXPECT_EQ(refused.get_future().get().code(), Code::kResourceExhausted);
    cancel.store(true);
    EXPECT_EQ(cancelled.get_future().get().code(), Code::kCancelled);
    waiter.WaitUntil([]() -> Result<bool> { return Status(Code::kCorruption, "bad"); },
                     [] { return false; }, [&](Status s) { failed.set_value(s); });
    EXPECT_EQ(failed.get_future().get().code(), Code::kCorruption);
  }
  // Destroying the waiter fails what still waits.
  EXPECT_EQ(stopped.get_future().get().code(), Code::kCancelled);
}

}  // namespace
}  // namespace dolmen::api
