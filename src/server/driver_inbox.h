// The driver's inbox: what other threads (gRPC handlers, peer stream readers, the syncer) hand
// to the member's owner thread, every list bounded (DriverOptions::max_pending*). Beyond a bound
// a request is refused at once with etcd's "etcdserver: too many requests"; peer messages and
// reports are dropped instead, as etcd's rafthttp drops them (Raft retransmits).
//
// Thread-safe. The owner thread takes everything at once (TakeOrWait) and hands it to the core
// as one turn's events; once closed (stop, or the member failed) every Add refuses with
// kStopped and the caller answers its own callback.
#pragma once

#include <atomic>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "server/driver_options.h"
#include "server/member_events.h"

namespace dolmen::server {

class DriverInbox {
 public:
  explicit DriverInbox(const DriverOptions& options) : options_(options) {}

  // Each moves from its argument only when it returns OK; otherwise (kStopped,
  // kTooManyRequests) the caller still owns it and answers it.
  dolmen::Status Add(Proposal&& p) ABSL_LOCKS_EXCLUDED(mu_);
  dolmen::Status Add(ConfProposal&& c) ABSL_LOCKS_EXCLUDED(mu_);
  dolmen::Status AddRead(Waiter&& r) ABSL_LOCKS_EXCLUDED(mu_);
  dolmen::Status Add(Task&& t) ABSL_LOCKS_EXCLUDED(mu_);
  // Best effort: returns how many messages were dropped (the inbox was full or closed).
  size_t AddMessages(std::vector<raft::Message> messages) ABSL_LOCKS_EXCLUDED(mu_);
  // Best effort: false when dropped.
  bool AddReport(PeerReport report) ABSL_LOCKS_EXCLUDED(mu_);
  bool AddTransfer(MemberId transferee) ABSL_LOCKS_EXCLUDED(mu_);
  // A checkpoint's sync finished (from the syncer thread). Never dropped: at most one is in
  // flight.
  void AddSynced(SyncDone done) ABSL_LOCKS_EXCLUDED(mu_);

  // The owner thread: waits until there is work, `wake` has passed on `clock`, or the inbox is
  // closed; then takes everything. False once closed (the batch is left alone).
  bool TakeOrWait(TimePoint wake, const Clock& clock, InboxBatch* out) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes everything without waiting (the owner, or Stop after the owner exited).
  InboxBatch TakeAll() ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses everything from now on and wakes the owner. Idempotent.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  bool closed() const ABSL_LOCKS_EXCLUDED(mu_);
  // The clock moved, or something outside the inbox changed: the owner computes its wake-up
  // again at once.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

  // The owner publishes what it holds after each turn; the bounds count it with the inbox.
  void PublishBacklog(const Backlog& held);

 private:
  // Under mu_: refused (kStopped / kTooManyRequests), or OK to queue one more beside `queued`
  // already in the inbox and `held` in the owner's lists.
  dolmen::Status Admit(size_t queued, size_t held, size_t bound) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends to batch_'s `list` unless it holds max_pending_reports already.
  template <typename T>
  bool AddDroppable(std::vector<T> InboxBatch::*list, T item) ABSL_LOCKS_EXCLUDED(mu_);

  const DriverOptions options_;
  // Spins briefly before it sleeps: the owner thread holds mu_ only to swap the inbox, and a
  // peer's receiver or a gRPC thread arriving in that moment would otherwise sleep and be woken
  // again (a plain mutex measured ~1.6 such wake-ups per put on a leader). A base::Mutex, not
  // an absl::Mutex, so that ThreadSanitizer sees it (base/mutex.h).
  mutable base::Mutex mu_{base::kSpinBeforeSleep};
  base::CondVar cv_;
  InboxBatch batch_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<size_t> held_proposals_{0};
  std::atomic<size_t> held_reads_{0};
  std::atomic<size_t> held_conf_changes_{0};
};

}  // namespace dolmen::server
