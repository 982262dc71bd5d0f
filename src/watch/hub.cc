#include "watch/hub.h"

#include <pthread.h>

#include <algorithm>
#include <string>
#include <utility>

#include "base/check.h"

namespace dolmen::watch {
namespace {

const Clock* NonNull(const Clock* clock) {
  CHECK(clock != nullptr) << "the hub needs the member's clock";
  return clock;
}

}  // namespace

// --- Lifecycle and the apply thread's hand-off

Hub::Hub(const mvcc::Store* store, const Clock* clock, HubOptions options)
    : Hub(std::make_unique<StoreHistory>(store), nullptr, clock, options) {}

Hub::Hub(const History* history, const Clock* clock, HubOptions options)
    : Hub(nullptr, history, clock, options) {}

Hub::Hub(std::unique_ptr<History> owned, const History* history, const Clock* clock,
         HubOptions options)
    : options_(options),
      owned_history_(std::move(owned)),
      history_(owned_history_ ? owned_history_.get() : history),
      clock_(NonNull(clock)),
      inbox_(options_.max_inbox_events),
      groups_(&inbox_, history_->CurrentRevision().value()),
      delivery_(&groups_, &options_, clock_),
      catch_up_(&groups_, history_, clock_, &options_, [this] { inbox_.Kick(); }) {}

Hub::~Hub() { Stop(); }

void Hub::Start() {
  CHECK(!started_) << "Hub::Start twice";
  started_ = true;
  catch_up_.Start();
  worker_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dolmen-watch");  // for top -H and perf
    RunWorker();
  });
}

void Hub::Stop() {
  inbox_.Stop();
  if (worker_.joinable()) worker_.join();
  catch_up_.Stop();
}

void Hub::Wake() {
  inbox_.Kick();
  catch_up_.Kick();
}

void Hub::Notify(std::vector<mvcc::Event> events, Revision revision) {
  inbox_.Push(std::move(events), revision);
}

void Hub::Restore(Revision revision) { inbox_.DropThrough(revision.value()); }

// --- The worker

void Hub::RunWorker() {
  for (;;) {
    Inbox::Work work = inbox_.Take(delivery_.next_tick() - clock_->Now());
    if (work.stop) return;
    Delivery::Outcome out = delivery_.Process(std::move(work));
    FlushWakes(std::move(out.wakes));
    if (out.demoted) catch_up_.Kick();
  }
}

void Hub::RunPending() {
  CHECK(!started_) << "Hub::RunPending on a hub whose threads run";
  // Each pass does bounded work (an inbox's worth, catch-up rounds of bounded size); a hub with
  // work left after this many passes has a consumer that never drains its stream.
  constexpr int kMaxPasses = 1000;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    Inbox::Work work = inbox_.Take(std::chrono::nanoseconds(0));
    const bool had_work = !work.batches.empty() || work.dropped_through > 0;
    Delivery::Outcome out = delivery_.Process(std::move(work));
    FlushWakes(std::move(out.wakes));
    bool caught_up = false;
    for (int round = 0; round < kMaxPasses && catch_up_.RunRound(); ++round) caught_up = true;
    if (!had_work && !out.demoted && !caught_up) break;
  }
  // Watchers the last catch-up round synced: progress requests waiting for them.
  FlushWakes(delivery_.Process(inbox_.Take(std::chrono::nanoseconds(0))).wakes);
}

// --- Stream users

std::shared_ptr<Stream> Hub::OpenStream(std::function<void()> wake) {
  auto s = std::make_shared<Stream>(&options_, std::move(wake), [this] { catch_up_.Kick(); });
  base::MutexLock l(&groups_.mu);
  groups_.streams.emplace(s.get(), s);
  return s;
}

void Hub::CloseStream(const std::shared_ptr<Stream>& stream) {
  {
    base::MutexLock l(&groups_.mu);
    auto& watchers = stream->registry.watchers;
    while (!watchers.empty()) groups_.Remove(watchers.begin()->second.get());
    groups_.progress_requests.erase(stream.get());
    groups_.streams.erase(stream.get());
  }
  stream->CloseWake();
}

