// The MVCC key-value store with etcd v3's semantics: one global revision, per-key generations,
// tombstones, historical reads, compaction and HashKV. Design: docs/mvcc.md; on-disk layout:
// docs/formats/mvcc.md.
//
// Threads. Readers (any number of threads) call Range, HashKv and the revision getters; they
// always see the state after some whole write txn, never part of one. Exactly ONE apply thread
// calls BeginWrite, Compact, Commit and Sync. Reads never wait for disk.
//
// Durability. Writes go into one backend write txn per batch; Commit(applied_index) commits it
// to the backend together with the applied log index, without fsync. Readers see a write txn as
// soon as it End()s, before Commit. After a crash the store reopens at the last Commit and the
// write-ahead log replays from ConsistentIndex()+1. Sync() is the checkpoint that makes
// everything committed durable, after which the log before ConsistentIndex() may go.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "base/ids.h"
#include "base/status.h"
#include "mvcc/key_index.h"
#include "mvcc/kv.h"
#include "mvcc/rw_lock.h"

namespace dolmen::mvcc {

// A range whose versions are their stored records (etcd's mvccpb.KeyValue in the protobuf wire
// format, docs/formats/mvcc.md), so a list of a large prefix can be answered without decoding
// and copying every value (issue 18). The views point into a backend snapshot or into copies
// this object owns: destroy it before the Store's backend, and soon (an open snapshot holds
// back a defragmentation's swap). Same meaning as RangeResult otherwise.
class EncodedRange {
 public:
  std::vector<std::string_view> kvs;  // in the order Range returns them
  bool more = false;
  int64_t count = 0;
  Revision revision;

 private:
  friend class Store;
  std::unique_ptr<backend::ReadTxn> snapshot_;
  std::deque<std::string> owned_;  // records not in the snapshot (pending or re-encoded)
};

class Store {
 public:
  // Rebuilds the in-memory index from `backend`, which must outlive the Store and is used only
  // by it for the "key" and "meta" buckets. kCorruption if the stored data is malformed.
  static Result<std::unique_ptr<Store>> Open(backend::Backend* backend);
  // Discards writes not yet Commit()ted. No WriteTxn may be open.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- Read side: any thread.

  // etcd's Range. Errors: kFutureRevision (revision > current), kCompacted (revision < compact
  // revision), kCorruption (a stored value is unreadable).
  Result<RangeResult> Range(const RangeOptions& opts) const;
  // Range, as stored records. Holds the store's read lock only while it walks the index (the
  // apply thread takes the lock for every write txn); the values are looked up afterwards in a
  // snapshot opened under the lock, without copies. Requests that sort by anything but the key,
  // filter by revision or want keys only are served from Range and re-encoded.
  Result<EncodedRange> RangeEncoded(const RangeOptions& opts) const;
  Revision CurrentRevision() const { return Revision(current_rev_.load()); }
  Revision CompactRevision() const { return Revision(compact_rev_.load()); }  // 0 = never
  Index ConsistentIndex() const { return Index(consistent_index_.load()); }

  struct HashKvResult {
    uint32_t hash = 0;
    Revision compact_revision;
    Revision hash_revision;
  };
  // etcd's HashKV: CRC-32C over the bucket name "key" and then every stored (revision key,
  // value) with revision <= rev, where versions at or below the compact revision count only if
  // compaction at `rev` would keep them. rev 0 = current. Errors: kCompacted if 0 < rev <=
  // compact revision, kFutureRevision if rev > current.
  Result<HashKvResult> HashKv(Revision rev) const;

  // A read-only view of one revision for several ranges (a read-only etcd txn: its compares and
  // ranges must all see the same state). Holds the store's read lock for its lifetime, as one
  // Range does for its own, so the apply thread waits for it: keep it as short as the reads it
  // serves, and call nothing else on the Store while it is open (the lock is not recursive).
  // Any thread; one thread at a time.
  class ReadTxn {
   public:
    Revision revision() const { return Revision(revision_); }
    Result<RangeResult> Range(const RangeOptions& opts);

