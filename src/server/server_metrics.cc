#include "server/server_metrics.h"

namespace dolmen::server::metric {

using metrics::DefaultRegistry;

metrics::Counter& LeaderChanges() {
  static metrics::Counter& m = DefaultRegistry().AddCounter("etcd_server_leader_changes_seen_total",
                                                            "The number of leader changes seen.");
  return m;
}

metrics::Counter& ProposalsFailed() {
  static metrics::Counter& m = DefaultRegistry().AddCounter(
      "etcd_server_proposals_failed_total", "The total number of failed proposals seen.");
  return m;
}

metrics::Gauge& ProposalsPending() {
  static metrics::Gauge& m = DefaultRegistry().AddGauge(
      "etcd_server_proposals_pending", "The current number of pending proposals to commit.");
  return m;
}

metrics::Histogram& BackendCommitSeconds() {
  static metrics::Histogram& m =
      DefaultRegistry().AddHistogram("etcd_disk_backend_commit_duration_seconds",
                                     "The latency distributions of commit called by backend.",
                                     metrics::ExponentialBuckets(0.001, 2, 14));
  return m;
}

metrics::Counter& SlowReadIndexes() {
  static metrics::Counter& m = DefaultRegistry().AddCounter(
      "etcd_server_slow_read_indexes_total",
      "The total number of pending read indexes not in sync with leader's or timed out read "
      "index requests.");
  return m;
}

metrics::Counter& ReadIndexesFailed() {
  static metrics::Counter& m = DefaultRegistry().AddCounter(
      "etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen.");
  return m;
}

metrics::Histogram& ApplyBatchEntries() {
  static metrics::Histogram& m = DefaultRegistry().AddHistogram(
      "dolmen_server_apply_batch_entries",
      "The number of committed entries the driver applied in one Ready (group commit size).",
      metrics::ExponentialBuckets(1, 2, 14));
  return m;
}

void RegisterAll() {
  LeaderChanges();
  ProposalsFailed();
  ProposalsPending();
  BackendCommitSeconds();
  SlowReadIndexes();
  ReadIndexesFailed();
  ApplyBatchEntries();
}

}  // namespace dolmen::server::metric
