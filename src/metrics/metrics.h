#pragma once

// A small Prometheus metrics registry: counters, gauges and histograms, with or without labels,
// written out in the Prometheus text format 0.0.4 (docs/http.md lists every metric).
//
// Updates are lock-free (relaxed atomics), so hot paths (the driver loop, the WAL's fsync, gRPC
// handlers) pay one or two atomic adds per update. A labelled family finds its child under a
// reader lock; hot callers look a child up once and keep the pointer (children live as long as
// the registry and never move).
//
// Metrics are registered once, at first use, in a process-wide registry (DefaultRegistry), as
// etcd registers them with Prometheus's default registerer: every member in a process shares
// them, as every etcd server in a Go process does.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace dolmen::metrics {

// A double held in an atomic word: Add is a compare-and-swap loop (uncontended, one CAS).
class AtomicDouble {
 public:
  void Set(double v) { bits_.store(ToBits(v), std::memory_order_relaxed); }
  void Add(double v);
  double Get() const { return FromBits(bits_.load(std::memory_order_relaxed)); }

 private:
  static uint64_t ToBits(double v);
  static double FromBits(uint64_t b);
  std::atomic<uint64_t> bits_{0};
};

// Only goes up (Prometheus "counter"). Whole-number counts take the integer path.
class Counter {
 public:
  void Inc() { count_.fetch_add(1, std::memory_order_relaxed); }
  void Add(uint64_t n) { count_.fetch_add(n, std::memory_order_relaxed); }
  void AddDouble(double v) { fraction_.Add(v); }
  double Get() const {
    return static_cast<double>(count_.load(std::memory_order_relaxed)) + fraction_.Get();
  }

 private:
  std::atomic<uint64_t> count_{0};
  AtomicDouble fraction_;
};

// Goes up and down (Prometheus "gauge").
class Gauge {
 public:
  void Set(double v) { value_.Set(v); }
  void Add(double v) { value_.Add(v); }
  double Get() const { return value_.Get(); }

 private:
  AtomicDouble value_;
};

// Observations counted into fixed upper bounds (Prometheus "histogram"). `bounds` ascend; the
// +Inf bucket is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (not cumulative), +Inf last
  AtomicDouble sum_;
};

// prometheus.ExponentialBuckets(start, factor, count).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

enum class Type { kCounter, kGauge, kHistogram };

// A metric name with a fixed list of label names; each distinct list of values is one child.
template <typename T>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}
  // The child for `values` (as many as label names), created on first use.
  T& With(const std::vector<std::string>& values) {
    {
      std::shared_lock lock(mu_);
      auto it = children_.find(values);
      if (it != children_.end()) return *it->second;
    }
    std::unique_lock lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls `f(values, child)` for every child, in label order.
  template <typename F>
  void ForEach(F f) const {
    std::shared_lock lock(mu_);
    for (const auto& [values, child] : children_) f(values, *child);
  }

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// One labelled sample a collector reports at scrape time.
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// Owns every metric; registration takes a lock, updates do not. Registering a name twice
// returns the first registration (so two members in one process share it); registering it
// with another type or labels is a programming error (CHECK).
class Registry {
 public:
  Counter& AddCounter(const std::string& name, const std::string& help);
  Gauge& AddGauge(const std::string& name, const std::string& help);
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds);
  CounterFamily& AddCounterFamily(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels);
  GaugeFamily& AddGaugeFamily(const std::string& name, const std::string& help,
                              std::vector<std::string> labels);
  HistogramFamily& AddHistogramFamily(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels, std::vector<double> bounds);
  // A metric read at scrape time (Prometheus's GaugeFunc/CounterFunc, or a collector with
  // labels). `owner` names who registered it, so RemoveCollectors(owner) can drop them when
  // that object goes away; a name registered again replaces the previous function.
  void AddCollector(const std::string& name, const std::string& help, Type type,
                    std::function<std::vector<Sample>()> collect, const void* owner);
  void AddGaugeFunc(const std::string& name, const std::string& help, std::function<double()> f,
                    const void* owner);
  void RemoveCollectors(const void* owner);

  // Every metric in the text format 0.0.4, sorted by name.
  std::string Expose() const;

 private:
  struct Entry {
    Type type;
    std::string help;
    std::vector<std::string> label_names;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::unique_ptr<CounterFamily> counters;
    std::unique_ptr<GaugeFamily> gauges;
    std::unique_ptr<HistogramFamily> histograms;
    std::function<std::vector<Sample>()> collect;
    const void* owner = nullptr;
  };
  Entry& Register(const std::string& name, const std::string& help, Type type,
                  const std::vector<std::string>& labels, bool* created);

  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// The process-wide registry that dolmen's layers register into and /metrics exposes.
Registry& DefaultRegistry();

// Prometheus's escaping of a label value (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& v);
// Go's strconv.FormatFloat(v, 'g', -1, 64) as Prometheus writes sample values (+Inf, NaN).
std::string FormatValue(double v);

}  // namespace dolmen::metrics
