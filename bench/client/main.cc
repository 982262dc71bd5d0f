// dolmen-bench: etcd v3 API benchmark client. It speaks only the public gRPC API, so the
// same run measures dolmen and etcd alike (bench/compare.py runs it against both).
#include <cstdio>

#include "connections.h"
#include "options.h"
#include "report.h"
#include "stream_workloads.h"
#include "unary_workloads.h"

int main(int argc, char** argv) {
  using namespace dolmen::bench;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("%s", Usage().c_str());
      return 0;
    }
  }
  Options options;
  if (std::string error = ParseOptions(argc, argv, &options); !error.empty()) {
    std::fprintf(stderr, "dolmen-bench: %s\n%s", error.c_str(), Usage().c_str());
    return 2;
  }
  Connections conns(options);
  Report report;
  report.workload = options.workload;
  if (options.workload == "put") {
    RunPut(options, &conns, &report);
  } else if (options.workload == "range") {
    RunRange(options, &conns, &report);
  } else if (options.workload == "txn-put") {
    RunTxnPut(options, &conns, &report);
  } else if (options.workload == "watch") {
    RunWatch(options, &conns, &report);
  } else {
    RunLeaseKeepAlive(options, &conns, &report);
  }
  PrintReport(options, report);
  if (!options.json_out.empty() && !WriteJson(options, report, options.json_out)) return 1;
  return report.errors.count() == 0 ? 0 : 1;
}
