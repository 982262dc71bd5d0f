// Storage: the durable log as Raft reads it. The caller writes to it (after persisting a Ready)
// and Raft only reads. Owned by the caller; used from the single thread that drives the RawNode.
//
// Errors a Storage may return, and what Raft does with them:
//   kCompacted    the range starts at or before the last snapshot (Raft sends a snapshot instead)
//   kUnavailable  a snapshot is being produced; Raft retries later
// Any other error is treated as fatal (a CHECK), because Raft cannot go on with a log it cannot
// read.
#pragma once

#include <cstdint>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "raft/message.h"
#include "raft/types.h"

namespace dolmen::raft {

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual Result<InitialState> GetInitialState() const = 0;
  // Entries in [lo, hi), at most max_bytes in total but always at least one if the range is not
  // empty. lo > the snapshot index and hi <= LastIndex() + 1.
  virtual Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const = 0;
  // The term of entry i, for i in [snapshot index, LastIndex()].
  virtual Result<Term> TermAt(Index i) const = 0;
  // The first index held as an entry (snapshot index + 1).
  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;
  virtual Result<Snapshot> GetSnapshot() const = 0;
};

// Bytes an entry takes in size accounting (message bounds, Ready bounds).
inline uint64_t EntrySizeBytes(const Entry& e) { return e.data.size() + 24; }

}  // namespace dolmen::raft
