// Catch-up: unsynced watchers (created with a past start revision, or victims of a full
// stream, or behind a dropped inbox) read the revisions they missed from the store, in bounded
// rounds, on a thread of their own, until they reach what synced delivery has notified and
// join the synced group. etcd 3.4's syncWatchers, with one difference: the store read happens
// with no hub lock held, so a slow read (a long history, a cold disk) delays only the watchers
// of its round, never synced delivery, the apply thread, or creates and cancels on any stream.
//
// A round:
//  1. Choose (under WatcherGroups::mu): up to catch_up_watchers unsynced watchers whose stream
//     has room, oldest first and round-robin; cancels those whose next revision was compacted;
//     syncs at once those already past `notified`. Copies each chosen watcher (range, filters,
//     cursor): the live one may be cancelled during the read.
//  2. Read (no lock): History::Events(min cursor, current, catch_up_events) once for all.
//  3. Match (no lock): per copy, its events from its cursor on, cut between revisions at half
//     the stream's byte bound.
//  4. Apply (under mu): for each chosen watcher still there (found by serial), queue its
//     response, move its cursor; it joins the synced group if its cursor passed `notified`.
//     Its cursor cannot have moved meanwhile: only catch-up moves unsynced cursors.
// The hand-off loses and repeats nothing for the reason in docs/watch.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "watch/groups.h"
#include "watch/history.h"
#include "watch/options.h"

namespace dolmen::watch {

class CatchUp {
 public:
  // `synced_some` runs (no lock held) after a round moved watchers to the synced group, so the
  // worker can answer progress requests that waited for them.
  CatchUp(WatcherGroups* groups, const History* history, const Clock* clock,
          const HubOptions* options, std::function<void()> synced_some);
  ~CatchUp();  // Stop()s

  void Start();
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // There may be work: a new unsynced watcher, a victim, a drained stream, the clock moved.
  void Kick() ABSL_LOCKS_EXCLUDED(mu_);
  // One round on the calling thread, for a hub whose threads never started (Hub::RunPending);
  // true if more is ready right away.
  bool RunRound() ABSL_LOCKS_EXCLUDED(groups_->mu) { return Round(); }

 private:
  struct Plan {
    std::vector<Watcher> watchers;  // copies; Watcher::serial finds the live one
    int64_t from = 0;
    int64_t to = 0;
    bool capped = false;  // eligible watchers were left for the next round
  };
  struct Matched {
    std::vector<Response> responses;  // per plan watcher; no events = nothing to send
    std::vector<int64_t> next;        // per plan watcher: its cursor after this round
    bool cut = false;                 // some response stopped at the byte bound
  };

  void Run();
  // Waits for a kick (or the retry time); false when stopping.
  bool WaitForWork() ABSL_LOCKS_EXCLUDED(mu_);
  // One round; true if more is ready right away.
  bool Round() ABSL_LOCKS_EXCLUDED(groups_->mu);
  Plan Choose() ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);
  Matched Match(const Plan& plan, std::vector<mvcc::Event> events, int64_t last) const;
  struct Applied {
    bool synced = false;  // a watcher moved to the synced group
    bool behind = false;  // a watcher advanced and is still behind `notified`
  };
  Applied Apply(const Plan& plan, Matched matched) ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_->mu);

  WatcherGroups* const groups_;
  const History* const history_;
  const Clock* const clock_;
  const HubOptions* const options_;
  const std::function<void()> synced_some_;
  // The serial after which the next round starts looking (round-robin over the unsynced group,
  // so a stream that never has room cannot starve the watchers behind it). Catch-up thread only.
  uint64_t cursor_ = 0;

  base::Mutex mu_;
  base::CondVar cv_;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // A read failed: try again at this time of the hub's clock (unless kicked before).
  bool retry_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point retry_at_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace dolmen::watch
