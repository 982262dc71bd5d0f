// Inflights: the appends a leader has sent to one follower and not yet seen acknowledged. It is
// the flow-control window: when it holds max_count messages or max_bytes bytes the leader stops
// sending to that follower until acknowledgements free room (etcd raft's MaxInflightMsgs and
// MaxInflightBytes play the same role).
#pragma once

#include <cstdint>
#include <deque>

#include "base/ids.h"

namespace dolmen::raft {

class Inflights {
 public:
  // max_bytes == 0 means no byte bound (the count bound always applies).
  Inflights(size_t max_count, uint64_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}

  // Records an append whose last entry is `last`; CHECKs the window is not full.
  void Add(Index last, uint64_t bytes);
  // Frees every append whose last entry is <= index (they are acknowledged).
  void FreeLE(Index index);
  // Frees the oldest append. A leader does this on a heartbeat response from a follower whose
  // window is full, so that appends lost in the network cannot stall the follower forever: the
  // next append reveals the gap and the follower's rejection sends the leader back to probing.
  void FreeFirstOne();
  void Reset();
  bool Full() const;
  size_t count() const { return window_.size(); }

 private:
  struct InFlight {
    Index last;
    uint64_t bytes;
  };
  size_t max_count_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  std::deque<InFlight> window_;
};

}  // namespace dolmen::raft
