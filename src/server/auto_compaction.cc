#include "server/auto_compaction.h"

#include <algorithm>

namespace dolmen::server {
namespace {

using std::chrono::nanoseconds;

constexpr nanoseconds kHour = std::chrono::hours(1);
// etcd's retryDivisor: the retention window is sampled in tenths.
constexpr int64_t kRoundsPerWindow = 10;

// "1", "1.5", "1.25": `units` of 10^-`digits`, trailing zeros of the fraction dropped.
std::string Fixed(int64_t units, int digits) {
  int64_t scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  std::string out = std::to_string(units / scale);
  std::string fraction = std::to_string(units % scale);
  fraction.insert(0, static_cast<size_t>(digits) - fraction.size(), '0');
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  if (!fraction.empty()) out += "." + fraction;
  return out;
}

}  // namespace

std::string GoDurationString(nanoseconds d) {
  int64_t ns = d.count();
  std::string sign = ns < 0 ? "-" : "";
  if (ns < 0) ns = -ns;
  if (ns == 0) return "0s";
  if (ns < 1000) return sign + std::to_string(ns) + "ns";
  if (ns < 1000000) return sign + Fixed(ns, 3) + "\xc2\xb5s";
  if (ns < 1000000000) return sign + Fixed(ns, 6) + "ms";
  const int64_t hours = ns / 3600000000000;
  const int64_t minutes = ns / 60000000000 % 60;
  std::string out = sign;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
  return out + Fixed(ns % 60000000000, 9) + "s";
}

PeriodicCompactionPolicy::PeriodicCompactionPolicy(nanoseconds retention, TimePoint start)
    : retention_(retention),
      round_(std::min(retention, kHour) / kRoundsPerWindow),
      compact_interval_(std::min(retention, kHour)),
      max_samples_(static_cast<size_t>(retention / std::max(round_, nanoseconds(1))) + 1),
      wait_(retention),
      last_success_(start) {}

void PeriodicCompactionPolicy::Sample(Revision current) {
  samples_.push_back(current);
  if (samples_.size() > max_samples_) samples_.pop_front();
}

std::optional<Revision> PeriodicCompactionPolicy::Due(TimePoint now, Revision) {
  if (samples_.empty() || now - last_success_ < wait_) return std::nullopt;
  // The first compaction waits the whole retention; later ones come every min(retention, 1h)
  // after a success, each to the revision of about `retention` ago (etcd's baseInterval).
  wait_ = compact_interval_;
  return samples_.front();
}

void PeriodicCompactionPolicy::Finished(TimePoint now, Revision, const Status& outcome) {
  if (outcome.ok() || outcome.code() == Code::kCompacted) last_success_ = now;
}

std::string PeriodicCompactionPolicy::Describe() const {
  return "periodic, retention " + GoDurationString(retention_);
}

RevisionCompactionPolicy::RevisionCompactionPolicy(int64_t retention, nanoseconds check_interval)
    : retention_(retention), check_interval_(check_interval) {}

std::optional<Revision> RevisionCompactionPolicy::Due(TimePoint, Revision current) {
  const int64_t target = current.value() - retention_;
  if (target <= 0 || target == last_compacted_) return std::nullopt;
  return Revision(target);
}

void RevisionCompactionPolicy::Finished(TimePoint, Revision revision, const Status& outcome) {
  if (outcome.ok() || outcome.code() == Code::kCompacted) last_compacted_ = revision.value();
}

std::string RevisionCompactionPolicy::Describe() const {
  return "revision, retention " + std::to_string(retention_) + " revisions";
}

std::unique_ptr<CompactionPolicy> NewCompactionPolicy(const AutoCompactionOptions& options,
                                                      TimePoint start) {
  if (options.mode == AutoCompactionMode::kPeriodic) {
    return std::make_unique<PeriodicCompactionPolicy>(options.retention_time, start);
  }
  return std::make_unique<RevisionCompactionPolicy>(options.retention_revisions,
                                                    options.revision_check_interval);
}

}  // namespace dolmen::server
