// The apply thread's hand-off to the hub's worker: applied batches, bounded, under a mutex held
// only for a vector push, so Notify never waits for a consumer, a store read or the hub's
// watcher lock. Also the worker's wake-up (kicks, stop) and the count of watchers that lets
// the apply thread skip batches nobody watches.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/ids.h"
#include "base/mutex.h"
#include "mvcc/kv.h"

namespace dolmen::watch {

class Inbox {
 public:
  // `max_events`: applied events queued at most (a batch counts one more than its events).
  explicit Inbox(size_t max_events) : max_events_(max_events) {}

  struct Batch {
    std::vector<std::shared_ptr<const mvcc::Event>> events;  // revision order
    int64_t revision = 0;                                    // the store revision after the batch
  };

  // Apply thread: one applied batch. Over the bound, or with no watcher, the queued batches are
  // forgotten and recorded as dropped: the worker sends the synced watchers to the store.
  void Push(std::vector<mvcc::Event> events, Revision revision) ABSL_LOCKS_EXCLUDED(mu_);
  // Everything through `revision` must be read from the store (a snapshot replaced it).
  void DropThrough(int64_t revision) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes the worker run a loop now (a progress request; the clock moved).
  void Kick() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Watcher count. Added returns true if batches were dropped meanwhile: the caller kicks the
  // worker, which sends any watcher whose start fell in the dropped range to the store.
  bool WatcherAdded() ABSL_LOCKS_EXCLUDED(mu_);
  void WatcherGone() ABSL_LOCKS_EXCLUDED(mu_);

  struct Work {
    std::vector<Batch> batches;
    int64_t dropped_through = 0;  // > 0: batches through this revision were dropped (all
                                  // precede `batches`: a drop clears the queue)
    bool stop = false;
  };
  // Worker: waits until there is work, a kick or a stop, or `wait` (real time) passed.
  Work Take(std::chrono::nanoseconds wait) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void DropLocked(int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_events_;
  base::Mutex mu_;
  base::CondVar cv_;
  std::vector<Batch> batches_ ABSL_GUARDED_BY(mu_);
  size_t cost_ ABSL_GUARDED_BY(mu_) = 0;  // events + batches queued
  int64_t dropped_through_ ABSL_GUARDED_BY(mu_) = 0;
  size_t watchers_ ABSL_GUARDED_BY(mu_) = 0;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace dolmen::watch
