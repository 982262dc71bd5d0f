// The hub's bounds and periods. Every queue the hub keeps has one (docs/watch.md, Bounds).
#pragma once

#include <chrono>
#include <cstddef>

namespace dolmen::watch {

struct HubOptions {
  // A stream whose queued responses exceed this stops receiving events: its watchers become
  // unsynced (victims) and catch up from the store once the consumer drained half of it.
  size_t max_stream_bytes = 8 << 20;
  // Control responses (created, canceled, progress) are queued regardless; beyond this many
  // queued responses the consumer should stop reading requests (Stream::ShouldPauseReads).
  size_t max_stream_responses = 1 << 16;
  // Applied events waiting for the worker (a batch counts one more than its events, so batches
  // without events are bounded too). Beyond this the inbox is dropped and every synced watcher
  // catches up from the store instead.
  size_t max_inbox_events = 1 << 17;
  // Watchers on the whole hub, synced or waiting for catch-up. A create beyond it is refused
  // (created + canceled with a cancel reason), so the unsynced set has a bound too.
  size_t max_watchers = 1 << 20;
  // Events read from the store per catch-up round, and watchers served per round.
  size_t catch_up_events = 1000;
  size_t catch_up_watchers = 512;
  // Period of progress notifications for idle watchers that asked for them (etcd's
  // --experimental-watch-progress-notify-interval, default 10 minutes). On the hub's clock.
  std::chrono::milliseconds progress_interval = std::chrono::minutes(10);
  // Events for one watcher that the consumer has not taken yet are appended to that watcher's
  // last queued response while it stays under this many bytes (CostOf), so a consumer that
  // falls behind gets many revisions per response instead of one (docs/watch.md, Coalescing).
  // Well under gRPC's default 4 MiB receive limit of clients that keep it (python-etcd3).
  size_t max_coalesced_bytes = 256 << 10;
  // On the hub's clock: when a catch-up read failed (other than kCompacted), the next attempt.
  std::chrono::milliseconds catch_up_retry = std::chrono::milliseconds(100);
};

}  // namespace dolmen::watch
