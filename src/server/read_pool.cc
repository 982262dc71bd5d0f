#include "server/read_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace dolmen::server {

ReadPool::ReadPool(int threads, size_t max_queued, int nice)
    : max_queued_(max_queued), nice_(nice) {
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
  // Linux: a thread's nice value is its own (PRIO_PROCESS with a thread id). Relative to what
  // the thread inherited, so a member started under `nice` keeps its background work below it.
  if (nice_ > 0) {
    const auto self = static_cast<id_t>(gettid());
    errno = 0;
    const int inherited = getpriority(PRIO_PROCESS, self);
    if (errno == 0) (void)setpriority(PRIO_PROCESS, self, std::min(19, inherited + nice_));
  }
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
