// The watch hub: etcd's watchableStore for one member. Design, guarantees and bounds:
// docs/watch.md.
//
// Threads.
//  - The apply thread calls Notify() with each applied batch. Notify only appends to a bounded
//    inbox under a short mutex: it never waits for a consumer, a store read or a stream.
//  - One worker thread (Start/Stop) owns delivery: it drains the inbox into the streams of
//    synced watchers, catches unsynced watchers up from mvcc::Store::Events, and emits progress
//    notifications. All watcher state is guarded by mu_.
//  - Stream users (the gRPC service) call OpenStream/Watch/Cancel/RequestProgress/CloseStream
//    from any thread, and Stream::Pop from whichever thread writes to the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/ids.h"
#include "base/mutex.h"
#include "mvcc/kv.h"
#include "mvcc/store.h"
#include "watch/watcher.h"
#include "watch/watcher_index.h"

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
  // The watcher's options, so the consumer can fill prev_kv and split oversized responses.
  bool prev_kv = false;
  bool fragment = false;
  std::vector<std::shared_ptr<const mvcc::Event>> events;  // revision order, shared by watchers
};

// etcd's WatchCreateRequest, before defaults are applied.
struct WatchOptions {
  int64_t watch_id = 0;  // 0 = the hub picks the lowest unused id >= its counter (etcd's rule)
  std::string key;
  std::string range_end;
  Revision start_revision{0};  // <= 0 = current + 1
  bool filter_put = false;
  bool filter_delete = false;
  bool prev_kv = false;
  bool progress_notify = false;
  bool fragment = false;
};

struct HubOptions {
  // A stream whose queued responses exceed this stops receiving events: its watchers become
  // unsynced (victims) and catch up from the store once the consumer drained half of it.
  size_t max_stream_bytes = 8 << 20;
  // Control responses (created, canceled, progress) are queued regardless; beyond this many
  // queued responses the consumer should stop reading requests (Stream::ShouldPauseReads).
  size_t max_stream_responses = 1 << 16;
  // Applied events waiting for the worker. Beyond this the inbox is dropped and every synced
  // watcher catches up from the store instead.
  size_t max_inbox_events = 1 << 17;
  // Events read from the store per catch-up round, and watchers served per round.
  size_t catch_up_events = 1000;
  size_t catch_up_watchers = 512;
  // Period of progress notifications for idle watchers that asked for them (etcd's
  // --experimental-watch-progress-notify-interval, default 10 minutes).
  std::chrono::milliseconds progress_interval = std::chrono::minutes(10);
  // Events for one watcher that the consumer has not taken yet are appended to that watcher's
  // last queued response while it stays under this many bytes (CostOf), so a consumer that
  // falls behind gets many revisions per response instead of one (docs/watch.md, Coalescing).
  // Well under gRPC's default 4 MiB receive limit of clients that keep it (python-etcd3).
  size_t max_coalesced_bytes = 256 << 10;
  // Backstop for retrying catch-up when nothing else wakes the worker.
  std::chrono::milliseconds catch_up_retry = std::chrono::milliseconds(100);
};

class Hub;

// The hub's side of one client stream: the watchers created on it and its bounded queue of
// responses. Created by Hub::OpenStream; the consumer pops responses in order.
class Stream {
 public:
  // The next response, or nullopt when the queue is empty; after nullopt the stream's wake
  // callback runs (on some hub thread, no hub lock held) as soon as a response is queued.
  std::optional<Response> Pop();
  // True while so many responses are queued that the consumer should stop reading requests
  // (each request can queue a control response); the wake callback runs when it clears.
  bool ShouldPauseReads() const;
  // True if Pop would return a response now (only the consumer pops, so it stays true).
  bool HasQueued() const;

