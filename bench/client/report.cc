#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dolmen::bench {
namespace {

constexpr std::pair<const char*, double> kPercentiles[] = {
    {"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1.0}};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "0";
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

std::string FiguresJson(const Figures& f) {
  std::string out = "{\"count\": " + std::to_string(f.count) +
                    ", \"seconds\": " + JsonNumber(f.seconds) +
                    ", \"per_second\": " + JsonNumber(f.PerSecond()) + ", \"latency_ms\": {";
  bool first = true;
  for (auto [name, q] : kPercentiles) {
    out += std::string(first ? "" : ", ") + JsonString(name) + ": " + JsonNumber(f.PercentileMs(q));
    first = false;
  }
  return out + "}}";
}

void PrintFigures(const char* label, const Figures& f) {
  std::printf("%-9s %lld in %.3f s = %.1f/s\n", label, static_cast<long long>(f.count), f.seconds,
              f.PerSecond());
  std::printf("  latency ms:");
  for (auto [name, q] : kPercentiles) std::printf(" %s %.3f", name, f.PercentileMs(q));
  std::printf("\n");
}

}  // namespace

void ErrorLog::Add(const std::string& message) {
  if (count_.fetch_add(1) == 0) {
    std::lock_guard<std::mutex> lock(mu_);
    first_ = message;
  }
}

std::string ErrorLog::first() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_;
}

void AbandonRun(const std::string& why) {
  std::fprintf(stderr, "dolmen-bench: abandoning the run: %s\n", why.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(3);
}

void Figures::Finish() { std::sort(latencies_ns.begin(), latencies_ns.end()); }

double Figures::PercentileMs(double q) const {
  if (latencies_ns.empty()) return 0;
  size_t n = latencies_ns.size();
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
  size_t index = std::min(n - 1, rank == 0 ? 0 : rank - 1);
  return static_cast<double>(latencies_ns[index]) / 1e6;
}

void PrintReport(const Options& options, const Report& report) {
  std::printf("workload %s: %d clients over %d conns to %zu endpoint(s)\n", report.workload.c_str(),
              options.clients, options.conns, options.endpoints.size());
  PrintFigures("requests", report.requests);
  for (const auto& [name, figures] : report.secondary) PrintFigures(name.c_str(), figures);
  for (const auto& [name, value] : report.extra) std::printf("%s: %g\n", name.c_str(), value);
  std::printf("errors: %lld\n", static_cast<long long>(report.errors.count()));
  if (report.errors.count() > 0) std::printf("first error: %s\n", report.errors.first().c_str());
}

bool WriteJson(const Options& options, const Report& report, const std::string& path) {
  std::string out = "{\"workload\": " + JsonString(report.workload) + ", \"endpoints\": [";
  for (size_t i = 0; i < options.endpoints.size(); ++i) {
    out += (i ? ", " : "") + JsonString(options.endpoints[i]);
  }
  out += "], \"clients\": " + std::to_string(options.clients) +
         ", \"conns\": " + std::to_string(options.conns) +
         ", \"total\": " + std::to_string(options.total) +
         ", \"consistency\": " + JsonString(options.linearizable ? "l" : "s") +
         ", \"errors\": " + std::to_string(report.errors.count()) +
         ", \"first_error\": " + JsonString(report.errors.first()) +
         ", \"requests\": " + FiguresJson(report.requests);
  for (const auto& [name, figures] : report.secondary) {
    out += ", " + JsonString(name) + ": " + FiguresJson(figures);
  }
  out += ", \"extra\": {";
  bool first = true;
  for (const auto& [name, value] : report.extra) {
    out += std::string(first ? "" : ", ") + JsonString(name) + ": " + JsonNumber(value);
    first = false;
  }
  out += "}}\n";
  std::ofstream file(path, std::ios::trunc);
  file << out;
  file.close();
  if (!file) {
    std::fprintf(stderr, "dolmen-bench: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace dolmen::bench
