#pragma once

#include "metrics/metrics.h"

namespace dolmen::metrics {

// Registers Prometheus's standard process_* metrics (as the Go client's process collector
// names them), read from /proc/self at scrape time: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds. Idempotent.
void RegisterProcessMetrics(Registry& registry);

}  // namespace dolmen::metrics
