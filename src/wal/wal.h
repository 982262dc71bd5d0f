// The write-ahead log: a directory of segment files holding, in write order, the Raft entries,
// hard states and snapshot markers of one member, so that everything Raft was told is durable
// survives a crash (Raft paper, Figure 2: persist before responding). Design: docs/wal.md;
// bytes: docs/formats/wal.md.
//
// Threading: a Wal is used by one thread at a time (the member's Raft driver). Not copyable.
// Failure: after any failed write, sync or segment cut the Wal is unusable; every later call
// returns that first error (after a failed fdatasync the durable state is unknown, so carrying
// on could acknowledge data that is gone). Reopen to recover.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "io/file_system.h"
#include "raft/types.h"

namespace dolmen::wal {

struct Options {
  // A segment is cut (synced, closed, a new one started) once it reaches this size.
  uint64_t segment_bytes = 64 << 20;
};

struct Recovered {
  std::string metadata;        // opaque bytes given at Create (cluster id, member id, ...)
  raft::HardState hard_state;  // last one written
  std::optional<raft::SnapshotMetadata> snapshot;  // last snapshot marker, if any
  // Entries after the snapshot, in index order, with Raft truncations applied.
  std::vector<raft::Entry> entries;
  // Human-readable notes of torn tails repaired; the server logs them.
  std::vector<std::string> repairs;
};

// Registers etcd_disk_wal_fsync_duration_seconds, so it is exposed before the first sync.
void RegisterWalMetrics();

class Wal {
 public:
  // Whether `dir` holds at least one WAL segment.
  static bool Exists(io::FileSystem* fs, const std::string& dir);

  // Creates `dir` (and parents) and an empty log. kAlreadyExists if a log is there.
  static Result<std::unique_ptr<Wal>> Create(io::FileSystem* fs, const std::string& dir,
                                             std::string metadata, const Options& options);

  // Reads the whole log back and positions the Wal for appending. A torn last record of the
  // last segment (or zeros after it) is truncated away and noted in Recovered::repairs; any
  // other damage is kCorruption naming the file and byte offset. Never skips data silently.
  static Result<std::pair<std::unique_ptr<Wal>, Recovered>> Open(io::FileSystem* fs,
                                                                 const std::string& dir,
                                                                 const Options& options);

  // Closes the current segment without syncing (call Sync first for durability).
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Writes `entries` (consecutive indexes; the first at most LastIndex()+1 and above the last
  // snapshot marker: an index at or below LastIndex() truncates the log from there) and then
  // `hs` unless hs.IsEmpty(). Buffered in the OS, not durable until Sync. May cut a segment,
  // which syncs the old one. kInvalidArgument for an entry too large for one record.
  Status Append(const std::vector<raft::Entry>& entries, const raft::HardState& hs);

  // One fdatasync for everything appended since the last Sync (group commit: the caller
  // batches appends of many proposals before one Sync).
  Status Sync();

  // Records that entries up to meta.index are in a snapshot; synced before returning, since
  // the caller releases segments on the strength of it.
  Status SaveSnapshot(const raft::SnapshotMetadata& meta);

  // Starts a new segment if the current one holds at least `bytes`. A checkpoint cuts before
  // ReleaseTo so that the segment it just covered can go too: a restart then reads only what
  // came after the checkpoint, not the whole current segment (up to segment_bytes).
  Status CutIfAtLeast(uint64_t bytes);

  // Deletes whole segments whose entries are all below `index`. The caller must hold every
  // entry below `index` durably elsewhere (a snapshot, or a synced backend whose applied index
  // is index-1) and must never again truncate the log below `index` (committed entries are
  // never truncated, Raft paper section 5.3). The current segment is never deleted, so some
  // entries below `index` usually remain; after a release, Open returns the log from the first
  // entry still on disk.
  Status ReleaseTo(Index index);

  // Syncs and closes; later calls fail. Optional: the destructor closes without syncing.
  Status Close();

  // Highest entry index written (after truncations), or the snapshot index if higher.
  Index LastIndex() const { return last_index_; }
  // Segment file names, oldest first (for tests and diagnostics).
  std::vector<std::string> SegmentNames() const;

 private:
  struct Segment {
    uint64_t sequence;
    uint64_t first_index;
    std::string name;
  };

  Wal(io::FileSystem* fs, std::string dir, std::string metadata, const Options& options);

  // Writes a new segment through a temporary file, then renames it into place, so that a
  // segment on disk always starts with a complete, synced header and state records.
  Status StartSegment(uint64_t sequence, uint64_t first_index);
  Status CutIfFull();
  Status Write(const std::string& bytes);
  Status Fail(Status status);  // records the first failure and returns it
  void CheckAppendable(const std::vector<raft::Entry>& entries) const;

  io::FileSystem* fs_;
  std::string dir_;
  std::string metadata_;
  Options options_;
  std::unique_ptr<io::FileLock> lock_;
  std::unique_ptr<io::WritableFile> file_;  // the last segment
  std::vector<Segment> segments_;           // oldest first; back() is file_'s
  Index last_index_;
  raft::HardState hard_state_;  // latest, repeated at the start of every new segment
  std::optional<raft::SnapshotMetadata> snapshot_;  // likewise
  Status failed_;                                   // sticky first failure
  std::string buffer_;                              // encode buffer, reused
};

}  // namespace dolmen::wal
