#include "watch/inbox.h"

#include <algorithm>
#include <utility>

namespace dolmen::watch {

void Inbox::DropLocked(int64_t revision) {
  dropped_through_ = std::max(dropped_through_, revision);
  batches_.clear();
  cost_ = 0;
}

void Inbox::Push(std::vector<mvcc::Event> events, Revision revision) {
  {
    base::MutexLock l(&mu_);
    if (watchers_ == 0) {
      // Nobody to tell: no wake-up per write. A watcher created meanwhile had its start
      // revision from the store; it sees this drop and kicks the worker (WatcherAdded).
      DropLocked(revision.value());
      return;
    }
  }
  Batch batch;
  batch.revision = revision.value();
  batch.events.reserve(events.size());
  for (auto& e : events) batch.events.push_back(std::make_shared<const mvcc::Event>(std::move(e)));
  {
    base::MutexLock l(&mu_);
    const size_t cost = batch.events.size() + 1;
    if (cost_ + cost > max_events_) {
      // The worker is far behind: forget the queued changes and let every synced watcher read
      // them back from the store, rather than grow without bound or block the apply thread.
      DropLocked(batch.revision);
    } else {
      cost_ += cost;
      batches_.push_back(std::move(batch));
    }
  }
  cv_.Signal();
}

void Inbox::DropThrough(int64_t revision) {
  {
    base::MutexLock l(&mu_);
    // Queued batches precede it and their revisions are in the store: dropped too.
    DropLocked(std::max<int64_t>(revision, 1));
  }
  cv_.Signal();
}

void Inbox::Kick() {
  {
    base::MutexLock l(&mu_);
    kick_ = true;
  }
  cv_.Signal();
}

void Inbox::Stop() {
  {
    base::MutexLock l(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
}

bool Inbox::WatcherAdded() {
  base::MutexLock l(&mu_);
  ++watchers_;
  return dropped_through_ > 0;
}

void Inbox::WatcherGone() {
  base::MutexLock l(&mu_);
  --watchers_;
}

Inbox::Work Inbox::Take(std::chrono::nanoseconds wait) {
  // A real-time deadline: the caller computed `wait` from the hub's clock; if that clock is a
  // test's manual one, the test kicks after moving it (Hub::Wake).
  const auto deadline = std::chrono::steady_clock::now() + wait;
  base::MutexLock l(&mu_);
  // No wait (a due tick, Hub::RunPending): not even a timed wait, which still parks the thread.
  while (wait > std::chrono::nanoseconds(0) && !stop_ && !kick_ && dropped_through_ == 0 &&
         batches_.empty()) {
    if (!cv_.WaitUntil(&mu_, deadline)) break;
  }
  Work work;
  work.stop = stop_;
  work.batches.swap(batches_);
  cost_ = 0;
  work.dropped_through = std::exchange(dropped_through_, 0);
  kick_ = false;
  return work;
}

}  // namespace dolmen::watch
