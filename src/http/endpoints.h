#pragma once

// The HTTP endpoints of a member, with etcd 3.5.13's paths, status codes and bodies
// (docs/http.md): /health, /livez, /readyz (and /livez/<check>, /readyz/<check>), /version and
// /metrics. The client port serves all of them; --listen-metrics-urls serves all but /version,
// as etcd's metrics listener does.

#include <string>

#include "http/health.h"
#include "http/http_server.h"
#include "metrics/metrics.h"

namespace dolmen::http {

struct EndpointOptions {
  bool version = true;          // /version (client URLs only)
  std::string server_version;   // "3.5.13"
  std::string cluster_version;  // "3.5.0"
};

// Registers the health counters and gauges, so they are exposed before the first probe.
void RegisterEndpointMetrics();

// The handler for one kind of listener. `checks` and `registry` must outlive it.
Handler MakeEndpoints(HealthChecks* checks, metrics::Registry* registry, EndpointOptions options);

}  // namespace dolmen::http
