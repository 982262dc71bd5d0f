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

// Each committed request's apply, on the driver thread (etcd 3.5 has a labelled
// etcd_server_apply_duration_seconds; ours is one series, with that metric's buckets).
metrics::Histogram& ApplySeconds() {
  static metrics::Histogram& m = DefaultRegistry().AddHistogram(
      "dolmen_server_apply_duration_seconds",
      "The latency distribution of applying one committed request to the state machine.",
      metrics::ExponentialBuckets(0.0001, 2, 20));
  return m;
}

metrics::Counter& SlowApplies() {
  static metrics::Counter& m = DefaultRegistry().AddCounter(
      "etcd_server_slow_apply_total",
      "The total number of slow apply requests (likely overloaded from slow disk).");
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
  ApplySeconds();
  SlowApplies();
}

}  // namespace dolmen::server::metric
