#pragma once

// The watch hub's gauges, read at scrape time: etcd's etcd_debugging_mvcc_watcher_total (every
// watcher) and etcd_debugging_mvcc_slow_watcher_total (watchers catching up from storage,
// etcd's "unsynced"), and dolmen's own dolmen_watch_queued_responses (responses queued on all
// watch streams for their clients: the watch queue depth). src/watch does not count
// (it may not depend on src/metrics); this reads its counts. Registered by the constructor,
// removed by the destructor; the hub must outlive this object.

#include "metrics/metrics.h"
#include "watch/hub.h"

namespace dolmen::embed {

class WatchMetrics {
 public:
  WatchMetrics(const watch::Hub* hub, metrics::Registry* registry);
  ~WatchMetrics();
  WatchMetrics(const WatchMetrics&) = delete;
  WatchMetrics& operator=(const WatchMetrics&) = delete;

 private:
  metrics::Registry* const registry_;
};

}  // namespace dolmen::embed
