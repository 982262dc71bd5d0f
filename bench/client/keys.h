// Keys of the key space: key n is n in decimal, zero-padded to --key-size, so keys sort in
// numeric order and a prefix selects a contiguous range. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <random>
#include <string>

#include "options.h"

namespace dolmen::bench {

std::string FormatKey(int64_t n, int key_size);

class KeyPicker {
 public:
  explicit KeyPicker(const Options& options)
      : key_size_(options.key_size),
        key_space_(options.key_space),
        sequential_(options.sequential_keys) {}

  // The next key index: shared counter for --sequential-keys (so a run with --total equal to
  // --key-space writes each key once), else uniform with the caller's generator.
  int64_t Next(std::mt19937_64* rng) {
    if (sequential_) return next_.fetch_add(1) % key_space_;
    return static_cast<int64_t>((*rng)() % static_cast<uint64_t>(key_space_));
  }
  std::string Key(int64_t n) const { return FormatKey(n, key_size_); }

 private:
  const int key_size_;
  const int64_t key_space_;
  const bool sequential_;
  std::atomic<int64_t> next_{0};
};

}  // namespace dolmen::bench
