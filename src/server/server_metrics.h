#pragma once

// The member's metrics that the driver loop updates (etcd's names: etcdserver/metrics.go and
// mvcc/backend/metrics.go in etcd 3.4). Values read at scrape time (has_leader, the applied
// index, db sizes) are collectors registered by http/member_metrics.cc instead.

#include "metrics/metrics.h"

namespace dolmen::server::metric {

metrics::Counter& LeaderChanges();           // etcd_server_leader_changes_seen_total
metrics::Counter& ProposalsFailed();         // etcd_server_proposals_failed_total
metrics::Gauge& ProposalsPending();          // etcd_server_proposals_pending
metrics::Histogram& BackendCommitSeconds();  // etcd_disk_backend_commit_duration_seconds
metrics::Counter& SlowReadIndexes();         // etcd_server_slow_read_indexes_total
metrics::Counter& ReadIndexesFailed();       // etcd_server_read_indexes_failed_total
metrics::Histogram& ApplyBatchEntries();     // dolmen_server_apply_batch_entries
metrics::Histogram& ApplySeconds();          // dolmen_server_apply_duration_seconds
metrics::Counter& SlowApplies();             // etcd_server_slow_apply_total

// Registers all of the above, so each is exposed (at 0) before its first update, as etcd's are.
void RegisterAll();

}  // namespace dolmen::server::metric
