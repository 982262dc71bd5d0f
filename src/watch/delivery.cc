#include "watch/delivery.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "base/check.h"

namespace dolmen::watch {
namespace {

// Per-watcher events of one revision, in first-match order (deterministic output).
class PerWatcher {
 public:
  std::vector<std::shared_ptr<const mvcc::Event>>* Of(Watcher* w) {
    auto [it, inserted] = index_.emplace(w, order_.size());
    if (inserted) order_.push_back({w, {}});
    return &order_[it->second].second;
  }
  auto& entries() { return order_; }

 private:
  std::unordered_map<Watcher*, size_t> index_;
  std::vector<std::pair<Watcher*, std::vector<std::shared_ptr<const mvcc::Event>>>> order_;
};

}  // namespace

Delivery::Delivery(WatcherGroups* groups, const HubOptions* options, const Clock* clock)
    : groups_(groups),
      options_(options),
      clock_(clock),
      next_tick_(clock->Now() + options->progress_interval) {}

Delivery::Outcome Delivery::Process(Inbox::Work work) {
  Outcome out;
  base::MutexLock l(&groups_->mu);
  // Dropped batches all precede the ones still queued: a drop clears the inbox.
  if (work.dropped_through > 0) DropThrough(work.dropped_through);
  for (const Inbox::Batch& b : work.batches) Deliver(b);
  Progress(clock_->Now());
  out.wakes = groups_->TakeWakes();
  out.demoted = std::exchange(demoted_, false);
  return out;
}

void Delivery::DropThrough(int64_t revision) {
  std::vector<Watcher*> synced;
  synced.reserve(groups_->synced.size());
  groups_->synced.ForEach([&](Watcher* w) { synced.push_back(w); });
  for (Watcher* w : synced) groups_->MakeUnsynced(w, std::max(w->next, groups_->notified + 1));
  groups_->notified = std::max(groups_->notified, revision);
  demoted_ = demoted_ || !synced.empty();
}

void Delivery::Deliver(const Inbox::Batch& batch) {
  const auto& evs = batch.events;
  size_t begin = 0;
  while (begin < evs.size()) {
    const int64_t rev = evs[begin]->kv.mod_revision.value();
    size_t end = begin + 1;
    while (end < evs.size() && evs[end]->kv.mod_revision.value() == rev) ++end;
    CHECK_GE(rev, groups_->notified + 1) << "apply observer went backwards or repeated a revision";
    if (!groups_->synced.empty()) DeliverRevision(rev, evs, begin, end);
    groups_->notified = rev;
    begin = end;
  }
  groups_->notified = std::max(groups_->notified, batch.revision);
}

void Delivery::DeliverRevision(int64_t rev,
                               const std::vector<std::shared_ptr<const mvcc::Event>>& evs,
                               size_t begin, size_t end) {
  if (end - begin == 1) {
    // The common case (one put or delete per revision): no grouping needed.
    matched_.clear();
    groups_->synced.Match(evs[begin]->kv.key, &matched_);
    for (Watcher* w : matched_) {
      if (rev < w->next || !Passes(*w, *evs[begin])) continue;
      DeliverTo(w, rev, &evs[begin], 1);
    }
    return;
  }
  PerWatcher out;
  for (size_t i = begin; i < end; ++i) {
    matched_.clear();
    groups_->synced.Match(evs[i]->kv.key, &matched_);
    for (Watcher* w : matched_) {
      if (rev < w->next || !Passes(*w, *evs[i])) continue;
      out.Of(w)->push_back(evs[i]);
    }
  }
  for (auto& [w, events] : out.entries()) DeliverTo(w, rev, events.data(), events.size());
}

void Delivery::DeliverTo(Watcher* w, int64_t rev, const std::shared_ptr<const mvcc::Event>* events,
                         size_t count) {
  switch (w->stream->PushEvents(*w, rev, events, count)) {
    case Stream::Pushed::kFull:
      // A victim (etcd 3.4's word): it resumes from this revision through the store once its
      // consumer drained half the stream's bound. Nothing of it stays in memory meanwhile.
      groups_->MakeUnsynced(w, rev);
      demoted_ = true;
      return;
    case Stream::Pushed::kQueuedWake:
      groups_->AddWake(w->stream);
      break;
    case Stream::Pushed::kQueued:
      break;
  }
  w->next = rev + 1;
  w->sent_since_tick = true;
}

void Delivery::Progress(std::chrono::steady_clock::time_point now) {
  if (now >= next_tick_) {
    Tick();
    next_tick_ = now + options_->progress_interval;
  }
  AnswerProgressRequests();
}

void Delivery::Tick() {
  for (Watcher* w : groups_->progress_watchers) {
    // etcd: only synced watchers that sent nothing during the last interval; and, as etcd
    // drops a notification its full channel refuses, none onto a full stream (so a consumer
    // that stopped reading does not collect one per interval forever).
    if (w->synced && !w->sent_since_tick && w->stream->HasRoom()) {
      groups_->Enqueue(w->stream, BaseResponse(*w, groups_->notified));
    }
    w->sent_since_tick = false;
  }
}

void Delivery::AnswerProgressRequests() {
  for (auto it = groups_->progress_requests.begin(); it != groups_->progress_requests.end();) {
    Stream* s = *it;
    if (s->registry.unsynced > 0) {
      ++it;
      continue;
    }
    Response r;
    r.watch_id = kNoWatchId;
    r.revision = Revision(groups_->notified);
    groups_->Enqueue(s, std::move(r));
    it = groups_->progress_requests.erase(it);
  }
}

}  // namespace dolmen::watch
