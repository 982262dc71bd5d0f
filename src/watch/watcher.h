// One watcher's state inside the hub. Every field is guarded by WatcherGroups::mu; the hub owns
// watchers through their Stream. Catch-up copies a watcher (its range, filters and cursor) to
// match events outside that lock.
#pragma once

#include <cstdint>

#include "base/ids.h"
#include "watch/key_range.h"

namespace dolmen::watch {

class Stream;

struct Watcher {
  int64_t id = 0;
  // Hub-wide, never reused: names the watcher across an unlocked catch-up read (a pointer could
  // be freed and reused by a new watcher meanwhile), and orders the unsynced group (FIFO).
  uint64_t serial = 0;
  Stream* stream = nullptr;  // owner; outlives the watcher
  KeyRange range;
  bool filter_put = false;
  bool filter_delete = false;
  bool prev_kv = false;          // carried to responses for the service to fill
  bool fragment = false;         // likewise
  bool progress_notify = false;  // periodic progress when idle
  // Every change with revision < next has been queued to the stream (or did not match). For a
  // synced watcher the hub also skips inbox revisions below `next` (see docs/watch.md).
  int64_t next = 1;
  bool synced = false;
  bool sent_since_tick = false;  // events queued since the last progress tick
};

}  // namespace dolmen::watch
