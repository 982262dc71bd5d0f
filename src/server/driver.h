// The driver: the one owner thread of a member. It takes proposals from any thread, makes a
// batch of them durable with one log append and one fdatasync (group commit), applies them in
// log order and completes each caller. Everything that must observe "all earlier writes
// applied" (read-only txns, checkpoints) runs on this thread too, in queue order.
//
// Today the log is local (one member); the Raft core slots in between "take a batch" and
// "persist" without changing the contract callers see: Propose -> durable -> applied -> done.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/ids.h"
#include "base/status.h"
#include "server/applier.h"
#include "wal/wal.h"

namespace dolmen::server {

struct DriverOptions {
  // Bounds on one batch: what one fdatasync covers and one backend commit applies.
  size_t max_batch_entries = 1024;
  size_t max_batch_bytes = 8u << 20;
  // Proposals waiting beyond this are refused with "too many requests" rather than queued
  // without bound.
  size_t max_pending = 20000;
  // A checkpoint syncs the backend and releases WAL segments it covers.
  uint64_t checkpoint_entries = 20000;
  std::chrono::milliseconds checkpoint_interval{5000};
};

class Driver {
 public:
  using Done = std::function<void(ApplyResult)>;
  using Task = std::function<void()>;
  // Called once, on the owner thread, when the log cannot be written: the member must stop.
  using FatalHandler = std::function<void(const Status&)>;
  // Called on the owner thread after each batch is applied and visible to readers, with the
  // batch's changes in revision order and the store revision after it (for watchers).
  using ApplyObserver = std::function<void(std::vector<mvcc::Event> events, Revision revision)>;

  Driver(wal::Wal* wal, mvcc::Store* store, Applier* applier, Term term, Index last_index,
         DriverOptions options, FatalHandler on_fatal);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Must be set before Start.
  void SetApplyObserver(ApplyObserver observer) { observer_ = std::move(observer); }
  void Start();
  // Finishes the batch in flight, fails everything still queued with kStopped, joins.
  void Stop();

  // Thread-safe. `data` is a serialized InternalRequest. `done` runs on the owner thread after
  // the entry is durable and applied, or at once on the calling thread when refused.
  void Propose(std::string data, Done done);
  // Thread-safe. Runs `task` on the owner thread after every proposal queued before it has
  // been applied. Returns false (and drops the task) when stopped.
  bool RunInOrder(Task task);

  Term term() const { return term_; }
  Index applied_index() const;

 private:
  struct Item {
    std::string data;  // empty with a task
    Done done;
    Task task;
  };

  void Loop();
  bool TakeBatch(std::deque<Item>* batch);
  Status Persist(std::deque<Item>& batch);
  // False when the store failed: the member has been declared failed.
  bool ApplyBatch(std::deque<Item>& batch);
  void MaybeCheckpoint();
  void FailAll(std::deque<Item>& items, const Status& status);

  wal::Wal* const wal_;
  mvcc::Store* const store_;
  Applier* const applier_;
  const Term term_;
  const DriverOptions options_;
  FatalHandler on_fatal_;
  ApplyObserver observer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;       // guarded by mu_
  size_t queued_proposals_ = 0;  // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  bool failed_ = false;          // guarded by mu_
  Index applied_;                // guarded by mu_ (written by the owner thread)

  // Owner thread only.
  Index last_index_;
  uint64_t entries_since_checkpoint_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_;
  std::thread thread_;
};

}  // namespace dolmen::server
