// A std::mutex that clang's thread-safety analysis understands (-Wthread-safety; see
// docs/testing.md, "Thread-safety analysis"). libstdc++'s std::mutex carries no capability
// annotations, so members guarded by one cannot be marked ABSL_GUARDED_BY; this wrapper can.
//
// Why not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer, so TSan does not see
// its locking and reports every access it guards as a race. A std::mutex is a pthread mutex,
// which TSan intercepts.
//
// A Mutex made with Mutex(kSpinBeforeSleep) tries the lock briefly before it sleeps, as
// absl::Mutex does: for a lock held only for a few hundred nanoseconds by a thread that runs
// all the time (the driver's inbox, swapped once per turn), a caller arriving in that moment
// would otherwise sleep in the kernel and be woken again (~1.6 such wake-ups per put on a
// leader with a plain std::mutex, docs/benchmarks.md, "Third session").
//
// Usage:
//   base::Mutex mu_;
//   int n_ ABSL_GUARDED_BY(mu_);
//   { base::MutexLock l(&mu_); ++n_; }
//   while (!ready_) cv_.Wait(&mu_);   // inside a MutexLock scope
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace dolmen::base {

// Mutex's constructor tag: spin briefly before sleeping (above).
struct SpinBeforeSleep {};
inline constexpr SpinBeforeSleep kSpinBeforeSleep{};

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  explicit Mutex(SpinBeforeSleep) : spin_tries_(kSpinTries) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    for (int i = 0; i < spin_tries_; ++i) {
      if (mu_.try_lock()) return;
      CpuRelax();
    }
    mu_.lock();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis the caller holds it (where the code proves it otherwise).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  // About a microsecond or two of trying: longer than the inbox's swap, far shorter than a
  // sleep and wake-up (tens of microseconds on a busy machine).
  static constexpr int kSpinTries = 100;

  // Tells the core it is spinning (x86 PAUSE, Arm YIELD): lets its sibling hyperthread run and
  // avoids the memory-order flush on leaving the loop.
  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  std::mutex mu_;
  const int spin_tries_ = 0;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable for base::Mutex. The waits take no predicate (a lambda reading guarded
// members is not known to hold the lock); callers loop: `while (!cond) cv.Wait(&mu);`.
class CondVar {
 public:
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

  // Releases `mu` while it sleeps; holds it again on return (possibly spuriously woken).
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> l(mu->mu_, std::adopt_lock);
    cv_.wait(l);
    l.release();
  }
  // As Wait; returns false if `deadline` passed.
  template <class Clock, class Duration>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> l(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(l, deadline) == std::cv_status::no_timeout;
    l.release();
    return woken;
  }

 private:
  std::condition_variable cv_;
};

}  // namespace dolmen::base
