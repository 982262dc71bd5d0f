#include "embed/systemd.h"

#include <gtest/gtest.h>

#include <deque>
#include <vector>

namespace dolmen::embed {
namespace {

using std::chrono::milliseconds;

// A driver loop under the test's control: probes queue up and are answered only when the test
// runs the loop (Run) or stops it (StopAll).
struct FakeLoop {
  std::deque<std::function<void(Status)>> queued;
  AskFn ask() {
    return [this](std::function<void(Status)> answer) { queued.push_back(std::move(answer)); };
  }
  void Run() {
    while (!queued.empty()) {
      auto answer = std::move(queued.front());
      queued.pop_front();
      answer(OkStatus());
    }
  }
  void StopAll() {
    while (!queued.empty()) {
      auto answer = std::move(queued.front());
      queued.pop_front();
      answer(Status(Code::kStopped, "server stopped"));
    }
  }
};

struct Recorder {
  std::vector<std::string> notified;
  std::vector<std::string> logged;
  Watchdog::NotifyFn notify() {
    return [this](const char* state) { notified.emplace_back(state); };
  }
  LogFn log() {
    return [this](const std::string& line) { logged.push_back(line); };
  }
};

TEST(WatchdogTest, PingsOnlyForProbesTheLoopAnswered) {
  FakeLoop loop;
  Recorder out;
  Watchdog dog(milliseconds(500), loop.ask(), out.notify(), out.log());
  dog.Turn();  // first turn: a probe, nothing to vouch for yet
  EXPECT_TRUE(out.notified.empty());
  ASSERT_EQ(loop.queued.size(), 1u);
  for (int i = 0; i < 3; ++i) {
    loop.Run();
    dog.Turn();
  }
  EXPECT_EQ(out.notified, std::vector<std::string>(3, "WATCHDOG=1"));
  EXPECT_EQ(dog.pings(), 3u);
  EXPECT_TRUE(out.logged.empty());
  EXPECT_EQ(loop.queued.size(), 1u);  // always exactly one probe in flight
}

TEST(WatchdogTest, StuckLoopStopsPingsLogsOnceAndResumes) {
  FakeLoop loop;
  Recorder out;
  Watchdog dog(milliseconds(500), loop.ask(), out.notify(), out.log());
  dog.Turn();
  loop.Run();
  dog.Turn();
  ASSERT_EQ(dog.pings(), 1u);
  // The loop stops answering: no ping however many turns pass, one probe in flight, one log.
  for (int i = 0; i < 5; ++i) dog.Turn();
  EXPECT_EQ(dog.pings(), 1u);
  EXPECT_TRUE(dog.stalled());
  EXPECT_EQ(loop.queued.size(), 1u);
  ASSERT_EQ(out.logged.size(), 1u);
  EXPECT_NE(out.logged[0].find("has not answered a probe for 500 ms"), std::string::npos)
      << out.logged[0];
  // It answers again: pings resume, which is logged once.
  loop.Run();
  dog.Turn();
  EXPECT_EQ(dog.pings(), 2u);
  EXPECT_FALSE(dog.stalled());
  ASSERT_EQ(out.logged.size(), 2u);
  EXPECT_NE(out.logged[1].find("resumed"), std::string::npos) << out.logged[1];
}

TEST(WatchdogTest, StoppedLoopStopsPings) {
  FakeLoop loop;
  Recorder out;
  Watchdog dog(milliseconds(500), loop.ask(), out.notify(), out.log());
  dog.Turn();
  loop.StopAll();
  for (int i = 0; i < 3; ++i) {
    dog.Turn();
    loop.StopAll();
  }
  EXPECT_EQ(dog.pings(), 0u);
  ASSERT_EQ(out.logged.size(), 1u);
  EXPECT_NE(out.logged[0].find("stopped"), std::string::npos) << out.logged[0];
}

TEST(WatchdogTest, AnswerAfterDestructionIsHarmless) {
  FakeLoop loop;
  Recorder out;
  {
    Watchdog dog(milliseconds(500), loop.ask(), out.notify(), out.log());
    dog.Turn();
  }
  loop.Run();  // the probe's answer outlives the watchdog
  EXPECT_TRUE(out.notified.empty());
}

// The thread: pings at its period while a loop that answers at once is behind it, none after
// Stop. Bounded: waits at most 10 s for 3 pings at a 10 ms period.
TEST(WatchdogTest, ThreadPingsUntilStopped) {
  std::mutex mu;
  std::condition_variable cv;
  int pings = 0;
  Watchdog dog(
      milliseconds(10), [](std::function<void(Status)> answer) { answer(OkStatus()); },
      [&](const char*) {
        std::lock_guard lock(mu);
        ++pings;
        cv.notify_all();
      },
      [](const std::string&) {});
  dog.Start();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return pings >= 3; }));
  }
  dog.Stop();
  const uint64_t at_stop = dog.pings();
  dog.Stop();  // idempotent
  EXPECT_EQ(dog.pings(), at_stop);
}

