// Time and randomness arrive through these interfaces so the replicated core can run under a
// simulated clock and a seeded generator (FoundationDB-style simulation).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace dolmen {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time; never goes backwards.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
};

// A clock a test advances by hand; read from any thread (a member's driver reads it while the
// test advances it).
class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(now_.load(std::memory_order_acquire)));
  }
  void Advance(std::chrono::nanoseconds d) {
    now_.fetch_add(std::chrono::duration_cast<std::chrono::steady_clock::duration>(d).count(),
                   std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::chrono::steady_clock::rep> now_{0};
};

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t Next() = 0;
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
};

class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : gen_(seed) {}
  uint64_t Next() override { return gen_(); }

 private:
  std::mt19937_64 gen_;
};

}  // namespace dolmen
