// What a defragmentation records of the writes committed while it copies. Internal to this
// folder.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dolmen::backend::lmdb_internal {

// The writes committed while a defragmentation copies the data file, to be replayed onto the
// copy. Each op is a blind write (it sets a key's state, or empties a bucket, whatever was there),
// so replaying every op committed since some point at or before the copy's snapshot leaves the
// copy equal to the live file: an op the snapshot already holds is overwritten by the same or a
// later op. That is why the journal may start a little before the snapshot (docs/maintenance.md).
struct JournalOp {
  enum class Kind { kPut, kDelete, kClearBucket };
  Kind kind;
  std::string bucket;
  std::string key;
  std::string value;
};
struct Journal {  // guarded by LmdbBackend::journal_mu_
  std::vector<JournalOp> ops;
  uint64_t bytes = 0;
  bool overflowed = false;  // writes outpaced the copy: the defragmentation gives up
};
// Bounds the memory a defragmentation's journal may take before the copy catches up.
constexpr uint64_t kMaxJournalBytes = 256ull << 20;
// The copy catches up beside the writer in rounds, until a round replays fewer ops than this;
// what is left is replayed with the writer idle (Finish).
constexpr size_t kSmallCatchUpOps = 512;
constexpr int kMaxCatchUpRounds = 8;
// How long PrepareDefragment waits for a write txn open at its call to end (the server commits
// its batch every 100 ms).
constexpr auto kWriterEndWait = std::chrono::seconds(30);

}  // namespace dolmen::backend::lmdb_internal