   private:
    friend class Store;
    ReadTxn(const Store* store, std::shared_lock<RwLock> lock);

    const Store* store_;
    std::shared_lock<RwLock> lock_;
    const int64_t revision_;
    std::unique_ptr<backend::ReadTxn> snapshot_;  // opened on the first value read
  };
  std::unique_ptr<ReadTxn> BeginRead() const;

  struct EventsResult {
    std::vector<Event> events;  // in revision order
    Revision next;              // the first revision not returned: where to continue
  };
  // The changes of revisions [from, to] (to <= 0 or beyond current: up to current), for watch
  // catch-up. Returns whole revisions only: stops after the revision in which `max_events` was
  // reached (so at least one revision, if any is in range). kCompacted if from < compact revision
  // (etcd's watch rule), kInvalidArgument if from < 1.
  Result<EventsResult> Events(Revision from, Revision to, size_t max_events) const;

  // --- Write side: the apply thread only.

  // One etcd write txn. All its changes share revision CurrentRevision()+1; a txn that changes
  // nothing does not bump the revision. Holds the store's write lock until End(), so keep it
  // short and do not call Store::Range (or anything else on the Store) while it is open.
  class WriteTxn {
   public:
    ~WriteTxn();  // calls End() if needed
    // Sees this txn's own earlier writes (at revision begin+1 once anything changed).
    Result<RangeResult> Range(const RangeOptions& opts);
    struct PutResult {
      // The version replaced, if the key was live. Revisions only: a put reads no value from
      // the backend (call Range first when the old value is wanted, e.g. for prev_kv).
      struct Replaced {
        Revision create_revision;
        Revision mod_revision;
        int64_t version = 0;
        bool operator==(const Replaced&) const = default;
      };
      std::optional<Replaced> prev;
    };
    // kEmptyKey for an empty key.
    Result<PutResult> Put(std::string_view key, std::string_view value, LeaseId lease);
    struct DeleteResult {
      int64_t deleted = 0;
      std::vector<KeyValue> prev_kvs;  // the deleted versions, in key order
    };
    // range_end as in RangeOptions.
    Result<DeleteResult> DeleteRange(std::string_view key, std::string_view range_end);
    // Publishes the txn to readers; returns the store revision after it.
    Revision End();
    // The changes made so far, in order (etcd's txn Changes(), for notifying watchers).
    const std::vector<Event>& Events() const { return events_; }

   private:
    friend class Store;
    WriteTxn(Store* store, std::unique_lock<RwLock> lock);
    int64_t ReadRevision() const { return begin_rev_ + (changes_ > 0 ? 1 : 0); }
    Status WriteVersion(const KeyValue& kv, RevisionPair rev, bool tombstone);

    Store* store_;
    std::unique_lock<RwLock> lock_;
    const int64_t begin_rev_;
    int64_t changes_ = 0;  // next sub revision
    std::vector<Event> events_;
    bool ended_ = false;
  };
  std::unique_ptr<WriteTxn> BeginWrite();

  // etcd's Compact: kCompacted if rev <= compact revision, kFutureRevision if rev > current.
  // Reads below `rev` fail from now on; old versions are deleted in the current batch.
  Status Compact(Revision rev);
  // Commits the batch (every txn and compaction since the last Commit) with `applied_index` as
  // the consistent index, in one backend txn. Not synced.
  Status Commit(Index applied_index);
  // Makes every committed batch durable.
  Status Sync();

  // Replaces the whole backend (every bucket, leases and membership included) with `image`, a
  // snapshot from the leader, in one backend txn, and rebuilds the index from it. Readers see
  // the old state or the new one. The image is decoded first: kCorruption leaves the store as
  // it was. Apply thread only; no WriteTxn open and nothing uncommitted (Commit first). Not
  // synced: call Sync before relying on it.
  Status Restore(backend::ReadTxn& image);
  // The applied index an image (or any backend) records.
  static Result<Index> ImageConsistentIndex(backend::ReadTxn& image);