 private:
  friend class Hub;
  Stream(Hub* hub, std::function<void()> wake) : hub_(hub), wake_(std::move(wake)) {}
  // Queues `r`; returns true if the consumer must be woken. An event response is appended to
  // its watcher's open response if there is one (see Coalesce). Caller holds Hub::mu_.
  bool Push(Response r);
  enum class Pushed { kQueued, kQueuedWake, kFull };
  // The synced path's push: the events of one revision `rev` for `w`, without building a
  // Response when they can join the watcher's open one. kFull (nothing queued) when the stream
  // is at max_stream_bytes. Caller holds Hub::mu_.
  Pushed PushEvents(const Watcher& w, int64_t rev, const std::shared_ptr<const mvcc::Event>* events,
                    size_t count);
  // Caller holds mu_ (the stream's). The queued response `r` may be extended in place.
  Response* OpenResponseLocked(int64_t watch_id, size_t extra_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bookkeeping after queueing `r` at the back: which response later events may join.
  void TrackLocked(const Response& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PushBackLocked(Response r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasRoom() const ABSL_LOCKS_EXCLUDED(mu_);          // below max_stream_bytes
  bool HasRoomToResume() const ABSL_LOCKS_EXCLUDED(mu_);  // below half of it
  void Wake() ABSL_LOCKS_EXCLUDED(wake_mu_);
  void CloseWake() ABSL_LOCKS_EXCLUDED(wake_mu_);

  Hub* const hub_;

  // Guarded by Hub::mu_ (not annotated: Hub is incomplete here).
  std::map<int64_t, std::unique_ptr<Watcher>> watchers_;
  int64_t next_id_ = 0;
  size_t unsynced_ = 0;
  bool progress_requested_ = false;

  // The queue; mu_ nests inside Hub::mu_.
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
  bool pause_reported_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> has_victims_{false};

  base::Mutex wake_mu_;  // orders wakes against CloseWake
  std::function<void()> wake_ ABSL_GUARDED_BY(wake_mu_);
  bool closed_ ABSL_GUARDED_BY(wake_mu_) = false;
};

class Hub {
 public:
  Hub(const mvcc::Store* store, HubOptions options);
  ~Hub();  // Stop()s
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Starts the worker. Must precede the first Notify that should reach watchers.
  void Start();
  void Stop();

  // Apply thread: the changes of one applied batch in revision order, and the store revision
  // after it. Never blocks on consumers.
  void Notify(std::vector<mvcc::Event> events, Revision revision);
  // Apply thread: the store was replaced by a snapshot from the leader and is now at
  // `revision`. No events describe the jump, so every synced watcher catches up from the store
  // (as after a dropped inbox); one whose next revision was compacted away is cancelled with
  // the compact revision, as etcd does.
  void Restore(Revision revision);

  // `wake` must not block for long and must not call back into the hub except Stream::Pop.
  std::shared_ptr<Stream> OpenStream(std::function<void()> wake);
  // Removes the stream's watchers; after it returns the wake callback never runs again.
  void CloseStream(const std::shared_ptr<Stream>& stream);

  // etcd's create: queues the created response (created, or created+canceled with etcd's
  // cancel_reason for an empty range or a duplicate id) before any event of the watcher.
  void Watch(Stream* stream, const WatchOptions& options);
  // etcd's cancel: a canceled response, or nothing if the id is unknown.
  void Cancel(Stream* stream, int64_t watch_id);
  // etcd's WatchProgressRequest: a header-only response with watch_id -1, queued once every
  // watcher of the stream is synced, so it never overtakes an event it claims (etcd 3.5.8+).
  void RequestProgress(Stream* stream);

  // For tests and metrics.
  size_t synced_count() const;
  size_t unsynced_count() const;
  // Responses queued on all streams and not yet taken by their consumers (the watch queue
  // depth). Takes every stream's lock in turn: for a scrape, not a hot path.
  size_t queued_responses() const;

 private:
  friend class Stream;
  struct Batch {
    std::vector<std::shared_ptr<const mvcc::Event>> events;
    int64_t revision = 0;
  };

  void Run();
  void Kick();  // wakes the worker for catch-up
  // All below: caller holds mu_.
  void ProcessBatch(const Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliverRevision(int64_t rev, const std::vector<std::shared_ptr<const mvcc::Event>>& evs,
                       size_t begin, size_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the events of revision `rev` for synced watcher `w`, or demotes it if its stream is
  // full.
  void DeliverTo(Watcher* w, int64_t rev, const std::shared_ptr<const mvcc::Event>* events,
                 size_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropInbox(int64_t dropped_through) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns true if it made progress (more rounds may help).
  bool CatchUpRound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AnswerProgressRequests() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProgressTick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeUnsynced(Watcher* w, int64_t next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeSynced(Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveWatcher(Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Enqueue(Stream* s, Response r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stream's consumer was idle: wake it after mu_ is released.
  void AddWake(Stream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Response BaseResponse(const Watcher& w, int64_t revision) const;
  bool Passes(const Watcher& w, const mvcc::Event& e) const;
  // Wakes the consumers collected by Enqueue. Caller must NOT hold mu_.
  void FlushWakes(std::vector<std::shared_ptr<Stream>> wakes) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<Stream>> TakeWakes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const mvcc::Store* const store_;
  const HubOptions options_;

  // Inbox: the apply thread's hand-off.
  base::Mutex inbox_mu_;
  base::CondVar inbox_cv_;
  std::vector<Batch> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  size_t inbox_events_ ABSL_GUARDED_BY(inbox_mu_) = 0;
  // > 0: batches up to this revision were dropped.
  int64_t dropped_through_ ABSL_GUARDED_BY(inbox_mu_) = 0;
  // Watchers of every stream, counted under inbox_mu_ (lock order: mu_, then inbox_mu_). With
  // none, Notify records a drop instead of waking the worker for every applied batch; the
  // watcher that comes next kicks the worker, which reads the dropped range from the store.
  size_t watchers_ ABSL_GUARDED_BY(inbox_mu_) = 0;
  bool kick_ ABSL_GUARDED_BY(inbox_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(inbox_mu_) = false;

  mutable base::Mutex mu_;
  std::map<Stream*, std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  WatcherIndex synced_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> unsynced_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> progress_watchers_ ABSL_GUARDED_BY(mu_);
  std::set<Stream*> progress_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Stream>> to_wake_ ABSL_GUARDED_BY(mu_);
  // DeliverRevision's, kept to reuse its capacity.
  std::vector<Watcher*> matched_scratch_ ABSL_GUARDED_BY(mu_);
  // Every revision <= notified_ has been delivered to synced watchers (or they were demoted).
  int64_t notified_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread worker_;
  bool started_ = false;
};

}  // namespace dolmen::watch
