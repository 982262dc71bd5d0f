// One client stream's side of the hub: its bounded queue of responses, in which a watcher's
// pending revisions coalesce into one response (docs/watch.md, Coalescing), and the consumer's
// wake-up. Created by Hub::OpenStream; the consumer (the gRPC service) pops responses in order.
//
// Threads. The consumer calls Pop/ShouldPauseReads/HasQueued from whichever thread writes to
// the client. The hub's threads call the rest holding WatcherGroups::mu; the queue's own mu_
// nests inside it (and is the only lock Pop takes).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/ids.h"
#include "base/mutex.h"
#include "mvcc/kv.h"
#include "watch/options.h"
#include "watch/watcher.h"

namespace dolmen::watch {

// etcd's clientv3.InvalidWatchID: the watch_id of responses that belong to no watcher.
inline constexpr int64_t kNoWatchId = -1;

// One message for a stream's client, as etcd's WatchResponse without the header ids.
struct Response {
  int64_t watch_id = kNoWatchId;
  Revision revision;  // header revision: the store revision this response reflects
  bool created = false;
  bool canceled = false;
  Revision compact_revision{0};
  std::string cancel_reason;
  // The watcher's options, so the consumer can fill prev_kv and split oversized responses
  // (fragments are cut by the service, which knows the encoded size).
  bool prev_kv = false;
  bool fragment = false;
  std::vector<std::shared_ptr<const mvcc::Event>> events;  // revision order, shared by watchers
};

// What an event costs against the stream's byte bound, and what a response costs: payload plus
// a fixed overhead, so empty responses (progress, created) count too.
size_t CostOfEvent(const mvcc::Event& e);
size_t CostOf(const Response& r);

class Stream {
 public:
  // --- The consumer.

  // The next response, or nullopt when the queue is empty; after nullopt the stream's wake
  // callback runs (on some hub thread, no hub lock held) as soon as a response is queued.
  std::optional<Response> Pop() ABSL_LOCKS_EXCLUDED(mu_);
  // True while so many responses are queued that the consumer should stop reading requests
  // (each request can queue a control response); the wake callback runs when it clears.
  bool ShouldPauseReads() const ABSL_LOCKS_EXCLUDED(mu_);
  // True if Pop would return a response now (only the consumer pops, so it stays true).
  bool HasQueued() const ABSL_LOCKS_EXCLUDED(mu_);

  // --- The hub (callers hold WatcherGroups::mu unless stated otherwise).

  // `wake` tells the consumer a response is queued after it saw an empty queue; `resume` tells
  // the hub the consumer drained the queue to half its bound, or emptied it, while the stream
  // had unsynced watchers (catch-up may go on). Both run with no hub lock held.
  Stream(const HubOptions* options, std::function<void()> wake, std::function<void()> resume);

  // Queues `r`; returns true if the consumer must be woken. An event response joins its
  // watcher's open response if there is one (Coalescing).
  bool Push(Response r) ABSL_LOCKS_EXCLUDED(mu_);
  enum class Pushed { kQueued, kQueuedWake, kFull };
  // The synced path's push: the events of one revision `rev` for `w`, without building a
  // Response when they can join the watcher's open one. kFull (nothing queued) when the stream
  // is at max_stream_bytes: the watcher becomes a victim.
  Pushed PushEvents(const Watcher& w, int64_t rev, const std::shared_ptr<const mvcc::Event>* events,
                    size_t count) ABSL_LOCKS_EXCLUDED(mu_);
  bool HasRoom() const ABSL_LOCKS_EXCLUDED(mu_);          // below max_stream_bytes
  bool HasRoomToResume() const ABSL_LOCKS_EXCLUDED(mu_);  // at or below half of it
  // Whether a response costing `bytes` fits under max_stream_bytes (always, on an empty queue:
  // one revision larger than the bound must still go out).
  bool HasRoomFor(size_t bytes) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t queued() const ABSL_LOCKS_EXCLUDED(mu_);        // responses not yet popped
  size_t queued_bytes() const ABSL_LOCKS_EXCLUDED(mu_);  // their cost (CostOf)
  // Whether draining the queue should call `resume` (the stream has unsynced watchers).
  void set_has_unsynced(bool v) { has_unsynced_.store(v); }
  // Runs the wake callback unless the stream was closed. No hub lock held.
  void Wake() ABSL_LOCKS_EXCLUDED(wake_mu_);
  // After it returns the wake callback never runs again.
  void CloseWake() ABSL_LOCKS_EXCLUDED(wake_mu_);

  // The hub's records of this stream's watchers, guarded by WatcherGroups::mu (not annotated:
  // this header cannot name that lock). The stream owns its watchers.
  struct Registry {
    std::map<int64_t, std::unique_ptr<Watcher>> watchers;
    int64_t next_id = 0;  // etcd's per-stream counter for server-chosen ids
    size_t unsynced = 0;  // of `watchers`, how many are not synced
  };
  Registry registry;

 private:
  // The queued response `r` may be extended in place.
  Response* OpenResponseLocked(int64_t watch_id, size_t extra_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bookkeeping after queueing `r` at the back: which response later events may join.
  void TrackLocked(const Response& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PushBackLocked(Response r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HubOptions* const options_;

  mutable base::Mutex mu_;
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  // Responses popped so far: queue_[i] has sequence number popped_ + i.
  uint64_t popped_ ABSL_GUARDED_BY(mu_) = 0;
  // Per watcher id, the sequence number and cost of its last queued event response, while
  // later events may still be appended to it (see docs/watch.md, Coalescing).
  struct Open {
    uint64_t seq;
    size_t bytes;
  };
  std::unordered_map<int64_t, Open> open_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The consumer saw an empty queue and waits for a wake.
  bool idle_ ABSL_GUARDED_BY(mu_) = true;
  std::atomic<bool> has_unsynced_{false};

  const std::function<void()> resume_;
  base::Mutex wake_mu_;  // orders wakes against CloseWake
  std::function<void()> wake_ ABSL_GUARDED_BY(wake_mu_);
  bool closed_ ABSL_GUARDED_BY(wake_mu_) = false;
};

}  // namespace dolmen::watch
