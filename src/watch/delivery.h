// The hub worker's side: applied batches to the streams of synced watchers, and progress
// notifications. For each revision of a batch it finds the matching synced watchers and queues
// that revision's events on their streams, where a watcher's pending revisions coalesce into
// one response (Stream). A watcher whose stream is full becomes a victim: it drops to the
// unsynced group and catch-up (catch_up.h) resumes it from the store, as etcd 3.4's victims
// do. Periodic progress notifications follow the hub's injected clock.
//
// Thread: the hub's worker only; it takes WatcherGroups::mu for one loop at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/clock.h"
#include "watch/groups.h"
#include "watch/inbox.h"
#include "watch/options.h"

namespace dolmen::watch {

class Delivery {
 public:
  // `clock` is the hub's (the member's); the first periodic tick is an interval after now.
  Delivery(WatcherGroups* groups, const HubOptions* options, const Clock* clock);

  struct Outcome {
    Wakes wakes;           // consumers to wake (no hub lock held)
    bool demoted = false;  // watchers fell to the unsynced group: catch-up has work
  };
  // One loop of the worker, under WatcherGroups::mu: the inbox's drop and batches in order,
  // then progress as of the clock's time read under the lock (so a progress request queued
  // after the clock moved is answered after the tick that time is due for).
  Outcome Process(Inbox::Work work) ABSL_LOCKS_EXCLUDED(groups_->mu);
  // When the next periodic tick is due (the worker sleeps until then at most). Worker only.
  std::chrono::steady_clock::time_point next_tick() const { return next_tick_; }

 private:
  // The inbox dropped batches through `revision`: every synced watcher continues from the
  // store (catch-up) at its cursor.
  void DropThrough(int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  // One applied batch, revisions in order, each above `notified`.
  void Deliver(const Inbox::Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  // Periodic progress if `now` reached the tick, then the stream-wide progress requests of
  // streams whose watchers are all synced.
  void Progress(std::chrono::steady_clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  void DeliverRevision(int64_t rev, const std::vector<std::shared_ptr<const mvcc::Event>>& evs,
                       size_t begin, size_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  // Queues the events of revision `rev` for synced watcher `w`, or demotes it if its stream is
  // full.
  void DeliverTo(Watcher* w, int64_t rev, const std::shared_ptr<const mvcc::Event>* events,
                 size_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  void Tick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  void AnswerProgressRequests() ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);

  WatcherGroups* const groups_;
  const HubOptions* const options_;
  const Clock* const clock_;
  std::chrono::steady_clock::time_point next_tick_;
  bool demoted_ = false;
  // DeliverRevision's, kept to reuse its capacity.
  std::vector<Watcher*> matched_;
};

}  // namespace dolmen::watch
