#include "server/driver_inbox.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace dolmen::server {

dolmen::Status DriverInbox::Admit(size_t queued, size_t held, size_t bound) const {
  if (closed_) return dolmen::Status(Code::kStopped, "server stopped");
  if (queued + held >= bound) return TooManyRequests();
  return OkStatus();
}

dolmen::Status DriverInbox::Add(Proposal&& p) {
  {
    base::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Admit(batch_.proposals.size(), held_proposals_.load(), options_.max_pending));
    batch_.proposals.push_back(std::move(p));
  }
  cv_.Signal();
  return OkStatus();
}

dolmen::Status DriverInbox::Add(ConfProposal&& c) {
  {
    base::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Admit(batch_.conf_changes.size(), held_conf_changes_.load(),
                          options_.max_pending_conf_changes));
    batch_.conf_changes.push_back(std::move(c));
  }
  cv_.Signal();
  return OkStatus();
}

dolmen::Status DriverInbox::AddRead(Waiter&& r) {
  {
    base::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Admit(batch_.reads.size(), held_reads_.load(), options_.max_pending_reads));
    batch_.reads.push_back(std::move(r));
  }
  cv_.Signal();
  return OkStatus();
}

dolmen::Status DriverInbox::Add(Task&& t) {
  {
    base::MutexLock lock(&mu_);
    // Tasks leave the inbox only to run in the same turn, so the inbox is their whole queue.
    RETURN_IF_ERROR(Admit(batch_.tasks.size(), 0, options_.max_pending_tasks));
    batch_.tasks.push_back(std::move(t));
  }
  cv_.Signal();
  return OkStatus();
}

size_t DriverInbox::AddMessages(std::vector<raft::Message> messages) {
  size_t dropped = 0;
  {
    base::MutexLock lock(&mu_);
    if (closed_) return messages.size();
    for (raft::Message& m : messages) {
      if (batch_.messages.size() >= options_.max_pending_messages &&
          m.type != raft::MessageType::kSnap) {
        ++dropped;
        continue;
      }
      batch_.messages.push_back(std::move(m));
    }
  }
  cv_.Signal();
  return dropped;
}

template <typename T>
bool DriverInbox::AddDroppable(std::vector<T> InboxBatch::*list, T item) {
  {
    base::MutexLock lock(&mu_);
    if ((batch_.*list).size() >= options_.max_pending_reports) return false;
    (batch_.*list).push_back(std::move(item));
  }
  cv_.Signal();
  return true;
}

bool DriverInbox::AddReport(PeerReport report) {
  return AddDroppable(&InboxBatch::reports, report);
}

bool DriverInbox::AddTransfer(MemberId transferee) {
  return AddDroppable(&InboxBatch::transfers, transferee);
}

void DriverInbox::AddSynced(SyncDone done) {
  {
    base::MutexLock lock(&mu_);
    batch_.synced.push_back(std::move(done));
  }
  cv_.Signal();
}

bool DriverInbox::HasWork() const { return closed_ || !batch_.empty(); }

bool DriverInbox::TakeOrWait(TimePoint wake, const Clock& clock, InboxBatch* out) {
  base::MutexLock lock(&mu_);
  while (!HasWork()) {
    const auto left = wake - clock.Now();
    if (left <= TimePoint::duration::zero()) break;
    // At most an hour at a time (the loop waits again): keeps now + left far from overflow
    // whatever the injected clock says.
    cv_.WaitUntil(&mu_, std::chrono::steady_clock::now() +
                            std::min<TimePoint::duration>(left, std::chrono::hours(1)));
  }
  if (closed_) return false;
  std::swap(*out, batch_);
  // What was taken is the owner's now: it counts as held until the owner publishes its lists
  // after the turn, so the bounds hold during the turn too.
  held_proposals_.fetch_add(out->proposals.size());
  held_reads_.fetch_add(out->reads.size());
  held_conf_changes_.fetch_add(out->conf_changes.size());
  return true;
}

InboxBatch DriverInbox::TakeAll() {
  InboxBatch out;
  base::MutexLock lock(&mu_);
  std::swap(out, batch_);
  return out;
}

void DriverInbox::Close() {
  {
    base::MutexLock lock(&mu_);
    closed_ = true;
  }
  cv_.SignalAll();
}

bool DriverInbox::closed() const {
  base::MutexLock lock(&mu_);
  return closed_;
}

void DriverInbox::Wake() {
  // Under mu_: the owner computes its sleep and starts it under mu_ too, so this signal cannot
  // fall between the two and be lost.
  base::MutexLock lock(&mu_);
  cv_.Signal();
}

void DriverInbox::PublishBacklog(const Backlog& held) {
  held_proposals_.store(held.proposals);
  held_reads_.store(held.reads);
  held_conf_changes_.store(held.conf_changes);
}

}  // namespace dolmen::server
