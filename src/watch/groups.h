// Every watcher of the hub, by group (synced: fed from applied batches; unsynced: waiting for
// catch-up from the store), and the streams they belong to. This is the state the hub's worker
// (delivery), its catch-up thread and the stream users (create, cancel, close) share, under
// the one mutex `mu`; a stream's queue lock nests inside it. No thread blocks on I/O under
// `mu`: catch-up reads the store without it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "watch/inbox.h"
#include "watch/stream.h"
#include "watch/watcher.h"
#include "watch/watcher_index.h"

namespace dolmen::watch {

// Streams whose consumer must be woken once `mu` is released.
using Wakes = std::vector<std::shared_ptr<Stream>>;
// Runs the wake callbacks. Caller holds no hub lock.
void FlushWakes(Wakes wakes);

class WatcherGroups {
 public:
  // `inbox` counts the watchers too (so the apply thread can skip batches nobody watches).
  WatcherGroups(Inbox* inbox, int64_t notified) : notified(notified), inbox_(inbox) {}

  base::Mutex mu;
  std::map<Stream*, std::shared_ptr<Stream>> streams ABSL_GUARDED_BY(mu);
  WatcherIndex synced ABSL_GUARDED_BY(mu);
  // Bounded by HubOptions::max_watchers (every watcher is in one group). Keyed by serial, so
  // catch-up serves the oldest first and can go round them fairly.
  std::map<uint64_t, Watcher*> unsynced ABSL_GUARDED_BY(mu);
  std::set<Watcher*> progress_watchers ABSL_GUARDED_BY(mu);
  // Streams with an unanswered WatchProgressRequest (at most one entry per stream).
  std::set<Stream*> progress_requests ABSL_GUARDED_BY(mu);
  // Every revision <= notified has been delivered to synced watchers (or they were demoted).
  int64_t notified ABSL_GUARDED_BY(mu);
  size_t watchers ABSL_GUARDED_BY(mu) = 0;
  uint64_t next_serial ABSL_GUARDED_BY(mu) = 1;

  // Registers `owned` on its stream, in the synced group if `in_sync`, else unsynced.
  Watcher* Add(std::unique_ptr<Watcher> owned, bool in_sync) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A synced watcher falls behind: it continues from `next` through catch-up.
  void MakeUnsynced(Watcher* w, int64_t next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void MakeSynced(Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Unregisters and destroys `w`.
  void Remove(Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Queues `r` on `s` and remembers to wake its consumer if it was idle.
  void Enqueue(Stream* s, Response r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // `s`'s consumer was idle and now has a response: wake it after `mu` is released.
  void AddWake(Stream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Wakes TakeWakes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return std::exchange(to_wake_, {}); }

 private:
  Inbox* const inbox_;
  // At most one entry per stream between TakeWakes (a stream is added when it leaves idle).
  Wakes to_wake_ ABSL_GUARDED_BY(mu);
};

// A watcher's response header and options, without events.
Response BaseResponse(const Watcher& w, int64_t revision);
// The watcher's filters (etcd's NOPUT / NODELETE).
bool Passes(const Watcher& w, const mvcc::Event& e);

}  // namespace dolmen::watch
