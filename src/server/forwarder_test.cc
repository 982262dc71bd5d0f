#include "server/forwarder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace dolmen::server {
namespace {

using namespace std::chrono_literals;

// The outcome of one forwarded request, awaited with a bound.
class Outcome {
 public:
  std::function<void(Status)> Sink() {
    return [this](Status s) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(s);
      done_ = true;
      cv_.notify_all();
    };
  }
  // The status, or kInternal "no outcome" if none came within `bound`.
  Status Wait(std::chrono::milliseconds bound = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, bound, [this] { return done_; })) {
      return Status(Code::kInternal, "no outcome");
    }
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status status_;
};

ForwarderOptions Fast(std::chrono::milliseconds timeout) {
  ForwarderOptions o;
  o.threads = 2;
  o.timeout = timeout;
  o.retry_backoff = 5ms;
  return o;
}

bool NeverFinal(const Status&) { return false; }

TEST(Forwarder, NoLeaderForTheWholeTimeoutIsNoLeader) {
  Forwarder f(Fast(300ms), [] { return MemberId(0); });
  f.Start();
  std::atomic<int> attempts{0};
  Outcome out;
  auto started = std::chrono::steady_clock::now();
  f.Run(
      [&](MemberId, Deadline) {
        ++attempts;
        return OkStatus();
      },
      NeverFinal, out.Sink());
  Status s = out.Wait();
  EXPECT_EQ(s.code(), Code::kNoLeader) << s.ToString();
  EXPECT_EQ(attempts.load(), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
}

TEST(Forwarder, WaitsForALeaderThenAsksIt) {
  std::atomic<uint64_t> leader{0};
  Forwarder f(Fast(10s), [&] { return MemberId(leader.load()); });
  f.Start();
  std::atomic<uint64_t> asked{0};
  Outcome out;
  f.Run(
      [&](MemberId l, Deadline) {
        asked = l.value();
        return OkStatus();
      },
      NeverFinal, out.Sink());
  leader = 7;
  f.LeaderChanged();
  EXPECT_TRUE(out.Wait().ok());
  EXPECT_EQ(asked.load(), 7u);
}

TEST(Forwarder, RetriesUntilTheTimeoutThenTimesOut) {
  Forwarder f(Fast(300ms), [] { return MemberId(2); });
  f.Start();
  std::atomic<int> attempts{0};
  Outcome out;
  f.Run(
      [&](MemberId, Deadline) {
        ++attempts;
        return Status(Code::kUnavailable, "down");
      },
      NeverFinal, out.Sink());
  Status s = out.Wait();
  EXPECT_EQ(s.code(), Code::kTimeout) << s.ToString();
  EXPECT_EQ(s.message(), "request timed out");
  EXPECT_GT(attempts.load(), 1);
}

TEST(Forwarder, AFinalAnswerEndsAtOnceAndASecondTryCanSucceed) {
  Forwarder f(Fast(5s), [] { return MemberId(2); });
  f.Start();
  std::atomic<int> attempts{0};
  Outcome final_answer;
  f.Run(
      [&](MemberId, Deadline) {
        ++attempts;
        return Status(Code::kLeaseNotFound, "gone");
      },
      [](const Status& s) { return s.code() == Code::kLeaseNotFound; }, final_answer.Sink());
  EXPECT_EQ(final_answer.Wait().code(), Code::kLeaseNotFound);
  EXPECT_EQ(attempts.load(), 1);

  std::atomic<int> tries{0};
  Outcome second;
  f.Run(
      [&](MemberId, Deadline) {
        return ++tries == 1 ? Status(Code::kNotLeader, "not leader") : OkStatus();
      },
      NeverFinal, second.Sink());
  EXPECT_TRUE(second.Wait().ok());
  EXPECT_EQ(tries.load(), 2);
}

TEST(Forwarder, StopFailsWaitingRequestsAndRefusesNewOnes) {
  Forwarder f(Fast(30s), [] { return MemberId(0); });
  f.Start();
  Outcome waiting;
  f.Run([](MemberId, Deadline) { return OkStatus(); }, NeverFinal, waiting.Sink());
  f.Stop();
  EXPECT_EQ(waiting.Wait(2s).code(), Code::kStopped);
  Outcome late;
  f.Run([](MemberId, Deadline) { return OkStatus(); }, NeverFinal, late.Sink());
  EXPECT_EQ(late.Wait(2s).code(), Code::kStopped);
}

TEST(Forwarder, QueueIsBounded) {
  ForwarderOptions o = Fast(30s);
  o.threads = 1;
  o.max_queued = 2;
  Forwarder f(o, [] { return MemberId(0); });  // no leader: jobs wait
  f.Start();
  std::vector<std::unique_ptr<Outcome>> outs;
  for (int i = 0; i < 4; ++i) {
    outs.push_back(std::make_unique<Outcome>());
    f.Run([](MemberId, Deadline) { return OkStatus(); }, NeverFinal, outs.back()->Sink());
  }
  // One job is on the thread (or still queued), so at least one of the four is refused.
  int refused = 0;
  for (auto& o : outs) refused += o->Wait(200ms).code() == Code::kTooManyRequests;
  EXPECT_GE(refused, 1);
  EXPECT_LE(refused, 2);
  f.Stop();
}

}  // namespace
}  // namespace dolmen::server
