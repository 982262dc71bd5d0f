#include "server/read_pool.h"

#include <utility>

namespace dolmen::server {

ReadPool::ReadPool(int threads, size_t max_queued) : max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

ReadPool::~ReadPool() { Stop(); }

Status ReadPool::Post(std::function<void()> read) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return Status(Code::kStopped, "server stopped");
  if (queue_.size() >= max_queued_) return Status(Code::kTooManyRequests, "too many requests");
  queue_.push_back(std::move(read));
  return OkStatus();
}

void ReadPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void ReadPool::Loop() {
  auto has_work = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
  while (true) {
    std::function<void()> read;
    {
      absl::MutexLock lock(&mu_, absl::Condition(&has_work));
      // Stopping drains the queue first: every posted read gets its answer.
      if (queue_.empty()) return;
      read = std::move(queue_.front());
      queue_.pop_front();
    }
    read();
  }
}

}  // namespace dolmen::server
