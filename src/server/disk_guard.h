// The disk-space guard: etcd's NOSPACE alarm for a file system that fills up, not only for a
// backend past its quota. Without it a full disk is found by the write that fails (a WAL
// segment cut or an LMDB commit), which stops the member, and its restart fails the same way on
// replay. With it, requests that add data are refused ("database space exceeded") and the
// NOSPACE alarm is raised while the data dir's file system still has room for what the member
// must be able to write after that: deletes, compaction, alarms, lease revokes, checkpoints and
// the next WAL segments (the reserve, DiskReserveBytes; docs/maintenance.md).
//
// Free space is sampled, not read per request: at most once per `resample_interval`, and sooner
// once `resample_bytes` of request cost were admitted since the last sample, so a burst of
// writes cannot run far past the reserve between two samples. While below the reserve every
// Admit samples again (those requests are refused anyway), so freed space is seen at once.
//
// Threads: Admit, low and free_bytes from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "base/clock.h"
#include "base/status.h"

namespace dolmen::server {

// What the member must still be able to write once writes are refused: two WAL segments (the
// next cut and a checkpoint's cut, each preallocated in full before the older segments are
// released) and a margin for the backend's growth (see docs/maintenance.md).
inline constexpr uint64_t kDiskBackendMarginBytes = 16ull << 20;
inline uint64_t DiskReserveBytes(uint64_t wal_segment_bytes) {
  return 2 * wal_segment_bytes + kDiskBackendMarginBytes;
}

struct DiskGuardOptions {
  // Below this much free space requests that add data are refused. The server turns 0 into
  // DiskReserveBytes(its WAL segment size).
  uint64_t reserve_bytes = 0;
  std::chrono::milliseconds resample_interval{1000};
  uint64_t resample_bytes = 1ull << 20;
};

class DiskGuard {
 public:
  // `free_bytes` reports the bytes an unprivileged writer may still use on the data dir's file
  // system (statvfs f_bavail * f_frsize). If it fails the guard admits everything and logs the
  // failure once: a failed sample is no evidence of a full disk. `log` receives one line per
  // change of state (below / back above the reserve).
  DiskGuard(DiskGuardOptions options, std::function<Result<uint64_t>()> free_bytes,
            const Clock* clock, std::function<void(const std::string&)> log);

  // Whether a request adding `cost` bytes may go ahead: false while free space is below the
  // reserve. A cost of 0 (reads, deletes, compaction, alarms) is always admitted.
  bool Admit(uint64_t cost);
  // Samples now, whatever the schedule (at start, and for tests).
  void SampleNow();

  bool low() const { return low_.load(); }
  uint64_t free_bytes() const { return free_bytes_.load(); }
  uint64_t reserve_bytes() const { return options_.reserve_bytes; }

 private:
  bool Due(std::chrono::steady_clock::time_point now) const;
  void SampleLocked(std::chrono::steady_clock::time_point now);  // holds sample_mu_

  const DiskGuardOptions options_;
  std::function<Result<uint64_t>()> source_;
  const Clock* clock_;
  std::function<void(const std::string&)> log_;

  std::mutex sample_mu_;               // one sampler at a time; guards source_ errors' logging
  bool source_failed_logged_ = false;  // guarded by sample_mu_
  std::atomic<bool> low_{false};
  std::atomic<uint64_t> free_bytes_{0};
  std::atomic<uint64_t> admitted_since_sample_{0};
  std::atomic<int64_t> last_sample_ns_{0};  // clock time of the last sample, since its epoch
  std::atomic<bool> sampled_{false};
};

}  // namespace dolmen::server
