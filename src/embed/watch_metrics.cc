#include "embed/watch_metrics.h"

namespace dolmen::embed {

WatchMetrics::WatchMetrics(const watch::Hub* hub, metrics::Registry* registry)
    : registry_(registry) {
  registry->AddGaugeFunc(
      "etcd_debugging_mvcc_watcher_total", "Total number of watchers.",
      [hub] { return static_cast<double>(hub->synced_count() + hub->unsynced_count()); }, this);
  registry->AddGaugeFunc(
      "etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.",
      [hub] { return static_cast<double>(hub->unsynced_count()); }, this);
  registry->AddGaugeFunc(
      "dolmen_watch_queued_responses",
      "Watch responses queued for their clients on all watch streams (the watch queue depth).",
      [hub] { return static_cast<double>(hub->queued_responses()); }, this);
}

WatchMetrics::~WatchMetrics() { registry_->RemoveCollectors(this); }

}  // namespace dolmen::embed
