#include "metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "base/check.h"

namespace dolmen::metrics {

uint64_t AtomicDouble::ToBits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

double AtomicDouble::FromBits(uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

void AtomicDouble::Add(double v) {
  uint64_t old = bits_.load(std::memory_order_relaxed);
  while (!bits_.compare_exchange_weak(old, ToBits(FromBits(old) + v), std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
    CHECK(bounds_[i] < bounds_[i + 1]) << "histogram bounds must ascend";
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // Few buckets (at most ~20): a linear scan beats a binary search's branches.
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.Add(v);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.sum = sum_.Get();
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  b.reserve(count);
  for (int i = 0; i < count; ++i) {
    b.push_back(start);
    start *= factor;
  }
  return b;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";
  // Shortest round-trip digits, then Go's 'g' rule for shortest output: exponent form when the
  // decimal exponent is below -4 or at least 6 ("1e+06"), plain decimals otherwise.
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, sci.ptr);
  const size_t e = s.find('e');
  const int exp = std::atoi(s.c_str() + e + 1);
  if (exp < -4 || exp >= 6) return s;  // to_chars writes at least two exponent digits, as Go
  auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

namespace {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` (with `extra` appended, e.g. le="0.5"), or nothing without labels. Pairs are
// sorted by label name, as Prometheus's Go client writes them (etcd's grpc_server_handled_total
// reads {grpc_code,grpc_method,grpc_service,grpc_type}); `extra` (le) comes last, as there.
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra = "") {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    pairs.emplace_back(names[i], values[i]);
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    out += out.empty() ? "{" : ",";
    out += name + "=\"" + EscapeLabelValue(value) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "{" : ",") + extra;
  if (!out.empty()) out += "}";
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void WriteHistogram(std::string* out, const std::string& name,
                    const std::vector<std::string>& names, const std::vector<std::string>& values,
                    const Histogram& h) {
  const Histogram::Snapshot s = h.Read();
  for (size_t i = 0; i <= h.bounds().size(); ++i) {
    const std::string le =
        "le=\"" + (i < h.bounds().size() ? FormatValue(h.bounds()[i]) : std::string("+Inf")) + "\"";
    *out += name + "_bucket" + LabelText(names, values, le) + " " +
            FormatValue(static_cast<double>(s.cumulative[i])) + "\n";
  }
  *out += name + "_sum" + LabelText(names, values) + " " + FormatValue(s.sum) + "\n";
  *out += name + "_count" + LabelText(names, values) + " " +
          FormatValue(static_cast<double>(s.cumulative.back())) + "\n";
}

}  // namespace

Registry::Entry& Registry::Register(const std::string& name, const std::string& help, Type type,
                                    const std::vector<std::string>& labels, bool* created) {
  auto [it, inserted] = entries_.try_emplace(name);
  Entry& e = it->second;
  *created = inserted;
  if (inserted) {
    e.type = type;
    e.help = help;
    e.label_names = labels;
  } else {
    CHECK(e.type == type && e.label_names == labels)
        << "metric " << name << " registered twice with different types or labels";
  }
  return e;
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  bool created;
  Entry& e = Register(name, help, Type::kCounter, {}, &created);
  if (created) e.counter = std::make_unique<Counter>();
  CHECK(e.counter != nullptr) << "metric " << name << " is not a plain counter";
  return *e.counter;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  bool created;
  Entry& e = Register(name, help, Type::kGauge, {}, &created);
  if (created) e.gauge = std::make_unique<Gauge>();
  CHECK(e.gauge != nullptr) << "metric " << name << " is not a plain gauge";
  return *e.gauge;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  bool created;
  Entry& e = Register(name, help, Type::kHistogram, {}, &created);
  if (created) e.histogram = std::make_unique<Histogram>(std::move(bounds));
  CHECK(e.histogram != nullptr) << "metric " << name << " is not a plain histogram";
  return *e.histogram;
}

CounterFamily& Registry::AddCounterFamily(const std::string& name, const std::string& help,
                                          std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  bool created;
  Entry& e = Register(name, help, Type::kCounter, labels, &created);
  if (created) {
    e.counters =
        std::make_unique<CounterFamily>(labels, [] { return std::make_unique<Counter>(); });
  }
  CHECK(e.counters != nullptr) << "metric " << name << " is not a counter family";
  return *e.counters;
}

GaugeFamily& Registry::AddGaugeFamily(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  bool created;
  Entry& e = Register(name, help, Type::kGauge, labels, &created);
  if (created) {
    e.gauges = std::make_unique<GaugeFamily>(labels, [] { return std::make_unique<Gauge>(); });
  }
  CHECK(e.gauges != nullptr) << "metric " << name << " is not a gauge family";
  return *e.gauges;
}

HistogramFamily& Registry::AddHistogramFamily(const std::string& name, const std::string& help,
                                              std::vector<std::string> labels,
                                              std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  bool created;
  Entry& e = Register(name, help, Type::kHistogram, labels, &created);
  if (created) {
    e.histograms = std::make_unique<HistogramFamily>(
        labels, [bounds] { return std::make_unique<Histogram>(bounds); });
  }
  CHECK(e.histograms != nullptr) << "metric " << name << " is not a histogram family";
  return *e.histograms;
}

void Registry::AddCollector(const std::string& name, const std::string& help, Type type,
                            std::function<std::vector<Sample>()> collect, const void* owner) {
  CHECK(type != Type::kHistogram) << "collectors report counters or gauges";
  std::lock_guard lock(mu_);
  Entry& e = entries_[name];
  CHECK(e.counter == nullptr && e.gauge == nullptr && e.histogram == nullptr &&
        e.counters == nullptr && e.gauges == nullptr && e.histograms == nullptr)
      << "metric " << name << " is already a direct metric";
  e.type = type;
  e.help = help;
  e.collect = std::move(collect);
  e.owner = owner;
}

void Registry::AddGaugeFunc(const std::string& name, const std::string& help,
                            std::function<double()> f, const void* owner) {
  AddCollector(
      name, help, Type::kGauge,
      [f = std::move(f)] {
        return std::vector<Sample>{Sample{{}, f()}};
      },
      owner);
}

void Registry::RemoveCollectors(const void* owner) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.collect && it->second.owner == owner) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string Registry::Expose() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(64 * 1024);
  for (const auto& entry : entries_) {
    // Not a structured binding: the lambdas below capture these (clang 14 cannot capture one).
    const std::string& name = entry.first;
    const auto& e = entry.second;
    std::string body;
    if (e.counter) body += name + " " + FormatValue(e.counter->Get()) + "\n";
    if (e.gauge) body += name + " " + FormatValue(e.gauge->Get()) + "\n";
    if (e.histogram) WriteHistogram(&body, name, {}, {}, *e.histogram);
    if (e.counters) {
      e.counters->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
        body += name + LabelText(e.label_names, values) + " " + FormatValue(c.Get()) + "\n";
      });
    }
    if (e.gauges) {
      e.gauges->ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
        body += name + LabelText(e.label_names, values) + " " + FormatValue(g.Get()) + "\n";
      });
    }
    if (e.histograms) {
      e.histograms->ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
        WriteHistogram(&body, name, e.label_names, values, h);
      });
    }
    if (e.collect) {
      for (const Sample& s : e.collect()) {
        std::vector<std::string> names, values;
        for (const auto& [k, v] : s.labels) {
          names.push_back(k);
          values.push_back(v);
        }
        body += name + LabelText(names, values) + " " + FormatValue(s.value) + "\n";
      }
    }
    // Like Prometheus's Go client, a family with no samples yet is left out entirely.
    if (body.empty()) continue;
    out += "# HELP " + name + " " + EscapeHelp(e.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(e.type) + "\n";
    out += body;
  }
  return out;
}

Registry& DefaultRegistry() {
  static Registry* registry = new Registry();  // never destroyed: metrics outlive every thread
  return *registry;
}

}  // namespace dolmen::metrics
