#include "discovery/srv_wait.h"

#include <gtest/gtest.h>

namespace dolmen::discovery {
namespace {

class SrvWaitTest : public ::testing::Test {
 protected:
  Result<std::vector<std::string>> Run(std::function<Result<std::vector<std::string>>()> attempt,
                                       std::chrono::milliseconds wait) {
    WaitPolicy policy;
    policy.wait = wait;
    return RetryDiscovery(
        attempt, policy, clock_,
        [this](std::chrono::milliseconds d) {
          sleeps_.push_back(d.count());
          clock_.Advance(d);
        },
        [this](const std::string& line) { logged_.push_back(line); });
  }
  ManualClock clock_;
  std::vector<int64_t> sleeps_;
  std::vector<std::string> logged_;
};

TEST_F(SrvWaitTest, RetriesMissingRecordsWithADoublingBackoffUntilTheyAppear) {
  int calls = 0;
  auto found = Run(
      [&calls]() -> Result<std::vector<std::string>> {
        if (++calls < 4) return NotFound("error querying DNS SRV records ...: no such host");
        return std::vector<std::string>{"m1=http://m1.example.test:2380"};
      },
      std::chrono::seconds(60));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{500, 1000, 2000}));
  ASSERT_EQ(logged_.size(), 3u);
  EXPECT_NE(logged_[0].find("attempt 1 failed: error querying"), std::string::npos) << logged_[0];
}

TEST_F(SrvWaitTest, GivesUpWithTheLastErrorWithinTheWait) {
  int calls = 0;
  auto found = Run(
      [&calls]() -> Result<std::vector<std::string>> {
        ++calls;
        return NotFound("cannot find local etcd member \"m1\" in SRV records");
      },
      std::chrono::seconds(20));
  EXPECT_EQ(found.status().message(), "cannot find local etcd member \"m1\" in SRV records");
  // 0.5 + 1 + 2 + 4 + 8 = 15.5 s; the next 8 s would pass 20 s.
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{500, 1000, 2000, 4000, 8000}));
  EXPECT_EQ(calls, 6);
  EXPECT_NE(logged_.back().find("gave up after 6 attempts"), std::string::npos) << logged_.back();
}

TEST_F(SrvWaitTest, ZeroWaitAsksOnceAsEtcd) {
  int calls = 0;
  auto found = Run(
      [&calls]() -> Result<std::vector<std::string>> {
        ++calls;
        return NotFound("no such host");
      },
      std::chrono::milliseconds(0));
  EXPECT_FALSE(found.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(SrvWaitTest, ConfigurationRefusalsAreNotRetried) {
  int calls = 0;
  auto found = Run(
      [&calls]() -> Result<std::vector<std::string>> {
        ++calls;
        return Status(Code::kFailedPrecondition, "a refused configuration");
      },
      std::chrono::seconds(60));
  EXPECT_EQ(found.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(IsWorthRetrying(InvalidArgument("scheme mismatch")));
  EXPECT_TRUE(IsWorthRetrying(Unavailable("server misbehaving")));
}

}  // namespace
}  // namespace dolmen::discovery
