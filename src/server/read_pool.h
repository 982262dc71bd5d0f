// Threads that serve linearizable reads once their read barrier has passed. The barrier
// completes on the driver thread; running the read there as well would put every range scan
// (Kubernetes lists whole prefixes) between Raft's turns and delay heartbeats and writes. The
// store serves reads from any thread, so the driver only hands the read over.
//
// Bounded: at most `max_queued` reads wait; beyond that Post refuses and the caller answers
// "too many requests" rather than letting memory grow without limit.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"

namespace dolmen::server {

class ReadPool {
 public:
  // `nice` (0..19) lowers the threads' scheduling priority by that much: background work (the
  // maintenance pool's hash scans and defragmentation copies) then takes the cores only when the
  // request path (gRPC, the driver, the WAL) leaves them idle. An unprivileged process may lower
  // but not raise it, so this never fails; a value the kernel refuses is ignored.
  ReadPool(int threads, size_t max_queued, int nice = 0);
  ~ReadPool();  // Stop()

  // Thread-safe. Queues `read`. When the queue is full (kTooManyRequests, etcd's "too many
  // requests") or the pool has stopped (kStopped), `read` is not run and the caller answers.
  Status Post(std::function<void()> read);
  // Runs what is queued, then joins the threads; later Posts are refused. Idempotent.
  void Stop();

 private:
  void Loop();

  const size_t max_queued_;
  const int nice_;
  // Spins briefly before it sleeps, as the driver's inbox (driver_inbox.h): the driver thread
  // posts here after every read barrier and must not sleep while a pool thread pops.
  base::Mutex mu_{base::kSpinBeforeSleep};
  base::CondVar cv_;  // signalled when queue_ gains a read or stopping_ is set
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace dolmen::server
