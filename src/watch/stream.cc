#include "watch/stream.h"

#include <algorithm>
#include <iterator>

namespace dolmen::watch {
namespace {

// A response that only carries a watcher's events: later events of the same watcher may be
// appended to it. Control responses (created, canceled, progress) never grow.
bool IsEventResponse(const Response& r) {
  return r.watch_id != kNoWatchId && !r.created && !r.canceled && r.compact_revision.value() == 0 &&
         !r.events.empty();
}

}  // namespace

size_t CostOfEvent(const mvcc::Event& e) { return 48 + e.kv.key.size() + e.kv.value.size(); }

size_t CostOf(const Response& r) {
  size_t bytes = 64 + r.cancel_reason.size();
  for (const auto& e : r.events) bytes += CostOfEvent(*e);
  return bytes;
}

Stream::Stream(const HubOptions* options, std::function<void()> wake, std::function<void()> resume)
    : options_(options), resume_(std::move(resume)), wake_(std::move(wake)) {}

std::optional<Response> Stream::Pop() {
  bool resume = false;
  std::optional<Response> r;
  {
    base::MutexLock l(&mu_);
    if (queue_.empty()) {
      idle_ = true;
      return std::nullopt;
    }
    const size_t resume_at = options_->max_stream_bytes / 2;
    const bool was_above = queued_bytes_ > resume_at;
    r = std::move(queue_.front());
    queue_.pop_front();
    ++popped_;  // the watcher's entry in open_, if any, is now stale; dropped when next seen
    queued_bytes_ -= CostOf(*r);
    // Catch-up waits for this stream when it crosses half its bound, or (a response that did
    // not fit above half) when it is empty.
    resume = ((was_above && queued_bytes_ <= resume_at) || queue_.empty()) && has_unsynced_.load();
  }
  // Outside mu_: catch-up may now resume this stream's unsynced watchers.
  if (resume) resume_();
  return r;
}

bool Stream::ShouldPauseReads() const {
  base::MutexLock l(&mu_);
  return queue_.size() >= options_->max_stream_responses;
}

bool Stream::HasQueued() const {
  base::MutexLock l(&mu_);
  return !queue_.empty();
}

size_t Stream::queued() const {
  base::MutexLock l(&mu_);
  return queue_.size();
}

size_t Stream::queued_bytes() const {
  base::MutexLock l(&mu_);
  return queued_bytes_;
}

Response* Stream::OpenResponseLocked(int64_t watch_id, size_t extra_bytes) {
  auto it = open_.find(watch_id);
  if (it == open_.end()) return nullptr;
  if (it->second.seq < popped_) {  // the consumer has it already
    open_.erase(it);
    return nullptr;
  }
  // Never past the catch-up path's response bound either (half the stream's bound).
  const size_t max_bytes = std::min(options_->max_coalesced_bytes, options_->max_stream_bytes / 2);
  if (it->second.bytes + extra_bytes > max_bytes) return nullptr;
  it->second.bytes += extra_bytes;
  queued_bytes_ += extra_bytes;
  return &queue_[it->second.seq - popped_];
}

void Stream::TrackLocked(const Response& r) {
  const uint64_t seq = popped_ + queue_.size() - 1;
  if (r.watch_id == kNoWatchId) {
    // A stream-wide progress response claims every event up to its revision was sent before
    // it: nothing queued before it may grow past it.
    open_.clear();
  } else if (IsEventResponse(r)) {
    open_[r.watch_id] = Open{seq, CostOf(r)};
  } else {
    // created / canceled / the watcher's own progress: later events go after it.
    open_.erase(r.watch_id);
  }
}

bool Stream::PushBackLocked(Response r) {
  queued_bytes_ += CostOf(r);
  queue_.push_back(std::move(r));
  TrackLocked(queue_.back());
  if (!idle_) return false;
  idle_ = false;
  return true;
}

bool Stream::Push(Response r) {
  base::MutexLock l(&mu_);
  if (IsEventResponse(r)) {
    size_t extra = 0;
    for (const auto& e : r.events) extra += CostOfEvent(*e);
    if (Response* open = OpenResponseLocked(r.watch_id, extra)) {
      // Same watcher, later revisions (its cursor only moves forward): order is kept.
      open->events.insert(open->events.end(), std::make_move_iterator(r.events.begin()),
                          std::make_move_iterator(r.events.end()));
      open->revision = r.revision;
      return false;  // the queue is not empty, so the consumer is not idle
    }
  }
  return PushBackLocked(std::move(r));
}

Stream::Pushed Stream::PushEvents(const Watcher& w, int64_t rev,
                                  const std::shared_ptr<const mvcc::Event>* events, size_t count) {
  base::MutexLock l(&mu_);
  if (queued_bytes_ >= options_->max_stream_bytes) return Pushed::kFull;
  size_t extra = 0;
  for (size_t i = 0; i < count; ++i) extra += CostOfEvent(*events[i]);
  if (Response* open = OpenResponseLocked(w.id, extra)) {
    open->events.insert(open->events.end(), events, events + count);
    open->revision = Revision(rev);
    return Pushed::kQueued;
  }
  Response r;
  r.watch_id = w.id;
  r.revision = Revision(rev);
  r.prev_kv = w.prev_kv;
  r.fragment = w.fragment;
  r.events.assign(events, events + count);
  return PushBackLocked(std::move(r)) ? Pushed::kQueuedWake : Pushed::kQueued;
}

bool Stream::HasRoom() const {
  base::MutexLock l(&mu_);
  return queued_bytes_ < options_->max_stream_bytes;
}

bool Stream::HasRoomFor(size_t bytes) const {
  base::MutexLock l(&mu_);
  return queue_.empty() || queued_bytes_ + bytes <= options_->max_stream_bytes;
}

bool Stream::HasRoomToResume() const {
  base::MutexLock l(&mu_);
  return queued_bytes_ <= options_->max_stream_bytes / 2;
}

void Stream::Wake() {
  base::MutexLock l(&wake_mu_);
  if (!closed_ && wake_) wake_();
}

void Stream::CloseWake() {
  base::MutexLock l(&wake_mu_);
  closed_ = true;
  wake_ = nullptr;
}

}  // namespace dolmen::watch
