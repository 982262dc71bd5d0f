#include "server/forwarder.h"

#include <utility>

namespace dolmen::server {

Result<std::vector<Result<int64_t>>> LeaderClient::LeaseRenewBatch(MemberId leader,
                                                                   const std::vector<LeaseId>& ids,
                                                                   Deadline deadline) {
  std::vector<Result<int64_t>> out;
  out.reserve(ids.size());
  for (LeaseId id : ids) {
    Result<int64_t> one = LeaseRenew(leader, id, deadline);
    if (!one.ok() && one.status().code() != Code::kLeaseNotFound) return one.status();
    out.push_back(std::move(one));
  }
  return out;
}

Forwarder::Forwarder(ForwarderOptions options, std::function<MemberId()> leader)
    : options_(options), leader_(std::move(leader)) {
  CHECK(options_.threads > 0);
}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (size_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { Loop(); });
}

void Forwarder::Stop() {
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  leader_cv_.notify_all();
  for (Job& job : dropped) job.finish(Status(Code::kStopped, "server stopped"));
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void Forwarder::LeaderChanged() {
  // Taking the lock orders this after a waiter's check of the leader, so no wake-up is lost.
  { std::lock_guard<std::mutex> lock(mu_); }
  leader_cv_.notify_all();
}

void Forwarder::Run(Attempt attempt, IsFinal is_final, std::function<void(Status)> finish) {
  Job job{std::move(attempt), std::move(is_final), std::move(finish),
          std::chrono::steady_clock::now() + options_.timeout};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && queue_.size() < options_.max_queued) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  // Refused at once, without the lock.
  bool stopped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped = stopping_;
  }
  job.finish(stopped ? Status(Code::kStopped, "server stopped")
                     : Status(Code::kTooManyRequests, "too many requests"));
}

void Forwarder::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Status result = Execute(job);
    job.finish(std::move(result));
  }
}

MemberId Forwarder::WaitLeader(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  MemberId leader = leader_();
  while (leader.value() == 0 && !stopping_) {
    if (leader_cv_.wait_until(lock, deadline) == std::cv_status::timeout) return leader_();
    leader = leader_();
  }
  return leader;
}

// etcd's loop (EtcdServer.LeaseRenew and friends): wait for a leader ("no leader" if none
// comes in time), ask it, accept a final answer, otherwise ask again until the deadline
// ("request timed out").
Status Forwarder::Execute(Job& job) {
  for (;;) {
    MemberId leader = WaitLeader(job.deadline);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return Status(Code::kStopped, "server stopped");
    }
    if (leader.value() == 0) return Status(Code::kNoLeader, "no leader");
    Status s = job.attempt(leader, job.deadline);
    if (s.ok() || job.is_final(s)) return s;
    auto now = std::chrono::steady_clock::now();
    if (now >= job.deadline) return Status(Code::kTimeout, "request timed out");
    // A short pause before the next attempt (the leader may be changing); a leader change
    // or Stop ends it early.
    std::unique_lock<std::mutex> lock(mu_);
    Deadline until = std::min(job.deadline, now + options_.retry_backoff);
    leader_cv_.wait_until(lock, until, [this] { return stopping_; });
    if (std::chrono::steady_clock::now() >= job.deadline) {
      return Status(Code::kTimeout, "request timed out");
    }
  }
}

}  // namespace dolmen::server
