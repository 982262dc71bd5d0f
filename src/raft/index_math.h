// Arithmetic on log indexes and terms. Kept to the few operations the Raft code needs, so that
// an Index never silently mixes with a Term or a plain count.
#pragma once

#include <cstdint>

#include "base/check.h"
#include "base/ids.h"

namespace dolmen::raft {

inline Index operator+(Index i, uint64_t n) { return Index(i.value() + n); }
inline Index operator-(Index i, uint64_t n) {
  CHECK_GE(i.value(), n) << "index underflow";
  return Index(i.value() - n);
}
// Number of entries in the half-open range [lo, hi).
inline uint64_t Distance(Index lo, Index hi) {
  CHECK_LE(lo.value(), hi.value());
  return hi.value() - lo.value();
}

inline constexpr MemberId kNoMember{};

}  // namespace dolmen::raft
