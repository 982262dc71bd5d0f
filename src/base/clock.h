// Time and randomness arrive through these interfaces so the replicated core can run under a
// simulated clock and a seeded generator (FoundationDB-style simulation).
#pragma once

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

// A clock a test advances by hand.
class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override { return now_; }
  void Advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  std::chrono::steady_clock::time_point now_{};
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
