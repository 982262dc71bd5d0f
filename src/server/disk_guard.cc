#include "server/disk_guard.h"

#include <utility>

namespace dolmen::server {
namespace {

int64_t Nanos(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

DiskGuard::DiskGuard(DiskGuardOptions options, std::function<Result<uint64_t>()> free_bytes,
                     const Clock* clock, std::function<void(const std::string&)> log)
    : options_(options), source_(std::move(free_bytes)), clock_(clock), log_(std::move(log)) {}

bool DiskGuard::Due(std::chrono::steady_clock::time_point now) const {
  if (!sampled_.load() || low_.load()) return true;
  if (admitted_since_sample_.load() >= options_.resample_bytes) return true;
  return Nanos(now) - last_sample_ns_.load() >=
         std::chrono::duration_cast<std::chrono::nanoseconds>(options_.resample_interval).count();
}

bool DiskGuard::Admit(uint64_t cost) {
  if (cost == 0) return true;
  const auto now = clock_->Now();
  if (Due(now)) {
    std::unique_lock lock(sample_mu_, std::try_to_lock);
    // Another thread sampling decides for this request too, unless we are below the reserve:
    // then wait for its answer, which may be that space was freed.
    if (!lock.owns_lock() && low_.load()) lock.lock();
    if (lock.owns_lock() && Due(now)) SampleLocked(now);
  }
  if (low_.load()) return false;
  admitted_since_sample_.fetch_add(cost);
  return true;
}

void DiskGuard::SampleNow() {
  std::lock_guard lock(sample_mu_);
  SampleLocked(clock_->Now());
}

void DiskGuard::SampleLocked(std::chrono::steady_clock::time_point now) {
  last_sample_ns_.store(Nanos(now));
  admitted_since_sample_.store(0);
  sampled_.store(true);
  Result<uint64_t> free = source_();
  if (!free.ok()) {
    // kUnimplemented: a file system without such a limit (the memory fake): nothing to guard.
    if (!source_failed_logged_ && log_ && free.status().code() != Code::kUnimplemented) {
      log_("cannot read the free space of the data dir's file system, not guarding it: " +
           free.status().ToString());
    }
    source_failed_logged_ = true;
    low_.store(false);
    return;
  }
  free_bytes_.store(*free);
  const bool low = *free < options_.reserve_bytes;
  if (low == low_.exchange(low) || !log_) return;
  if (low) {
    log_("free space on the data dir's file system is " + std::to_string(*free) +
         " bytes, below the reserve of " + std::to_string(options_.reserve_bytes) +
         " bytes: refusing requests that add data");
  } else {
    log_("free space on the data dir's file system is " + std::to_string(*free) +
         " bytes, above the reserve of " + std::to_string(options_.reserve_bytes) +
         " bytes again (writes resume once the NOSPACE alarm is disarmed)");
  }
}

}  // namespace dolmen::server