void Hub::Refuse(Stream* s, const Status& why) {
  Response r;
  r.created = true;
  r.canceled = true;
  r.watch_id = kNoWatchId;
  r.revision = history_->CurrentRevision();
  r.cancel_reason = why.message();
  groups_.Enqueue(s, std::move(r));
}

void Hub::Watch(Stream* s, const WatchOptions& options) {
  Wakes wakes;
  bool kick_worker = false;
  bool kick_catch_up = false;
  {
    base::MutexLock l(&groups_.mu);
    const int64_t current = history_->CurrentRevision().value();
    auto range = MakeKeyRange(options.key, options.range_end);
    Stream::Registry& reg = s->registry;
    int64_t id = options.watch_id;
    if (range.ok() && id == 0) {
      while (reg.watchers.count(reg.next_id) > 0) ++reg.next_id;
      id = reg.next_id++;
    }
    if (!range.ok()) {
      Refuse(s, range.status());
    } else if (reg.watchers.count(id) > 0) {
      Refuse(s,
             Status(Code::kAlreadyExists, "mvcc: duplicate watch ID provided on the WatchStream"));
    } else if (groups_.watchers >= options_.max_watchers) {
      Refuse(s, Status(Code::kResourceExhausted, "watch: too many watchers on this member (limit " +
                                                     std::to_string(options_.max_watchers) + ")"));
    } else {
      auto w = std::make_unique<Watcher>();
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
      Response created;
      created.created = true;
      created.revision = Revision(current);
      created.watch_id = id;
      created.prev_kv = w->prev_kv;
      created.fragment = w->fragment;
      // The created response goes first: every event for the watcher is queued after it.
      groups_.Enqueue(s, std::move(created));
      // As etcd: a watcher with any history to replay (start <= current) goes through
      // catch-up, which sends that history in one response and cancels a compacted start;
      // only a watcher starting in the future joins the synced group at once.
      const bool in_sync = w->next > current;
      groups_.Add(std::move(w), in_sync);
      kick_catch_up = !in_sync;
      // Batches dropped while no one watched may hold this watcher's first events.
      kick_worker = inbox_.WatcherAdded();
    }
    wakes = groups_.TakeWakes();
  }
  if (kick_worker) inbox_.Kick();
  if (kick_catch_up) catch_up_.Kick();
  FlushWakes(std::move(wakes));
}

void Hub::Cancel(Stream* s, int64_t watch_id) {
  Wakes wakes;
  {
    base::MutexLock l(&groups_.mu);
    auto it = s->registry.watchers.find(watch_id);
    if (it == s->registry.watchers.end()) return;  // etcd ignores an unknown id
    groups_.Remove(it->second.get());
    Response r;
    r.watch_id = watch_id;
    r.canceled = true;
    r.revision = history_->CurrentRevision();
    groups_.Enqueue(s, std::move(r));
    wakes = groups_.TakeWakes();
  }
  FlushWakes(std::move(wakes));
}

void Hub::RequestProgress(Stream* s) {
  {
    base::MutexLock l(&groups_.mu);
    groups_.progress_requests.insert(s);
  }
  // The worker answers after draining the inbox, so the revision is as fresh as it can be.
  inbox_.Kick();
}

size_t Hub::synced_count() const {
  base::MutexLock l(&groups_.mu);
  return groups_.synced.size();
}

size_t Hub::unsynced_count() const {
  base::MutexLock l(&groups_.mu);
  return groups_.unsynced.size();
}

size_t Hub::queued_responses() const {
  base::MutexLock l(&groups_.mu);
  size_t n = 0;
  for (const auto& [raw, stream] : groups_.streams) n += stream->queued();
  return n;
}

}  // namespace dolmen::watch
