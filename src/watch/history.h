// What the hub reads from the store: the revision counters and the changes of past revisions
// (catch-up). An interface so a test can stand a slow or failing store in (hub_test's blocking
// history) and the simulator a simulated one; StoreHistory is the real one.
//
// Threads: any. The hub calls Events from its catch-up thread with none of its locks held, and
// the counters from any thread under its lock (they must be cheap: atomics in mvcc::Store).
#pragma once

#include <cstddef>

#include "base/ids.h"
#include "base/status.h"
#include "mvcc/store.h"

namespace dolmen::watch {

class History {
 public:
  virtual ~History() = default;
  virtual Revision CurrentRevision() const = 0;
  virtual Revision CompactRevision() const = 0;  // 0 = never compacted
  // mvcc::Store::Events: the changes of [from, to], whole revisions, stopping after the
  // revision in which `max_events` was reached; kCompacted if from < the compact revision.
  virtual Result<mvcc::Store::EventsResult> Events(Revision from, Revision to,
                                                   size_t max_events) const = 0;
};

// The member's store. It must outlive the hub.
class StoreHistory final : public History {
 public:
  explicit StoreHistory(const mvcc::Store* store) : store_(store) {}
  Revision CurrentRevision() const override { return store_->CurrentRevision(); }
  Revision CompactRevision() const override { return store_->CompactRevision(); }
  Result<mvcc::Store::EventsResult> Events(Revision from, Revision to,
                                           size_t max_events) const override {
    return store_->Events(from, to, max_events);
  }

 private:
  const mvcc::Store* const store_;
};

}  // namespace dolmen::watch