  // The backend txn of the current batch, opened if needed, for other state that must commit
  // atomically with it (leases, auth: etcd keeps them in the same backend txn). Apply thread
  // only, not while a WriteTxn is open; valid until the next Commit. Must not touch the "key"
  // and "meta" buckets, and must not Commit it.
  Result<backend::WriteTxn*> BatchTxn();

 private:
  explicit Store(backend::Backend* backend) : backend_(backend) {}
  // What the backend holds, decoded: Load and Restore build it, then Adopt it.
  struct Loaded {
    std::map<std::string, KeyIndex, std::less<>> index;
    int64_t current_rev = 1;
    int64_t compact_rev = 0;
    uint64_t consistent_index = 0;
    bool format_written = false;
  };
  static Result<Loaded> LoadFrom(backend::ReadTxn& txn);
  void Adopt(Loaded loaded);  // caller holds mu_ exclusively (or is Open)
  Status Load();

  // A visible version found by the index: the key (owned by the index) and its revision.
  struct Hit {
    const std::string* key;
    RevisionPair rev;
  };
  // Counts the keys in range visible at `at` and returns the first `max_hits` of them, in key
  // order. Caller holds mu_.
  std::vector<Hit> IndexRange(std::string_view key, std::string_view range_end, int64_t at,
                              int64_t max_hits, int64_t* count) const;
  // The revision a range reads at (opts.revision, or `current` when <= 0), or etcd's error for
  // a future or compacted one.
  Result<int64_t> ReadRevision(const RangeOptions& opts, int64_t current) const;
  using ValueReader = std::function<Result<std::string>(RevisionPair)>;
  // The body of both Range flavours; `current` is the revision reported and reads default to.
  Result<RangeResult> RangeAt(const RangeOptions& opts, int64_t current,
                              const ValueReader& read) const;
  Result<KeyValue> ReadVersion(const Hit& hit, const ValueReader& read) const;

  // Apply thread: the batch's backend txn, opened on first use. A backend error on the write
  // path leaves index and batch out of step, so it is sticky: every later write and Commit
  // fails with it, and the owner must reopen the Store (replaying the log).
  Status EnsureBatch();
  Status Poison(Status status);
  Status DeleteCompacted(int64_t at, const std::set<RevisionPair>& keep);
  // Opens a backend snapshot and copies the pending versions in [from_key, to_key) under the
  // lock (caller holds it), so the pair can be read consistently after the lock is dropped.
  using PendingCopy = std::map<std::string, std::string, std::less<>>;
  Result<std::unique_ptr<backend::ReadTxn>> SnapshotWithPending(std::string_view from_key,
                                                                std::string_view to_key,
                                                                PendingCopy* pending) const;
  // Calls fn(revision key, value) for versions in [from_key, to_key) of the snapshot plus the
  // copied pending versions, in order, each once; fn returns false to stop.
  static Status MergedScan(backend::ReadTxn& snapshot, const PendingCopy& pending,
                           std::string_view from_key, std::string_view to_key,
                           const std::function<bool(std::string_view, std::string_view)>& fn);

  backend::Backend* const backend_;
  // Guards index_ and pending_. Exclusive: a WriteTxn, compaction's index step, Commit's
  // hand-over. Shared: readers.
  mutable RwLock mu_;
  std::map<std::string, KeyIndex, std::less<>> index_;
  // Values (by revision key) of versions written since the last Commit, so readers can see a
  // txn before its batch reaches the backend.
  std::map<std::string, std::string, std::less<>> pending_;
  // Written under mu_ held exclusively; atomics so the getters need no lock.
  std::atomic<int64_t> current_rev_ = 1;
  std::atomic<int64_t> compact_rev_ = 0;
  std::atomic<uint64_t> consistent_index_ = 0;

  // Apply thread only.
  std::unique_ptr<backend::WriteTxn> batch_;
  Status write_error_;
  bool write_open_ = false;
  bool format_written_ = false;  // meta format_version is in the backend
};

}  // namespace dolmen::mvcc
