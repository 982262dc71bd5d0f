#include "watch/hub.h"

#include <pthread.h>

#include <algorithm>
#include <unordered_map>

namespace dolmen::watch {
namespace {

// What a queued response costs against max_stream_bytes: payload plus a fixed overhead, so
// empty responses (progress, created) count too.
size_t CostOfEvent(const mvcc::Event& e) { return 48 + e.kv.key.size() + e.kv.value.size(); }

size_t CostOf(const Response& r) {
  size_t bytes = 64 + r.cancel_reason.size();
  for (const auto& e : r.events) bytes += CostOfEvent(*e);
  return bytes;
}

// A response that only carries a watcher's events: later events of the same watcher may be
// appended to it. Control responses (created, canceled, progress) never grow.
bool IsEventResponse(const Response& r) {
  return r.watch_id != kNoWatchId && !r.created && !r.canceled && r.compact_revision.value() == 0 &&
         !r.events.empty();
}

// Per-watcher responses under construction, in first-match order (deterministic output).
class ResponseSet {
 public:
  Response* Find(Watcher* w) {
    auto it = by_watcher_.find(w);
    return it == by_watcher_.end() ? nullptr : &responses_[it->second];
  }
  Response* Add(Watcher* w, Response r) {
    by_watcher_.emplace(w, responses_.size());
    order_.push_back(w);
    responses_.push_back(std::move(r));
    return &responses_.back();
  }
  size_t size() const { return order_.size(); }
  size_t IndexOf(Watcher* w) const { return by_watcher_.at(w); }
  Watcher* watcher(size_t i) const { return order_[i]; }
  Response& response(size_t i) { return responses_[i]; }

 private:
  std::unordered_map<Watcher*, size_t> by_watcher_;
  std::vector<Watcher*> order_;
  std::vector<Response> responses_;
};

}  // namespace

// --- Stream

std::optional<Response> Stream::Pop() {
  bool kick = false;
  std::optional<Response> r;
  {
    base::MutexLock l(&mu_);
    if (queue_.empty()) {
      idle_ = true;
      return std::nullopt;
    }
    const size_t resume_at = hub_->options_.max_stream_bytes / 2;
    const bool was_above = queued_bytes_ > resume_at;
    r = std::move(queue_.front());
    queue_.pop_front();
    ++popped_;  // the watcher's entry in open_, if any, is now stale; dropped when next seen
    queued_bytes_ -= CostOf(*r);
    kick = was_above && queued_bytes_ <= resume_at && has_victims_.load();
  }
  // Outside mu_: the worker may now resume this stream's unsynced watchers.
  if (kick) hub_->Kick();
  return r;
}

bool Stream::ShouldPauseReads() const {
  base::MutexLock l(&mu_);
  return queue_.size() >= hub_->options_.max_stream_responses;
}

bool Stream::HasQueued() const {
  base::MutexLock l(&mu_);
  return !queue_.empty();
}

Response* Stream::OpenResponseLocked(int64_t watch_id, size_t extra_bytes) {
  auto it = open_.find(watch_id);
  if (it == open_.end()) return nullptr;
  if (it->second.seq < popped_) {  // the consumer has it already
    open_.erase(it);
    return nullptr;
  }
  // Never past the catch-up path's response bound either (half the stream's bound).
  const size_t max_bytes =
      std::min(hub_->options_.max_coalesced_bytes, hub_->options_.max_stream_bytes / 2);
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
  if (queued_bytes_ >= hub_->options_.max_stream_bytes) return Pushed::kFull;
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
  return queued_bytes_ < hub_->options_.max_stream_bytes;
}

bool Stream::HasRoomToResume() const {
  base::MutexLock l(&mu_);
  return queued_bytes_ <= hub_->options_.max_stream_bytes / 2;
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

// --- Hub: lifecycle and the apply thread's hand-off

Hub::Hub(const mvcc::Store* store, HubOptions options)
    : store_(store), options_(options), notified_(store->CurrentRevision().value()) {}

Hub::~Hub() { Stop(); }

void Hub::Start() {
  CHECK(!started_) << "Hub::Start twice";
  started_ = true;
  worker_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dolmen-watch");  // for top -H and perf
    Run();
  });
}

void Hub::Stop() {
  {
    base::MutexLock l(&inbox_mu_);
    stop_ = true;
  }
  inbox_cv_.SignalAll();
  if (worker_.joinable()) worker_.join();
}

