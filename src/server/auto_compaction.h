// Auto-compaction policies: when the leader compacts on its own, and to which revision (etcd's
// --auto-compaction-mode and --auto-compaction-retention; etcd 3.4's
// etcdserver/api/v3compactor). Pure state machines: time and the store's revision are passed
// in, so unit tests step them on a ManualClock without sleeping. AutoCompactor
// (auto_compactor.h) runs one on a thread; docs/maintenance.md describes both modes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"

namespace dolmen::server {

// A reading of the member's Clock (monotonic).
using TimePoint = std::chrono::steady_clock::time_point;

enum class AutoCompactionMode { kPeriodic, kRevision };

struct AutoCompactionOptions {
  AutoCompactionMode mode = AutoCompactionMode::kPeriodic;
  // kPeriodic: how much history (by time) to keep. Zero: off.
  std::chrono::nanoseconds retention_time{0};
  // kRevision: how many revisions to keep. Zero: off.
  int64_t retention_revisions = 0;
  // kRevision: how often the current revision is checked (etcd: a fixed 5 minutes; tests
  // shorten it through embed's DOLMEN_TEST_REVISION_COMPACTION_INTERVAL_MS).
  std::chrono::nanoseconds revision_check_interval = std::chrono::minutes(5);

  bool enabled() const {
    return mode == AutoCompactionMode::kPeriodic ? retention_time.count() > 0
                                                 : retention_revisions > 0;
  }
};

// One policy, driven by one thread in rounds: Sample, wait round_interval(), then (on the
// leader only) Due and, if it named a revision, Finished with the compaction's outcome.
class CompactionPolicy {
 public:
  virtual ~CompactionPolicy() = default;
  // How long a round waits between its Sample and its Due.
  virtual std::chrono::nanoseconds round_interval() const = 0;
  // At the start of every round, leader or not: the store's current revision.
  virtual void Sample(Revision current) = 0;
  // After the wait, on the leader: the revision to compact now, if one is due.
  virtual std::optional<Revision> Due(TimePoint now, Revision current) = 0;
  // The outcome of the compaction Due asked for. kCompacted (someone compacted further
  // already) counts as done, as in etcd.
  virtual void Finished(TimePoint now, Revision revision, const Status& outcome) = 0;
  // For log lines: "periodic, retention 1h0m0s".
  virtual std::string Describe() const = 0;
};

// etcd's periodic compactor: every round_interval (a tenth of min(retention, 1h)) it samples
// the revision, keeping the samples that span the retention; once `retention` has passed
// since the start, and then every min(retention, 1h) after each success, it compacts to the
// oldest sample, i.e. the revision of about `retention` ago. A failure retries next round.
class PeriodicCompactionPolicy final : public CompactionPolicy {
 public:
  PeriodicCompactionPolicy(std::chrono::nanoseconds retention, TimePoint start);
  std::chrono::nanoseconds round_interval() const override { return round_; }
  void Sample(Revision current) override;
  std::optional<Revision> Due(TimePoint now, Revision current) override;
  void Finished(TimePoint now, Revision revision, const Status& outcome) override;
  std::string Describe() const override;

 private:
  const std::chrono::nanoseconds retention_;
  const std::chrono::nanoseconds round_;             // min(retention, 1h) / 10
  const std::chrono::nanoseconds compact_interval_;  // min(retention, 1h)
  const size_t max_samples_;                         // retention / round + 1
  std::chrono::nanoseconds wait_;                    // retention first, then compact_interval_
  TimePoint last_success_;
  std::deque<Revision> samples_;  // oldest first; front() is about `retention` old
};

// etcd's revision compactor: every check interval (5 minutes), compacts to
// current - retention unless that is not positive or was compacted last time.
class RevisionCompactionPolicy final : public CompactionPolicy {
 public:
  RevisionCompactionPolicy(int64_t retention, std::chrono::nanoseconds check_interval);
  std::chrono::nanoseconds round_interval() const override { return check_interval_; }
  void Sample(Revision) override {}
  std::optional<Revision> Due(TimePoint now, Revision current) override;
  void Finished(TimePoint now, Revision revision, const Status& outcome) override;
  std::string Describe() const override;

 private:
  const int64_t retention_;
  const std::chrono::nanoseconds check_interval_;
  int64_t last_compacted_ = 0;
};

// The policy `options` ask for (which must be enabled()), started at `start`.
std::unique_ptr<CompactionPolicy> NewCompactionPolicy(const AutoCompactionOptions& options,
                                                      TimePoint start);

// Go's time.Duration.String() ("1h0m0s", "2s", "1.5s", "300ms"), for log lines that read
// like etcd's.
std::string GoDurationString(std::chrono::nanoseconds d);

}  // namespace dolmen::server
