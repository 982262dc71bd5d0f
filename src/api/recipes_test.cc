#include "api/recipes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <vector>

#include "backend/memory_backend.h"

namespace dolmen::api {
namespace {

TEST(ApiRecipesTest, PrefixEndAndLeaseKey) {
  EXPECT_EQ(PrefixEnd("a/"), "a0");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff\xff"), std::string(1, '\0'));  // every key
  EXPECT_EQ(LeaseKey("L/", 0x10), "L/10");
  EXPECT_EQ(LeaseKey("E/", 0x694d0000000000ab), "E/694d0000000000ab");
}

// A store written as the driver does (end the txn, then notify the hub), with a started hub.
class WatchWaiterTest : public ::testing::Test {
 protected:
  WatchWaiterTest() : backend_(backend::NewMemoryBackend()) {
    auto opened = mvcc::Store::Open(backend_.get());
    CHECK(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    hub_ = std::make_unique<watch::Hub>(store_.get(), &clock_, watch::HubOptions{});
    hub_->Start();
  }
  ~WatchWaiterTest() override { hub_->Stop(); }

  int64_t Put(const std::string& key) {
    auto txn = store_->BeginWrite();
    CHECK(txn->Put(key, "v", LeaseId(0)).ok());
    int64_t rev = txn->End().value();
    hub_->Notify(txn->Events(), Revision(rev));
    return rev;
  }
  void Delete(const std::string& key) {
    auto txn = store_->BeginWrite();
    CHECK(txn->DeleteRange(key, "").ok());
    int64_t rev = txn->End().value();
    hub_->Notify(txn->Events(), Revision(rev));
  }

  SystemClock clock_;  // the hub's (no test here depends on time passing)
  std::unique_ptr<backend::Backend> backend_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<watch::Hub> hub_;
};

constexpr auto kBound = std::chrono::seconds(20);  // bound on every wait for an outcome

// The condition is looked at once at the start and then only after a change in its range:
// the store is not polled.
TEST_F(WatchWaiterTest, LooksAgainOnlyAfterAChangeInItsRange) {
  WatchKeyWaiter waiter(hub_.get());
  std::atomic<bool> flag{false};
  std::atomic<int> looks{0};
  std::promise<Status> done;
  std::promise<void> first_look;
  waiter.WaitUntil(
      "k/", PrefixEnd("k/"),
      [&]() -> Result<bool> {
        const bool now = flag.load();
        if (++looks == 1) first_look.set_value();
        return now;
      },
      [] { return false; }, [&](Status s) { done.set_value(s); });
  auto f = done.get_future();
  ASSERT_EQ(first_look.get_future().wait_for(kBound), std::future_status::ready);
  flag.store(true);  // true now, but nothing under k/ changed: not looked at again
  Put("other");
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_EQ(looks.load(), 1);
  Put("k/a");
  ASSERT_EQ(f.wait_for(kBound), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(looks.load(), 2);
  EXPECT_EQ(waiter.pending(), 0u);
}

// Lock and Election wait for the holder's key to go (WaitGone). With the old polling waiter a
// wait that had lasted a while was looked at every 200 ms; on the watch a deletion wakes it
// at once.
TEST_F(WatchWaiterTest, WaiterWakesPromptlyWhenTheHoldersKeyIsDeleted) {
  WatchKeyWaiter waiter(hub_.get());
  constexpr int kRounds = 5;
  std::vector<double> wake_ms;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "L/holder" + std::to_string(round);
    int64_t created = Put(key);
    std::promise<std::chrono::steady_clock::time_point> woke;
    Status outcome(Code::kInternal, "not done");
    waiter.WaitGone(
        store_.get(), key, created, 0, [] { return false; },
        [&](Status s) {
          outcome = s;
          woke.set_value(std::chrono::steady_clock::now());
        });
    auto f = woke.get_future();
    // The holder keeps its key for a while (the wait must not end by itself), long enough for
    // a polling waiter to have backed off to its 200 ms interval.
    Put(key + "/unrelated");
    ASSERT_EQ(f.wait_for(std::chrono::milliseconds(450)), std::future_status::timeout);
    auto deleted_at = std::chrono::steady_clock::now();
    Delete(key);
    ASSERT_EQ(f.wait_for(kBound), std::future_status::ready) << "round " << round;
    wake_ms.push_back(std::chrono::duration<double, std::milli>(f.get() - deleted_at).count());
    EXPECT_TRUE(outcome.ok()) << outcome.ToString();
  }
  std::sort(wake_ms.begin(), wake_ms.end());
  // Typically well under a millisecond; 20 ms leaves room for a loaded machine's scheduler
  // and is a tenth of the old poll interval.
  EXPECT_LT(wake_ms[kRounds / 2], 20.0) << "median wake-up after the deletion, ms";
  EXPECT_LT(wake_ms.back(), 1000.0);
}

TEST_F(WatchWaiterTest, ReportsCancelErrorsItsBoundAndStop) {
  WatchWaiterOptions options;
  options.max_waits = 2;
  options.cancel_check_interval = std::chrono::milliseconds(10);
  std::promise<Status> cancelled, failed, refused, stopped, later_failed;
  {
    WatchKeyWaiter waiter(hub_.get(), options);
    std::atomic<bool> cancel{false};
    waiter.WaitUntil(
        "a", "", []() -> Result<bool> { return false; }, [&] { return cancel.load(); },
        [&](Status s) { cancelled.set_value(s); });
    waiter.WaitUntil(
        "b", "", []() -> Result<bool> { return false; }, [] { return false; },
        [&](Status s) { stopped.set_value(s); });
    waiter.WaitUntil(
        "c", "", []() -> Result<bool> { return true; }, [] { return false; },
        [&](Status s) { refused.set_value(s); });
    EXPECT_EQ(refused.get_future().get().code(), Code::kResourceExhausted);
    cancel.store(true);
    auto c = cancelled.get_future();
    ASSERT_EQ(c.wait_for(kBound), std::future_status::ready);
    EXPECT_EQ(c.get().code(), Code::kCancelled);
    // An error on the first look.
    waiter.WaitUntil(
        "d", "", []() -> Result<bool> { return Status(Code::kCorruption, "bad"); },
        [] { return false; }, [&](Status s) { failed.set_value(s); });
    auto f = failed.get_future();
    ASSERT_EQ(f.wait_for(kBound), std::future_status::ready);
    EXPECT_EQ(f.get().code(), Code::kCorruption);
    // An error on a look after a change.
    std::atomic<bool> broken{false};
    waiter.WaitUntil(
        "e", "",
        [&]() -> Result<bool> {
          if (broken.load()) return Status(Code::kCorruption, "later");
          return false;
        },
        [] { return false; }, [&](Status s) { later_failed.set_value(s); });
    broken.store(true);
    Put("e");
    auto lf = later_failed.get_future();
    ASSERT_EQ(lf.wait_for(kBound), std::future_status::ready);
    EXPECT_EQ(lf.get().code(), Code::kCorruption);
  }
  // Destroying the waiter fails what still waits.
  auto s = stopped.get_future();
  ASSERT_EQ(s.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(s.get().code(), Code::kCancelled);
}

}  // namespace
}  // namespace dolmen::api