void Hub::Notify(std::vector<mvcc::Event> events, Revision revision) {
  {
    base::MutexLock l(&inbox_mu_);
    if (watchers_ == 0) {
      // Nobody to tell: no wake-up per write. A watcher created meanwhile had its start
      // revision from the store; it sees this drop and kicks the worker (Watch).
      dropped_through_ = std::max(dropped_through_, revision.value());
      inbox_.clear();
      inbox_events_ = 0;
      return;
    }
  }
  Batch batch;
  batch.revision = revision.value();
  batch.events.reserve(events.size());
  for (auto& e : events) batch.events.push_back(std::make_shared<const mvcc::Event>(std::move(e)));
  {
    base::MutexLock l(&inbox_mu_);
    if (inbox_events_ + batch.events.size() > options_.max_inbox_events) {
      // The worker is far behind: forget the queued changes and let every synced watcher read
      // them back from the store, rather than grow without bound or block the apply thread.
      dropped_through_ = std::max(dropped_through_, batch.revision);
      inbox_.clear();
      inbox_events_ = 0;
    } else {
      inbox_events_ += batch.events.size();
      inbox_.push_back(std::move(batch));
    }
  }
  inbox_cv_.Signal();
}

void Hub::Restore(Revision revision) {
  {
    base::MutexLock l(&inbox_mu_);
    // Queued batches precede the restore and their revisions are in the store: drop them too.
    dropped_through_ = std::max({dropped_through_, revision.value(), int64_t{1}});
    inbox_.clear();
    inbox_events_ = 0;
  }
  inbox_cv_.Signal();
}

void Hub::Kick() {
  {
    base::MutexLock l(&inbox_mu_);
    kick_ = true;
  }
  inbox_cv_.Signal();
}

// --- The worker

void Hub::Run() {
  using Clock = std::chrono::steady_clock;
  auto next_tick = Clock::now() + options_.progress_interval;
  bool catch_up_pending = false;
  for (;;) {
    std::vector<Batch> batches;
    int64_t dropped = 0;
    {
      base::MutexLock l(&inbox_mu_);
      auto deadline = next_tick;
      if (catch_up_pending) deadline = std::min(deadline, Clock::now() + options_.catch_up_retry);
      while (!stop_ && !kick_ && dropped_through_ == 0 && inbox_.empty()) {
        if (!inbox_cv_.WaitUntil(&inbox_mu_, deadline)) break;  // deadline passed
      }
      if (stop_) return;
      batches.swap(inbox_);
      inbox_events_ = 0;
      dropped = std::exchange(dropped_through_, 0);
      kick_ = false;
    }
    std::vector<std::shared_ptr<Stream>> wakes;
    bool more = false;
    {
      base::MutexLock l(&mu_);
      // Dropped batches all precede the ones still queued: Notify clears the inbox on a drop.
      if (dropped > 0) DropInbox(dropped);
      for (const Batch& b : batches) ProcessBatch(b);
      if (!unsynced_.empty()) more = CatchUpRound();
      AnswerProgressRequests();
      if (Clock::now() >= next_tick) {
        ProgressTick();
        next_tick = Clock::now() + options_.progress_interval;
      }
      catch_up_pending = !unsynced_.empty();
      wakes = TakeWakes();
    }
    FlushWakes(std::move(wakes));
    if (more) Kick();  // another round right away, after letting the inbox in
  }
}

void Hub::DropInbox(int64_t dropped_through) {
  std::vector<Watcher*> synced;
  synced.reserve(synced_.size());
  synced_.ForEach([&](Watcher* w) { synced.push_back(w); });
  for (Watcher* w : synced) MakeUnsynced(w, std::max(w->next, notified_ + 1));
  notified_ = std::max(notified_, dropped_through);
}

void Hub::ProcessBatch(const Batch& batch) {
  const auto& evs = batch.events;
  size_t begin = 0;
  while (begin < evs.size()) {
    const int64_t rev = evs[begin]->kv.mod_revision.value();
    size_t end = begin + 1;
    while (end < evs.size() && evs[end]->kv.mod_revision.value() == rev) ++end;
    CHECK_GE(rev, notified_ + 1) << "apply observer went backwards or repeated a revision";
    if (!synced_.empty()) DeliverRevision(rev, evs, begin, end);
    notified_ = rev;
    begin = end;
  }
  notified_ = std::max(notified_, batch.revision);
}

