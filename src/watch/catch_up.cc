#include "watch/catch_up.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "watch/watcher_index.h"

namespace dolmen::watch {

CatchUp::CatchUp(WatcherGroups* groups, const History* history, const Clock* clock,
                 const HubOptions* options, std::function<void()> synced_some)
    : groups_(groups),
      history_(history),
      clock_(clock),
      options_(options),
      synced_some_(std::move(synced_some)) {}

CatchUp::~CatchUp() { Stop(); }

void CatchUp::Start() {
  CHECK(!thread_.joinable()) << "CatchUp::Start twice";
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dolmen-watch-cu");  // for top -H and perf
    Run();
  });
}

void CatchUp::Stop() {
  {
    base::MutexLock l(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void CatchUp::Kick() {
  {
    base::MutexLock l(&mu_);
    kick_ = true;
  }
  cv_.Signal();
}

void CatchUp::Run() {
  while (WaitForWork()) {
    while (Round()) {
      base::MutexLock l(&mu_);
      if (stop_) return;
    }
  }
}

bool CatchUp::WaitForWork() {
  base::MutexLock l(&mu_);
  while (!stop_ && !kick_) {
    if (!retry_pending_) {
      cv_.Wait(&mu_);
      continue;
    }
    // The retry time is on the hub's clock; the sleep is real time (a test that moves a
    // manual clock kicks us through Hub::Wake).
    const auto left = retry_at_ - clock_->Now();
    if (left <= std::chrono::steady_clock::duration::zero()) break;
    cv_.WaitUntil(&mu_, std::chrono::steady_clock::now() + left);
  }
  if (stop_) return false;
  kick_ = false;
  retry_pending_ = false;
  return true;
}

bool CatchUp::Round() {
  Plan plan;
  Wakes wakes;
  bool synced = false;
  {
    base::MutexLock l(&groups_->mu);
    const size_t before = groups_->unsynced.size();
    plan = Choose();
    // Watchers synced (or cancelled) without a read.
    synced = groups_->unsynced.size() < before;
    wakes = groups_->TakeWakes();
  }
  FlushWakes(std::move(wakes));
  bool more = plan.capped;
  if (!plan.watchers.empty()) {
    // The store read: no hub lock held.
    auto read = history_->Events(Revision(plan.from), Revision(plan.to), options_->catch_up_events);
    if (!read.ok()) {
      if (read.status().code() == Code::kCompacted) {
        more = true;  // a compaction raced with Choose: the next round cancels the watchers
      } else {
        // Not at once (the store is failing): at the retry time, or at the next kick.
        more = false;
        base::MutexLock l(&mu_);
        retry_pending_ = true;
        retry_at_ = clock_->Now() + options_->catch_up_retry;
      }
    } else {
      const int64_t last = read.value().next.value() - 1;
      Matched matched = Match(plan, std::move(read.value().events), last);
      more = more || last < plan.to || matched.cut;
      {
        base::MutexLock l(&groups_->mu);
        const Applied applied = Apply(plan, std::move(matched));
        synced = synced || applied.synced;
        // Writes went on during the read: watchers still behind `notified` go again at once
        // (those whose stream filled up wait for their consumer instead).
        more = more || applied.behind;
        wakes = groups_->TakeWakes();
      }
      FlushWakes(std::move(wakes));
    }
  }
  if (synced) synced_some_();
  return more;
}

CatchUp::Plan CatchUp::Choose() {
  Plan plan;
  const int64_t compacted = history_->CompactRevision().value();
  auto& unsynced = groups_->unsynced;
  const size_t n = unsynced.size();
  for (size_t seen = 0; seen < n; ++seen) {
    if (plan.watchers.size() >= options_->catch_up_watchers) {
      plan.capped = true;
      break;
    }
    auto it = unsynced.upper_bound(cursor_);
    if (it == unsynced.end()) it = unsynced.begin();  // wrap around
    if (it == unsynced.end()) break;
    Watcher* w = it->second;
    cursor_ = w->serial;
    if (!w->stream->HasRoomToResume()) continue;
    if (w->next < compacted) {
      // etcd: the watcher learns the compact revision and is gone (header revision 0).
      Response r;
      r.watch_id = w->id;
      r.revision = Revision(0);
      r.compact_revision = Revision(compacted);
      r.canceled = true;
      Stream* s = w->stream;
      groups_->Remove(w);
      groups_->Enqueue(s, std::move(r));
      continue;
    }
    if (w->next > groups_->notified) {
      // Everything from its cursor on is still to come through the inbox.
      groups_->MakeSynced(w);
      continue;
    }
    plan.watchers.push_back(*w);
  }
  if (plan.watchers.empty()) return plan;
  plan.from = plan.watchers[0].next;
  for (const Watcher& w : plan.watchers) plan.from = std::min(plan.from, w.next);
  plan.to = history_->CurrentRevision().value();
  return plan;
}

CatchUp::Matched CatchUp::Match(const Plan& plan, std::vector<mvcc::Event> events,
                                int64_t last) const {
  const size_t n = plan.watchers.size();
  // The index wants mutable watchers; these copies are this round's own.
  std::vector<Watcher> copies = plan.watchers;
  WatcherIndex index;
  for (Watcher& w : copies) index.Add(&w);
  Matched out;
  out.responses.reserve(n);
  for (const Watcher& w : copies) out.responses.push_back(BaseResponse(w, last));
  out.next.assign(n, last + 1);
  std::vector<size_t> bytes(n, 0);
  std::vector<bool> cut(n, false);
  // Cut only between revisions, so a revision is never split; the rest comes next round.
  const size_t max_response_bytes = options_->max_stream_bytes / 2;
  std::vector<Watcher*> matched;
  for (mvcc::Event& e : events) {
    const int64_t rev = e.kv.mod_revision.value();
    auto shared = std::make_shared<const mvcc::Event>(std::move(e));
    matched.clear();
    index.Match(shared->kv.key, &matched);
    for (Watcher* w : matched) {
      const size_t i = static_cast<size_t>(w - copies.data());
      if (rev < w->next || !Passes(*w, *shared) || cut[i]) continue;
      Response& r = out.responses[i];
      if (bytes[i] >= max_response_bytes && r.events.back()->kv.mod_revision.value() != rev) {
        cut[i] = true;
        out.cut = true;
        out.next[i] = rev;
        r.revision = Revision(rev - 1);
        continue;
      }
      bytes[i] += CostOfEvent(*shared);
      r.events.push_back(std::move(shared));
      shared = r.events.back();
    }
  }
  for (size_t i = 0; i < n; ++i) out.next[i] = std::max(out.next[i], copies[i].next);
  return out;
}

CatchUp::Applied CatchUp::Apply(const Plan& plan, Matched matched) {
  Applied applied;
  for (size_t i = 0; i < plan.watchers.size(); ++i) {
    auto it = groups_->unsynced.find(plan.watchers[i].serial);
    if (it == groups_->unsynced.end()) continue;  // cancelled, or its stream closed
    Watcher* w = it->second;
    CHECK_EQ(w->next, plan.watchers[i].next) << "an unsynced cursor moved during catch-up";
    Response& r = matched.responses[i];
    if (!r.events.empty()) {
      // The stream may have filled up meanwhile (synced watchers of the same stream, several
      // of its watchers in this round): the watcher stays where it is and is read again once
      // the consumer drained the stream, so catch-up never takes it past its bound.
      if (!w->stream->HasRoomFor(CostOf(r))) continue;
      w->sent_since_tick = true;
      groups_->Enqueue(w->stream, std::move(r));
    }
    w->next = matched.next[i];
    // The store is never behind the inbox (notified <= current), so a watcher read up to
    // `current` at Choose is past everything the worker had delivered then; if the worker
    // delivered more during the read, the watcher stays for another round.
    if (w->next > groups_->notified) {
      groups_->MakeSynced(w);
      applied.synced = true;
    } else {
      applied.behind = true;
    }
  }
  return applied;
}

}  // namespace dolmen::watch
