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
  {
    base::MutexLock lock(&mu_);
    if (stopping_) return Status(Code::kStopped, "server stopped");
    if (queue_.size() >= max_queued_) return Status(Code::kTooManyRequests, "too many requests");
    queue_.push_back(std::move(read));
  }
  cv_.Signal();
  return OkStatus();
}

void ReadPool::Stop() {
  {
    base::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.SignalAll();
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
  while (true) {
    std::function<void()> read;
    {
      base::MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      // Stopping drains the queue first: every posted read gets its answer.
      if (queue_.empty()) return;
      read = std::move(queue_.front());
      queue_.pop_front();
    }
    read();
  }
}

}  // namespace dolmen::server