void Hub::DeliverRevision(int64_t rev, const std::vector<std::shared_ptr<const mvcc::Event>>& evs,
                          size_t begin, size_t end) {
  std::vector<Watcher*>& matched = matched_scratch_;
  if (end - begin == 1) {
    // The common case (one put or delete per revision): no grouping needed.
    matched.clear();
    synced_.Match(evs[begin]->kv.key, &matched);
    for (Watcher* w : matched) {
      if (rev < w->next || !Passes(*w, *evs[begin])) continue;
      DeliverTo(w, rev, &evs[begin], 1);
    }
    return;
  }
  ResponseSet out;
  for (size_t i = begin; i < end; ++i) {
    matched.clear();
    synced_.Match(evs[i]->kv.key, &matched);
    for (Watcher* w : matched) {
      if (rev < w->next || !Passes(*w, *evs[i])) continue;
      Response* r = out.Find(w);
      if (r == nullptr) r = out.Add(w, Response{});
      r->events.push_back(evs[i]);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const auto& events = out.response(i).events;
    DeliverTo(out.watcher(i), rev, events.data(), events.size());
  }
}

void Hub::DeliverTo(Watcher* w, int64_t rev, const std::shared_ptr<const mvcc::Event>* events,
                    size_t count) {
  switch (w->stream->PushEvents(*w, rev, events, count)) {
    case Stream::Pushed::kFull:
      // A victim: it resumes from this revision through the store once its consumer drains.
      MakeUnsynced(w, rev);
      return;
    case Stream::Pushed::kQueuedWake:
      AddWake(w->stream);
      break;
    case Stream::Pushed::kQueued:
      break;
  }
  w->next = rev + 1;
  w->sent_since_tick = true;
}

bool Hub::CatchUpRound() {
  const int64_t compacted = store_->CompactRevision().value();
  const int64_t current = store_->CurrentRevision().value();
  std::vector<Watcher*> candidates(unsynced_.begin(), unsynced_.end());
  std::vector<Watcher*> round;
  bool capped = false;  // eligible watchers left for the next round
  for (Watcher* w : candidates) {
    if (round.size() >= options_.catch_up_watchers) {
      capped = true;
      break;
    }
    if (!w->stream->HasRoomToResume()) continue;
    if (w->next < compacted) {
      // etcd: the watcher learns the compact revision and is gone (header revision 0).
      Response r;
      r.watch_id = w->id;
      r.revision = Revision(0);
      r.compact_revision = Revision(compacted);
      r.canceled = true;
      Stream* s = w->stream;
      RemoveWatcher(w);
      Enqueue(s, std::move(r));
      continue;
    }
    round.push_back(w);
  }
  if (round.empty()) return false;
  int64_t from = round[0]->next;
  for (Watcher* w : round) from = std::min(from, w->next);
  if (from > current) {
    // Waiting for future revisions only: from here on the inbox brings them.
    for (Watcher* w : round) MakeSynced(w);
    return false;
  }
  auto read = store_->Events(Revision(from), Revision(current), options_.catch_up_events);
  if (!read.ok()) {
    // kCompacted: a compaction raced with the check above; the next round cancels the
    // watchers. Anything else is retried at the backstop interval.
    return read.status().code() == Code::kCompacted;
  }
  const int64_t last = read.value().next.value() - 1;
  WatcherIndex index;
  for (Watcher* w : round) index.Add(w);
  ResponseSet out;
  std::vector<size_t> bytes;  // per response in `out`
  // Watchers whose response reached the byte bound: they continue at this revision next round
  // (cut only between revisions, so a revision is never split).
  std::unordered_map<Watcher*, int64_t> cut_at;
  const size_t max_response_bytes = options_.max_stream_bytes / 2;
  std::vector<Watcher*> matched;
  for (mvcc::Event& e : read.value().events) {
    const int64_t rev = e.kv.mod_revision.value();
    auto shared = std::make_shared<const mvcc::Event>(std::move(e));
    matched.clear();
    index.Match(shared->kv.key, &matched);
    for (Watcher* w : matched) {
      if (rev < w->next || !Passes(*w, *shared) || cut_at.count(w) > 0) continue;
      Response* r = out.Find(w);
      if (r == nullptr) {
        r = out.Add(w, BaseResponse(*w, last));
        bytes.push_back(0);
      }
      size_t& b = bytes[out.IndexOf(w)];
      if (b >= max_response_bytes && r->events.back()->kv.mod_revision.value() != rev) {
        cut_at[w] = rev;
        r->revision = Revision(rev - 1);
        continue;
      }
      b += 48 + shared->kv.key.size() + shared->kv.value.size();
      r->events.push_back(shared);
    }
  }
  for (Watcher* w : round) {
    if (Response* r = out.Find(w)) {
      // The stream may have filled up during this round (several of its watchers in it): the
      // watcher then stays where it is and is read again later.
      if (!w->stream->HasRoom()) continue;
      w->sent_since_tick = true;
      Enqueue(w->stream, std::move(*r));
    }
    auto cut = cut_at.find(w);
    w->next = std::max(w->next, cut == cut_at.end() ? last + 1 : cut->second);
    // The store is never behind the inbox (notified_ <= current), so a watcher read up to
    // `current` is always past notified_; the synced path skips revisions below its `next`.
    if (w->next > notified_) MakeSynced(w);
  }
  return last < current || capped || !cut_at.empty();
}

void Hub::AnswerProgressRequests() {
  for (auto it = progress_requests_.begin(); it != progress_requests_.end();) {
    Stream* s = *it;
    if (s->unsynced_ > 0) {
      ++it;
      continue;
    }
    Response r;
    r.watch_id = kNoWatchId;
    r.revision = Revision(notified_);
    Enqueue(s, std::move(r));
    s->progress_requested_ = false;
    it = progress_requests_.erase(it);
  }
}

void Hub::ProgressTick() {
  for (Watcher* w : progress_watchers_) {
    // etcd: only synced watchers that sent nothing during the last interval.
    if (w->synced && !w->sent_since_tick) Enqueue(w->stream, BaseResponse(*w, notified_));
    w->sent_since_tick = false;
  }
}

// --- Stream users

std::shared_ptr<Stream> Hub::OpenStream(std::function<void()> wake) {
  std::shared_ptr<Stream> s(new Stream(this, std::move(wake)));
  base::MutexLock l(&mu_);
  streams_.emplace(s.get(), s);
  return s;
}

void Hub::CloseStream(const std::shared_ptr<Stream>& stream) {
  {
    base::MutexLock l(&mu_);
    while (!stream->watchers_.empty()) RemoveWatcher(stream->watchers_.begin()->second.get());
    progress_requests_.erase(stream.get());
    streams_.erase(stream.get());
  }
  stream->CloseWake();
}

void Hub::Watch(Stream* s, const WatchOptions& options) {
  std::vector<std::shared_ptr<Stream>> wakes;
  bool kick = false;
  {
    base::MutexLock l(&mu_);
    const int64_t current = store_->CurrentRevision().value();
    Response created;
    created.created = true;
    created.revision = Revision(current);
    auto range = MakeKeyRange(options.key, options.range_end);
    int64_t id = options.watch_id;
    if (range.ok() && id == 0) {
      while (s->watchers_.count(s->next_id_) > 0) ++s->next_id_;
      id = s->next_id_++;
    }
    Status refused;
    if (!range.ok()) {
      refused = range.status();
    } else if (s->watchers_.count(id) > 0) {
      refused =
          Status(Code::kAlreadyExists, "mvcc: duplicate watch ID provided on the WatchStream");
    }
    if (!refused.ok()) {
      created.watch_id = kNoWatchId;
      created.canceled = true;
      created.cancel_reason = refused.message();
      Enqueue(s, std::move(created));
    } else {
      auto owned = std::make_unique<Watcher>();
      Watcher* w = owned.get();
      w->id = id;
      w->stream = s;
      w->range = std::move(range).value();
      w->filter_put = options.filter_put;
      w->filter_delete = options.filter_delete;
      w->prev_kv = options.prev_kv;
      w->fragment = options.fragment;
      w->progress_notify = options.progress_notify;
      // The created response counts as sent: the first progress notification comes a whole
      // interval after the create at least (etcd's ticker is per stream and starts with it, so
      // the creates a client sends together are all answered before any notification).
      w->sent_since_tick = true;
      const int64_t start = options.start_revision.value();
      w->next = start == 0 ? current + 1 : std::max<int64_t>(start, 1);
      if (start < 0) w->next = 1;  // etcd reads a negative start as "from the beginning"
      created.watch_id = id;
      created.prev_kv = w->prev_kv;
      created.fragment = w->fragment;
      // The created response goes first: every event for the watcher is queued after it.
      Enqueue(s, std::move(created));
      s->watchers_.emplace(id, std::move(owned));
      if (w->progress_notify) progress_watchers_.insert(w);
      {
        base::MutexLock inbox(&inbox_mu_);
        ++watchers_;
        // Batches dropped while no one watched may hold this watcher's first events.
        if (dropped_through_ > 0) kick = true;
      }
      // As etcd: a watcher with any history to replay (start <= current) goes through
      // catch-up, which sends that history in one response and cancels a compacted start;
      // only a watcher starting in the future joins the synced group at once.
      if (w->next > current) {
        w->synced = true;
        synced_.Add(w);
      } else {
        w->synced = false;
        unsynced_.insert(w);
        ++s->unsynced_;
        s->has_victims_.store(true);  // so draining the stream wakes the worker
        kick = true;
      }
    }
    wakes = TakeWakes();
  }
  if (kick) Kick();
  FlushWakes(std::move(wakes));
}

void Hub::Cancel(Stream* s, int64_t watch_id) {
  std::vector<std::shared_ptr<Stream>> wakes;
  {
    base::MutexLock l(&mu_);
    auto it = s->watchers_.find(watch_id);
    if (it == s->watchers_.end()) return;  // etcd ignores an unknown id
    RemoveWatcher(it->second.get());
    Response r;
    r.watch_id = watch_id;
    r.canceled = true;
    r.revision = store_->CurrentRevision();
    Enqueue(s, std::move(r));
    wakes = TakeWakes();
  }
  FlushWakes(std::move(wakes));
}

void Hub::RequestProgress(Stream* s) {
  {
    base::MutexLock l(&mu_);
    s->progress_requested_ = true;
    progress_requests_.insert(s);
  }
  // The worker answers after draining the inbox, so the revision is as fresh as it can be.
  Kick();
}

size_t Hub::synced_count() const {
  base::MutexLock l(&mu_);
  return synced_.size();
}

size_t Hub::unsynced_count() const {
  base::MutexLock l(&mu_);
  return unsynced_.size();
}

size_t Hub::queued_responses() const {
  base::MutexLock l(&mu_);
  size_t n = 0;
  for (const auto& [raw, stream] : streams_) {
    base::MutexLock sl(&stream->mu_);  // a stream's mu_ nests inside ours
    n += stream->queue_.size();
  }
  return n;
}

// --- Helpers (caller holds mu_)

void Hub::MakeUnsynced(Watcher* w, int64_t next) {
  CHECK(w->synced) << "watcher " << w->id << " already unsynced";
  synced_.Remove(w);
  w->synced = false;
  w->next = next;
  unsynced_.insert(w);
  ++w->stream->unsynced_;
  w->stream->has_victims_.store(true);
}

void Hub::MakeSynced(Watcher* w) {
  CHECK(!w->synced) << "watcher " << w->id << " already synced";
  unsynced_.erase(w);
  --w->stream->unsynced_;
  if (w->stream->unsynced_ == 0) w->stream->has_victims_.store(false);
  w->synced = true;
  synced_.Add(w);
}

void Hub::RemoveWatcher(Watcher* w) {
  Stream* s = w->stream;
  if (w->synced) {
    synced_.Remove(w);
  } else {
    unsynced_.erase(w);
    --s->unsynced_;
  }
  progress_watchers_.erase(w);
  s->watchers_.erase(w->id);  // destroys w
  base::MutexLock inbox(&inbox_mu_);
  --watchers_;
}

void Hub::Enqueue(Stream* s, Response r) {
  if (s->Push(std::move(r))) AddWake(s);
}

void Hub::AddWake(Stream* s) {
  auto it = streams_.find(s);
  CHECK(it != streams_.end()) << "response for a closed stream";
  to_wake_.push_back(it->second);
}

Response Hub::BaseResponse(const Watcher& w, int64_t revision) const {
  Response r;
  r.watch_id = w.id;
  r.revision = Revision(revision);
  r.prev_kv = w.prev_kv;
  r.fragment = w.fragment;
  return r;
}

bool Hub::Passes(const Watcher& w, const mvcc::Event& e) const {
  if (e.type == mvcc::Event::Type::kPut) return !w.filter_put;
  return !w.filter_delete;
}

std::vector<std::shared_ptr<Stream>> Hub::TakeWakes() { return std::exchange(to_wake_, {}); }

void Hub::FlushWakes(std::vector<std::shared_ptr<Stream>> wakes) {
  for (auto& s : wakes) s->Wake();
}

}  // namespace dolmen::watch
