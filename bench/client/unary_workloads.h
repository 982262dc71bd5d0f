// put, range and txn-put: closed-loop unary workloads (closed_loop.h).
#pragma once

#include "connections.h"
#include "options.h"
#include "report.h"

namespace dolmen::bench {

// Each runs --total requests over --clients (bounded by --max-seconds) and fills `report`.
void RunPut(const Options& options, Connections* conns, Report* report);
void RunRange(const Options& options, Connections* conns, Report* report);
void RunTxnPut(const Options& options, Connections* conns, Report* report);

}  // namespace dolmen::bench
