// The storage backend: a transactional, ordered byte key-value store split into named buckets.
// MVCC, lease and auth keep their state here. Two implementations: backend/lmdb (the real one,
// the only code that includes lmdb.h) and a memory fake (memory_backend.h) for tests and the
// simulator.
//
// Durability: Commit() makes a transaction visible to later readers and, on LMDB, orders it on
// disk (its pages are synced before the meta page that publishes it), so after a power cut the
// backend opens at a whole committed state no older than the last Sync(), never on a mix; the
// newest commits may be missing. The write-ahead log holds those; Sync() is the checkpoint
// that lets the log be truncated (see docs/mvcc.md, docs/durability.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dolmen::backend {

// A consistent snapshot of the committed state as of BeginRead(). Owned and used by one thread
// at a time; must be destroyed before the Backend.
class ReadTxn {
 public:
  virtual ~ReadTxn() = default;
  // nullopt if the key (or the whole bucket) does not exist.
  virtual Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) = 0;
  // Get without the copy: the view points into this snapshot and stays valid until the txn is
  // destroyed (on a WriteTxn: until its next write or Commit). Large reads (a list of a whole
  // prefix) hand the stored bytes on without copying every value twice.
  virtual Result<std::optional<std::string_view>> GetView(std::string_view bucket,
                                                          std::string_view key) = 0;
  // Calls fn(key, value) for keys in [start, end) in byte order (end empty = to the end of the
  // bucket); stops early when fn returns false. The views are valid only during the call.
  virtual Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // Names of the buckets in this snapshot, in byte order (empty buckets included).
  virtual Result<std::vector<std::string>> Buckets() = 0;
};

// The one writer. Sees its own uncommitted writes. Destroying it without Commit() aborts it.
// Buckets are created on first Put.
class WriteTxn : public ReadTxn {
 public:
  virtual Status Put(std::string_view bucket, std::string_view key, std::string_view value) = 0;
  // Deleting a missing key is not an error.
  virtual Status Delete(std::string_view bucket, std::string_view key) = 0;
  // Deletes every key of `bucket`; the bucket itself stays. A missing bucket is not an error.
  virtual Status ClearBucket(std::string_view bucket) = 0;
  // Publishes the writes to readers that begin afterwards; ordered on disk but not necessarily
  // durable until Sync() (see above). The txn is finished afterwards whatever the outcome; on
  // error nothing was published.
  virtual Status Commit() = 0;
};

// Keys are 1..kMaxKeyBytes bytes (LMDB's compile-time limit); Put rejects others with
// kInvalidArgument. Values may be empty and are bounded only by the map size.
inline constexpr size_t kMaxKeyBytes = 511;

struct Options {
  // Upper bound of the data file; writes past it fail with Code::kNoSpace.
  uint64_t map_size_bytes = 8ull << 30;
  // etcd's --unsafe-no-fsync: commits and Sync() skip fsync (a power cut can lose or tear
  // committed transactions). Only for tests and throwaway members.
  bool no_sync = false;
  // Tests only: runs in a defragmentation's Finish once new txns use the compacted copy, before
  // the copy is synced and renamed over the data file (writes go on meanwhile).
  std::function<void()> after_defragment_switch_for_test;
};

// A defragmentation whose long part is done (PrepareDefragment): Finish swaps the compacted
// file in. Destroying it without Finish abandons it and leaves the backend as it was.
class PreparedDefragment {
 public:
  virtual ~PreparedDefragment() = default;
  // Catches the copy up with the writes committed since it was prepared and puts it in place of
  // the data file; the contents are unchanged. Any thread, beside readers and the writer: it
  // waits for the write txn open at the call (if any) to end, then holds back BeginWrite only
  // while it replays the last writes onto the copy (no fsync meanwhile); readers are never held
  // back (those that began before read the old file to their end). The caller must not have a
  // write txn open itself (it would wait for it: kTimeout). Sync waits until the copy is durably
  // in place.
  virtual Status Finish() = 0;
};

// Thread-safe: any thread may BeginRead; readers run concurrently with the writer. At most one
// WriteTxn exists at a time; BeginWrite while one is open fails with kFailedPrecondition
// (it is a caller bug, reported rather than deadlocking).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::unique_ptr<ReadTxn>> BeginRead() = 0;
  virtual Result<std::unique_ptr<WriteTxn>> BeginWrite() = 0;
  // Makes every committed transaction durable (fsync).
  virtual Status Sync() = 0;
  // etcd's dbSize, what the backend quota counts: the most bytes the data has occupied since
  // the backend was opened or last defragmented. Deletes and compaction do not lower it (the
  // space they free is reused, as in etcd's file); Defragment lowers it to SizeInUseBytes().
  // Always >= SizeInUseBytes(). Read for every write request: the LMDB backend computes both
  // sizes at each commit and returns them from memory. LMDB counts pages, not the data file's
  // size, which also holds free pages (docs/maintenance.md, "The backend quota").
  virtual uint64_t SizeBytes() = 0;
  // etcd's dbSizeInUse: the bytes the data occupies now. The memory fake has no free space and
  // reports its key and value bytes for both sizes.
  virtual uint64_t SizeInUseBytes() = 0;
  // Writes a consistent image of the committed state (as of the call) to a new file `path`,
  // synced before returning, in the format this implementation's image opener reads
  // (OpenLmdbImage, OpenMemoryImage). Runs concurrently with readers and the writer; this is
  // what a leader sends a follower that fell behind its compacted log. kAlreadyExists if
  // `path` exists.
  virtual Status CopyTo(const std::string& path) = 0;
  // etcd's defragmentation: rewrites the data file without its free pages, so the file shrinks
  // to about SizeInUseBytes() and SizeBytes() drops to it; the contents are unchanged. Readers
  // and CopyTo go on meanwhile; the calling thread must have no WriteTxn open
  // (kFailedPrecondition), others may: see PreparedDefragment::Finish. A crash at any point
  // leaves either the old file or the new one, whole, holding at least what the last Sync()
  // covered.
  virtual Status Defragment() = 0;
  // Defragment in two steps, so that writes go on during the long one. Prepare: any thread,
  // concurrently with readers and the writer; it may wait for a write txn open at the call to
  // finish. Then PreparedDefragment::Finish. One at a time (kFailedPrecondition while another
  // is prepared). This default does all the work in Finish (Defragment): a backend whose
  // Defragment needs the writer idle must override it.
  virtual Result<std::unique_ptr<PreparedDefragment>> PrepareDefragment();
};

// Replaces everything in `target` with the contents of `source`: every bucket of `target` is
// emptied, then every bucket of `source` copied in. Used to install a snapshot image into a
// live backend in one transaction, so readers see the old state or the new, never a mix.
Status ReplaceContents(ReadTxn& source, WriteTxn& target);

// etcd's backend Hash: CRC-32C (Castagnoli) over every bucket name in byte order, each followed
// by the keys and values of that bucket in key order, except the pairs `skip(bucket, key)`
// selects (member-local state). The bytes are fed without lengths or separators, as etcd does.
// Equal contents give equal hashes whatever the backend implementation.
using HashSkip = std::function<bool(std::string_view bucket, std::string_view key)>;
Result<uint32_t> HashContents(ReadTxn& txn, const HashSkip& skip);

}  // namespace dolmen::backend
