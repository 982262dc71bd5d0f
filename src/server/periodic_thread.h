// A thread that runs one round of a leader's background loop (learner promotion, dead-member
// removal), waits as long as the round asked, and runs the next, until Stop. Stop wakes the wait
// at once and joins; a round in progress finishes first (rounds bound their own blocking calls).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace dolmen::server {

class PeriodicThread {
 public:
  // A round returns how long to wait before the next.
  using Round = std::function<std::chrono::milliseconds()>;

  ~PeriodicThread() { Stop(); }

  // `first_wait` before the first round.
  void Start(std::chrono::milliseconds first_wait, Round round) {
    thread_ = std::thread([this, first_wait, round = std::move(round)] {
      std::unique_lock lock(mu_);
      std::chrono::milliseconds wait = first_wait;
      while (!cv_.wait_for(lock, wait, [this] { return stopping_; })) {
        lock.unlock();
        wait = round();
        lock.lock();
      }
    });
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::server