// A barrier that fails `failures` times (no leader) and then succeeds.
AskFn FlakyBarrier(int failures, int* asked) {
  return [failures, asked](std::function<void(Status)> answer) {
    ++*asked;
    answer(*asked <= failures ? Status(Code::kNoLeader, "no leader") : OkStatus());
  };
}

ReadyWaitOptions Fast() {
  ReadyWaitOptions o;
  o.poll = milliseconds(1);
  o.retry_pause = milliseconds(1);
  o.try_limit = milliseconds(50);
  return o;
}

TEST(WaitUntilLinearizableTest, RetriesWhileThereIsNoLeader) {
  int asked = 0;
  Recorder out;
  auto never = [](milliseconds) { return false; };
  EXPECT_TRUE(WaitUntilLinearizable(FlakyBarrier(3, &asked), never, out.log(), Fast()));
  EXPECT_EQ(asked, 4);
  ASSERT_EQ(out.logged.size(), 1u);  // the first failure only
  EXPECT_NE(out.logged[0].find("no leader"), std::string::npos) << out.logged[0];
}

TEST(WaitUntilLinearizableTest, ReadyAtOnceWhenTheFirstBarrierPasses) {
  int asked = 0;
  Recorder out;
  auto never = [](milliseconds) { return false; };
  EXPECT_TRUE(WaitUntilLinearizable(FlakyBarrier(0, &asked), never, out.log(), Fast()));
  EXPECT_EQ(asked, 1);
  EXPECT_TRUE(out.logged.empty());
}

// Without quorum no barrier ever passes: never ready; a stop request (a signal) ends the wait.
TEST(WaitUntilLinearizableTest, NeverReadyWithoutQuorumUntilStopped) {
  int asked = 0;
  int polls = 0;
  Recorder out;
  auto stop_after_100_polls = [&](milliseconds) { return ++polls > 100; };
  EXPECT_FALSE(WaitUntilLinearizable(FlakyBarrier(1 << 30, &asked), stop_after_100_polls, out.log(),
                                     Fast()));
  EXPECT_GT(asked, 1);
}

// A barrier whose answer never comes is abandoned after try_limit and asked again; the late
// answer of an abandoned one does not count.
TEST(WaitUntilLinearizableTest, AbandonsUnansweredBarrier) {
  std::vector<std::function<void(Status)>> unanswered;
  int asked = 0;
  AskFn barrier = [&](std::function<void(Status)> answer) {
    if (++asked == 1) {
      unanswered.push_back(std::move(answer));
      return;
    }
    answer(OkStatus());
  };
  Recorder out;
  auto never = [](milliseconds) { return false; };
  EXPECT_TRUE(WaitUntilLinearizable(barrier, never, out.log(), Fast()));
  EXPECT_EQ(asked, 2);
  ASSERT_EQ(unanswered.size(), 1u);
  unanswered[0](OkStatus());  // too late; must not crash
}

}  // namespace
}  // namespace dolmen::embed
