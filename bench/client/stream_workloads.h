// watch and lease-keepalive: workloads over bidirectional streams (gRPC callback reactors).
#pragma once

#include "connections.h"
#include "options.h"
#include "report.h"

namespace dolmen::bench {

// --watchers watchers of --watch-key over --watch-streams streams, then --total puts to that
// key from --clients; reports the puts as `requests` and every delivered event as "events"
// (latency: put sent -> event received; rate: events / time from first put to last event).
void RunWatch(const Options& options, Connections* conns, Report* report);

// One lease per client, one keep-alive stream per lease; --total keep-alives in all, each
// timed from send to the reply.
void RunLeaseKeepAlive(const Options& options, Connections* conns, Report* report);

}  // namespace dolmen::bench
