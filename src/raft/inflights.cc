#include "raft/inflights.h"

#include "base/check.h"

namespace dolmen::raft {

void Inflights::Add(Index last, uint64_t bytes) {
  CHECK(!Full()) << "adding to a full inflight window";
  CHECK(window_.empty() || window_.back().last < last) << "inflight indexes must increase";
  window_.push_back({last, bytes});
  bytes_ += bytes;
}

void Inflights::FreeLE(Index index) {
  while (!window_.empty() && window_.front().last <= index) {
    bytes_ -= window_.front().bytes;
    window_.pop_front();
  }
}

void Inflights::FreeFirstOne() {
  if (window_.empty()) return;
  bytes_ -= window_.front().bytes;
  window_.pop_front();
}

void Inflights::Reset() {
  window_.clear();
  bytes_ = 0;
}

bool Inflights::Full() const {
  return window_.size() >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

}  // namespace dolmen::raft
