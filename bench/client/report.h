// What a run measured, printed for people and written as JSON for bench/compare.py.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "options.h"

namespace dolmen::bench {

// Errors from every client. Thread-safe: any gRPC callback thread may add one.
class ErrorLog {
 public:
  void Add(const std::string& message);
  int64_t count() const { return count_.load(); }
  std::string first() const;

 private:
  std::atomic<int64_t> count_{0};
  mutable std::mutex mu_;
  std::string first_;  // guarded by mu_; the first error explains most runs that go wrong
};

// One measured stream of operations: successful count, wall time and per-operation latency.
struct Figures {
  int64_t count = 0;
  double seconds = 0;
  std::vector<int64_t> latencies_ns;  // unsorted; Finish sorts

  void Finish();
  double PerSecond() const { return seconds > 0 ? static_cast<double>(count) / seconds : 0; }
  // q in [0, 1]; milliseconds; 0 when nothing was measured.
  double PercentileMs(double q) const;
};

struct Report {
  std::string workload;
  Figures requests;                          // the workload's own requests
  std::map<std::string, Figures> secondary;  // e.g. "events" for watch delivery
  std::map<std::string, double> extra;       // e.g. "conflicts" for txn-put
  ErrorLog errors;
};

// Prints why and exits with status 3 without running destructors: used when gRPC callbacks
// may still touch objects that a normal return would destroy.
[[noreturn]] void AbandonRun(const std::string& why);

void PrintReport(const Options& options, const Report& report);
// Returns false (with a message on stderr) if the file cannot be written.
bool WriteJson(const Options& options, const Report& report, const std::string& path);

}  // namespace dolmen::bench
