// The watch hub: etcd's watchableStore for one member. It coordinates the parts in this folder:
//
//   Notify ─► Inbox ─► worker thread: Delivery (synced watchers, victims, progress)
//                                          │ victims, dropped inbox          ▲ synced again
//                                          ▼                                │
//                      catch-up thread: CatchUp (unsynced watchers: Store::Events, read with no
//                                       hub lock held)
//   both queue responses on each client's Stream, where a watcher's revisions coalesce.
//
// Design, guarantees and bounds: docs/watch.md; the folder's map: src/watch/README.md.
//
// Threads.
//  - The apply thread calls Notify() with each applied batch. Notify only appends to a bounded
//    inbox under a short mutex: it never waits for a consumer, a store read or a stream.
//  - The worker thread (dolmen-watch) drains the inbox into the streams of synced watchers and
//    emits progress notifications on the hub's clock.
//  - The catch-up thread (dolmen-watch-cu) brings unsynced watchers up to date from the store;
//    its store read holds no hub lock.
//  - Stream users (the gRPC service) call OpenStream/Watch/Cancel/RequestProgress/CloseStream
//    from any thread, and Stream::Pop from whichever thread writes to the client.
//  Watcher state is guarded by WatcherGroups::mu, held for in-memory work only.
//
// Time. The hub reads no clock of its own: the member's Clock arrives at construction (a
// ManualClock in tests). After moving a manual clock, call Wake().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "mvcc/kv.h"
#include "mvcc/store.h"
#include "watch/catch_up.h"
#include "watch/delivery.h"
#include "watch/groups.h"
#include "watch/history.h"
#include "watch/inbox.h"
#include "watch/options.h"
#include "watch/stream.h"

namespace dolmen::watch {

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

class Hub {
 public:
  // `store` and `clock` must outlive the hub.
  Hub(const mvcc::Store* store, const Clock* clock, HubOptions options = {});
  // The same on any History (tests: a store that blocks or fails on demand).
  Hub(const History* history, const Clock* clock, HubOptions options = {});
  ~Hub();  // Stop()s
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Starts the worker and the catch-up thread. Must precede the first Notify that should reach
  // watchers.
  void Start();
  void Stop();
  // The clock moved (a test's ManualClock): both threads read the time again at once instead
  // of sleeping until the wake-up they computed from the old time.
  void Wake();
  // For a hub that is never Start()ed (the whole-cluster simulator, which runs a member in one
  // thread): does on the calling thread what the worker and the catch-up thread would do, until
  // neither has work left (bounded). Applied batches reach synced watchers, unsynced ones catch
  // up from the store, progress requests of fully synced streams are answered.
  void RunPending();

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
  // cancel_reason for an empty range or a duplicate id, or ours when max_watchers is reached)
  // before any event of the watcher.
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
  Hub(std::unique_ptr<History> owned, const History* history, const Clock* clock,
      HubOptions options);
  void RunWorker();
  // A created response refused with `why`.
  void Refuse(Stream* s, const Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_.mu);

  const HubOptions options_;
  std::unique_ptr<History> owned_history_;  // when built on a store
  const History* const history_;
  const Clock* const clock_;
  Inbox inbox_;
  mutable WatcherGroups groups_;
  Delivery delivery_;  // the worker's
  CatchUp catch_up_;

  std::thread worker_;
  bool started_ = false;
};

}  // namespace dolmen::watch
