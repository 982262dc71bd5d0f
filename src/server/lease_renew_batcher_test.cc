#include "server/lease_renew_batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace dolmen::server {
namespace {

using namespace std::chrono_literals;

constexpr MemberId kLeader(7);

// The leader's side, scripted: records each batch it is sent, can hold the first `held`
// batches until released, answers each lease with ttl = id (kLeaseNotFound for ids < 0), and
// fails the first `fail` batches as a whole with kNotLeader.
class FakeLeader {
 public:
  LeaseRenewBatcher::Send Sender() {
    return [this](MemberId leader, const std::vector<LeaseId>& ids,
                  Deadline) -> Result<std::vector<Result<int64_t>>> {
      std::unique_lock<std::mutex> lock(mu_);
      EXPECT_EQ(leader, kLeader);
      batches_.push_back(ids);
      ++out_;
      max_out_ = std::max(max_out_, out_);
      cv_.notify_all();
      const bool hold = batches_.size() <= held_;
      cv_.wait_for(lock, 10s, [&] { return !hold || released_; });
      --out_;
      if (fail_ > 0) {
        --fail_;
        return Status(Code::kNotLeader, "not leader");
      }
      std::vector<Result<int64_t>> out;
      for (LeaseId id : ids) {
        if (id.value() < 0) {
          out.emplace_back(Status(Code::kLeaseNotFound, "requested lease not found"));
        } else {
          out.emplace_back(id.value());
        }
      }
      return out;
    };
  }
  void Hold(size_t first_batches) { held_ = first_batches; }
  void FailFirst(int batches) { fail_ = batches; }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits (bounded) until `n` batches have been sent.
  bool AwaitBatches(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return batches_.size() >= n; });
  }
  std::vector<std::vector<LeaseId>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  int max_out() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_out_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<LeaseId>> batches_;
  size_t held_ = 0;
  int fail_ = 0;
  bool released_ = false;
  int out_ = 0;
  int max_out_ = 0;
};

// Each lease's answer, awaited with a bound.
class Answers {
 public:
  LeaseRenewBatcher::Done For(int64_t id) {
    return [this, id](Result<int64_t> r) {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(got_.count(id), 0u) << "lease " << id << " answered twice";
      got_.emplace(id, std::move(r));
      cv_.notify_all();
    };
  }
  bool AwaitCount(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return got_.size() >= n; });
  }
  Result<int64_t> Of(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = got_.find(id);
    return it == got_.end() ? Result<int64_t>(Status(Code::kInternal, "no answer")) : it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Result<int64_t>> got_;
};

struct Rig {
  explicit Rig(size_t in_flight, size_t max_batch = 1024,
               std::chrono::milliseconds timeout = 5000ms) {
    ForwarderOptions o;
    o.threads = 4;
    o.timeout = timeout;
    o.retry_backoff = 5ms;
    forwarder = std::make_unique<Forwarder>(o, [] { return kLeader; });
    forwarder->Start();
    batcher = std::make_unique<LeaseRenewBatcher>(
        in_flight, max_batch,
        [this](Forwarder::Attempt a, Forwarder::IsFinal f, std::function<void(Status)> done) {
          forwarder->Run(std::move(a), std::move(f), std::move(done));
        },
        leader.Sender());
  }
  ~Rig() {
    leader.Release();
    forwarder->Stop();
  }
  FakeLeader leader;
  std::unique_ptr<Forwarder> forwarder;
  std::unique_ptr<LeaseRenewBatcher> batcher;
};

TEST(LeaseRenewBatcher, RenewalsArrivingWhileABatchIsOutGoInTheNextOneCall) {
  Rig rig(/*in_flight=*/1);
  rig.leader.Hold(1);
  Answers answers;
  rig.batcher->Renew(LeaseId(1), answers.For(1));
  ASSERT_TRUE(rig.leader.AwaitBatches(1));
  for (int64_t id = 2; id <= 50; ++id) rig.batcher->Renew(LeaseId(id), answers.For(id));
  rig.leader.Release();
  ASSERT_TRUE(answers.AwaitCount(50));
  auto batches = rig.leader.batches();
  ASSERT_EQ(batches.size(), 2u);  // 50 renewals, two calls
  EXPECT_EQ(batches[0], std::vector<LeaseId>{LeaseId(1)});
  ASSERT_EQ(batches[1].size(), 49u);
  for (int64_t id = 1; id <= 50; ++id) {
    Result<int64_t> r = answers.Of(id);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    EXPECT_EQ(*r, id);
  }
}

TEST(LeaseRenewBatcher, ALeaseNotFoundIsThatLeasesAnswerOnly) {
  Rig rig(1);
  Answers answers;
  rig.leader.Hold(1);
  rig.batcher->Renew(LeaseId(5), answers.For(5));
  ASSERT_TRUE(rig.leader.AwaitBatches(1));
  rig.batcher->Renew(LeaseId(-3), answers.For(-3));
  rig.batcher->Renew(LeaseId(6), answers.For(6));
  rig.leader.Release();
  ASSERT_TRUE(answers.AwaitCount(3));
  EXPECT_EQ(answers.Of(-3).status().code(), Code::kLeaseNotFound);
  ASSERT_TRUE(answers.Of(6).ok());
  EXPECT_EQ(*answers.Of(6), 6);
  EXPECT_EQ(rig.leader.batches().size(), 2u);
}

TEST(LeaseRenewBatcher, ABatchThatFailsAsAWholeIsSentAgain) {
  Rig rig(1);
  rig.leader.FailFirst(2);
  Answers answers;
  rig.batcher->Renew(LeaseId(9), answers.For(9));
  ASSERT_TRUE(answers.AwaitCount(1));
  ASSERT_TRUE(answers.Of(9).ok()) << answers.Of(9).status().ToString();
  EXPECT_EQ(*answers.Of(9), 9);
  EXPECT_EQ(rig.leader.batches().size(), 3u);  // two refusals, then the renewal
}

TEST(LeaseRenewBatcher, AtMostInFlightBatchesAndMaxBatchLeasesEach) {
  Rig rig(/*in_flight=*/2, /*max_batch=*/10);
  rig.leader.Hold(2);
  Answers answers;
  rig.batcher->Renew(LeaseId(1), answers.For(1));
  rig.batcher->Renew(LeaseId(2), answers.For(2));
  ASSERT_TRUE(rig.leader.AwaitBatches(2));  // both out, both held
  for (int64_t id = 3; id <= 27; ++id) rig.batcher->Renew(LeaseId(id), answers.For(id));
  rig.leader.Release();
  ASSERT_TRUE(answers.AwaitCount(27));
  EXPECT_LE(rig.leader.max_out(), 2);
  size_t total = 0;
  for (const auto& b : rig.leader.batches()) {
    EXPECT_LE(b.size(), 10u);
    total += b.size();
  }
  EXPECT_EQ(total, 27u);                       // each lease sent once
  EXPECT_EQ(rig.leader.batches().size(), 5u);  // 1 + 1 held, then 25 in batches of 10, 10, 5
}

TEST(LeaseRenewBatcher, AStoppedForwarderAnswersEveryRenewal) {
  Rig rig(1);
  rig.forwarder->Stop();
  Answers answers;
  for (int64_t id = 1; id <= 3; ++id) rig.batcher->Renew(LeaseId(id), answers.For(id));
  ASSERT_TRUE(answers.AwaitCount(3));
  for (int64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(answers.Of(id).status().code(), Code::kStopped) << answers.Of(id).status().ToString();
  }
  EXPECT_TRUE(rig.leader.batches().empty());
}

}  // namespace
}  // namespace dolmen::server
