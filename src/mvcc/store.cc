#include "mvcc/store.h"

#include <shared_mutex>

#include "base/check.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "mvcc/kv_codec.h"
#include "mvcc/range_shaping.h"
#include "mvcc/revision.h"

namespace dolmen::mvcc {
namespace {

// Bucket and meta key names: docs/formats/mvcc.md.
constexpr std::string_view kKeyBucket = "key";
constexpr std::string_view kMetaBucket = "meta";
constexpr std::string_view kConsistentIndexKey = "consistent_index";
constexpr std::string_view kCompactRevisionKey = "compact_revision";
constexpr std::string_view kFormatVersionKey = "format_version";
// Bumped on any incompatible change to docs/formats/mvcc.md.
constexpr uint64_t kFormatVersion = 1;

// Compaction deletes old versions in chunks of this many keys, to bound the memory it needs.
constexpr size_t kCompactionChunk = 4096;

std::string EncodeUint64(uint64_t v) {
  std::string out;
  coding::PutBigEndian64(&out, v);
  return out;
}

Result<uint64_t> ReadMetaUint64(backend::ReadTxn& txn, std::string_view key) {
  ASSIGN_OR_RETURN(std::optional<std::string> raw, txn.Get(kMetaBucket, key));
  if (!raw) return uint64_t{0};
  if (raw->size() != 8) {
    return Corruption("mvcc meta " + std::string(key) + ": " + std::to_string(raw->size()) +
                      " bytes, want 8");
  }
  return coding::DecodeBigEndian64(raw->data());
}

Status CompactedError(int64_t at, int64_t compacted) {
  return Status(Code::kCompacted, "revision " + std::to_string(at) +
                                      " has been compacted (compact revision " +
                                      std::to_string(compacted) + ")");
}

Status FutureError(int64_t at, int64_t current) {
  return Status(Code::kFutureRevision, "revision " + std::to_string(at) +
                                           " is newer than the current revision " +
                                           std::to_string(current));
}

}  // namespace

// ---------------------------------------------------------------- opening

Result<std::unique_ptr<Store>> Store::Open(backend::Backend* backend) {
  CHECK(backend != nullptr);
  std::unique_ptr<Store> store(new Store(backend));
  RETURN_IF_ERROR(store->Load());
  return store;
}

Result<Store::Loaded> Store::LoadFrom(backend::ReadTxn& txn) {
  Loaded out;
  ASSIGN_OR_RETURN(out.consistent_index, ReadMetaUint64(txn, kConsistentIndexKey));
  ASSIGN_OR_RETURN(uint64_t compact_rev, ReadMetaUint64(txn, kCompactRevisionKey));
  if (compact_rev > INT64_MAX) return Corruption("mvcc meta compact_revision out of range");
  ASSIGN_OR_RETURN(uint64_t format, ReadMetaUint64(txn, kFormatVersionKey));
  if (format != 0 && format != kFormatVersion) {
    return Corruption("mvcc format version " + std::to_string(format) + " is not supported (" +
                      "this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  out.format_written = format == kFormatVersion;
  int64_t last = 0;
  Status error;
  auto& index = out.index;
  Status scan = txn.Scan(kKeyBucket, "", "", [&](std::string_view k, std::string_view v) {
    std::optional<DecodedRevisionKey> rk = DecodeRevisionKey(k);
    if (!rk || rk->rev.main <= 0) {
      error = Corruption("mvcc key bucket: malformed revision key of " + std::to_string(k.size()) +
                         " bytes");
      return false;
    }
    Result<KeyValue> kv = DecodeKeyValue(v);
    if (!kv.ok()) {
      error = Corruption(kv.status().message() + " at revision " + std::to_string(rk->rev.main));
      return false;
    }
    KeyIndex& ki = index[kv->key];
    if (rk->tombstone) {
      if (!ki.RestoreTombstone(rk->rev))
        error = Corruption("mvcc key bucket: tombstone out of order");
    } else if (!ki.empty() && rk->rev <= ki.Latest()) {
      error = Corruption("mvcc key bucket: revisions out of order");
    } else {
      ki.RestorePut(rk->rev, kv->create_revision, kv->version);
    }
    if (ki.empty()) index.erase(kv->key);
    last = rk->rev.main;
    return error.ok();
  });
  RETURN_IF_ERROR(scan);
  RETURN_IF_ERROR(error);
  // The newest version may have been a tombstone removed by compaction at that very revision;
  // the compact revision then is the current one.
  out.current_rev = std::max({last, static_cast<int64_t>(compact_rev), int64_t{1}});
  out.compact_rev = static_cast<int64_t>(compact_rev);
  return out;
}

void Store::Adopt(Loaded loaded) {
  index_ = std::move(loaded.index);
  pending_.clear();
  current_rev_ = loaded.current_rev;
  compact_rev_ = loaded.compact_rev;
  consistent_index_ = loaded.consistent_index;
  format_written_ = loaded.format_written;
}

Status Store::Load() {
  ASSIGN_OR_RETURN(std::unique_ptr<backend::ReadTxn> txn, backend_->BeginRead());
  ASSIGN_OR_RETURN(Loaded loaded, LoadFrom(*txn));
  Adopt(std::move(loaded));
  return OkStatus();
}

Result<Index> Store::ImageConsistentIndex(backend::ReadTxn& image) {
  ASSIGN_OR_RETURN(uint64_t index, ReadMetaUint64(image, kConsistentIndexKey));
  return Index(index);
}

Status Store::Restore(backend::ReadTxn& image) {
  CHECK(!write_open_) << "Store::Restore with a WriteTxn open";
  RETURN_IF_ERROR(write_error_);
  CHECK(batch_ == nullptr) << "Store::Restore with an uncommitted batch";
  // Decode the whole image before touching anything: a bad image leaves the store as it was.
  ASSIGN_OR_RETURN(Loaded loaded, LoadFrom(image));
  // Readers wait for the swap: they must not pair the old index with the new backend state.
  // Readers already past the lock hold a backend snapshot from before, consistent with the
  // index they used.
  std::unique_lock lock(mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<backend::WriteTxn> txn, backend_->BeginWrite());
  RETURN_IF_ERROR(backend::ReplaceContents(image, *txn));
  RETURN_IF_ERROR(txn->Commit());
  Adopt(std::move(loaded));
  return OkStatus();
}

Store::~Store() { CHECK(!write_open_) << "Store destroyed with a WriteTxn open"; }

// ---------------------------------------------------------------- reading

std::vector<Store::Hit> Store::IndexRange(std::string_view key, std::string_view range_end,
                                          int64_t at, int64_t max_hits, int64_t* count) const {
  std::vector<Hit> hits;
  *count = 0;
  auto visit = [&](const std::string& k, const KeyIndex& ki) {
    if (auto found = ki.Get(at)) {
      if (*count < max_hits) hits.push_back(Hit{&k, found->rev});
      ++*count;
    }
  };
  if (range_end.empty()) {
    if (auto it = index_.find(key); it != index_.end()) visit(it->first, it->second);
    return hits;
  }
  // etcd: a range_end of "\0" means "every key >= key".
  const bool to_end = range_end == std::string_view("\0", 1);
  for (auto it = index_.lower_bound(key); it != index_.end(); ++it) {
    if (!to_end && std::string_view(it->first) >= range_end) break;
    visit(it->first, it->second);
  }
  return hits;
}

Result<KeyValue> Store::ReadVersion(const Hit& hit, const ValueReader& read) const {
  ASSIGN_OR_RETURN(std::string raw, read(hit.rev));
  ASSIGN_OR_RETURN(KeyValue kv, DecodeKeyValue(raw));
  if (kv.key != *hit.key || kv.mod_revision.value() != hit.rev.main) {
    return Corruption("mvcc: version at revision " + std::to_string(hit.rev.main) +
                      " does not match the index");
  }
  return kv;
}

Result<int64_t> Store::ReadRevision(const RangeOptions& opts, int64_t current) const {
  int64_t at = opts.revision.value();
  // Same order of checks as etcd: a future revision wins over a compacted one.
  if (at > current) return FutureError(at, current);
  if (at <= 0) at = current;
  if (at < compact_rev_.load()) return CompactedError(at, compact_rev_.load());
  return at;
}

Result<RangeResult> Store::RangeAt(const RangeOptions& opts, int64_t current,
                                   const ValueReader& read) const {
  ASSIGN_OR_RETURN(const int64_t at, ReadRevision(opts, current));
  RangeResult result;
  result.revision = Revision(current);
  // etcd's count is every key in range, so the whole range is walked even under a limit; only
  // the versions needed are read.
  std::vector<Hit> hits =
      IndexRange(opts.key, opts.range_end, at, VersionsToRead(opts), &result.count);
  result.kvs.reserve(hits.size());
  for (const Hit& hit : hits) {
    ASSIGN_OR_RETURN(KeyValue kv, ReadVersion(hit, read));
    result.kvs.push_back(std::move(kv));
  }
  if (opts.count_only) return result;
  ShapeRange(opts, &result.kvs, &result.more);
  return result;
}

Result<RangeResult> Store::Range(const RangeOptions& opts) const {
  return BeginRead()->Range(opts);
}

namespace {

// Stored records come out in key order, which is the answer unless the request sorts by
// something else, filters by revision or strips the values: those need decoded versions.
bool StoredRecordsServe(const RangeOptions& o) {
  const bool filters = o.min_mod_revision.value() != 0 || o.max_mod_revision.value() != 0 ||
                       o.min_create_revision.value() != 0 || o.max_create_revision.value() != 0;
  return o.sort_target == SortTarget::kKey && o.sort_order != SortOrder::kDescend && !filters &&
         !o.keys_only;
}

}  // namespace

Result<EncodedRange> Store::RangeEncoded(const RangeOptions& opts) const {
  EncodedRange out;
  if (!StoredRecordsServe(opts)) {
    ASSIGN_OR_RETURN(RangeResult rr, Range(opts));
    out.more = rr.more;
    out.count = rr.count;
    out.revision = rr.revision;
    out.kvs.reserve(rr.kvs.size());
    for (const KeyValue& kv : rr.kvs)
      out.kvs.push_back(out.owned_.emplace_back(EncodeKeyValue(kv)));
    return out;
  }
  // What the index names, copied under the lock: keys back to back in `keys` (the index's own
  // strings may go once the lock is dropped), and the record itself when it is still pending.
  struct Wanted {
    size_t key_end;  // the key is keys[previous key_end, key_end)
    RevisionPair rev;
    const std::string* pending;  // into out.owned_, or null: in the snapshot
  };
  std::string keys;
  std::vector<Wanted> wanted;
  {
    std::shared_lock lock(mu_);
    const int64_t current = current_rev_.load();
    ASSIGN_OR_RETURN(const int64_t at, ReadRevision(opts, current));
    out.revision = Revision(current);
    std::vector<Hit> hits =
        IndexRange(opts.key, opts.range_end, at, VersionsToRead(opts), &out.count);
    wanted.reserve(hits.size());
    bool all_pending = true;
    for (const Hit& hit : hits) {
      keys += *hit.key;
      const std::string* pending = nullptr;
      if (!pending_.empty()) {
        auto it = pending_.find(EncodeRevisionKey(hit.rev, false));
        if (it != pending_.end()) pending = &out.owned_.emplace_back(it->second);
      }
      all_pending = all_pending && pending != nullptr;
      wanted.push_back(Wanted{keys.size(), hit.rev, pending});
    }
    // Opened under the lock, the snapshot holds every committed version the index named.
    if (!all_pending) {
      ASSIGN_OR_RETURN(out.snapshot_, backend_->BeginRead());
    }
  }
  out.kvs.reserve(wanted.size());
  size_t key_begin = 0;
  for (const Wanted& w : wanted) {
    std::string_view record;
    if (w.pending != nullptr) {
      record = *w.pending;
    } else {
      ASSIGN_OR_RETURN(std::optional<std::string_view> v,
                       out.snapshot_->GetView(kKeyBucket, EncodeRevisionKey(w.rev, false)));
      if (!v) return Corruption("mvcc: missing version at revision " + std::to_string(w.rev.main));
      record = *v;
    }
    // The same check as a decoded read: the record is the version the index named.
    ASSIGN_OR_RETURN(KeyValueView kv, DecodeKeyValueView(record));
    const std::string_view key(keys.data() + key_begin, w.key_end - key_begin);
    if (kv.key != key || kv.mod_revision.value() != w.rev.main) {
      return Corruption("mvcc: version at revision " + std::to_string(w.rev.main) +
                        " does not match the index");
    }
    out.kvs.push_back(record);
    key_begin = w.key_end;
  }
  // As ShapeRange: one version past the limit was read to learn whether there is more.
  if (opts.limit > 0 && static_cast<int64_t>(out.kvs.size()) > opts.limit) {
    out.kvs.resize(static_cast<size_t>(opts.limit));
    out.more = true;
  }
  return out;
}

std::unique_ptr<Store::ReadTxn> Store::BeginRead() const {
  return std::unique_ptr<ReadTxn>(new ReadTxn(this, std::shared_lock(mu_)));
}

Store::ReadTxn::ReadTxn(const Store* store, std::shared_lock<RwLock> lock)
    : store_(store), lock_(std::move(lock)), revision_(store->current_rev_.load()) {}

Result<RangeResult> Store::ReadTxn::Range(const RangeOptions& opts) {
  // The backend snapshot is opened under the lock, so it holds every committed version the
  // index can name; pending_ holds the rest.
  ValueReader read = [this](RevisionPair rev) -> Result<std::string> {
    std::string rk = EncodeRevisionKey(rev, false);
    if (auto it = store_->pending_.find(rk); it != store_->pending_.end()) return it->second;
    if (!snapshot_) {
      ASSIGN_OR_RETURN(snapshot_, store_->backend_->BeginRead());
    }
    ASSIGN_OR_RETURN(std::optional<std::string> v, snapshot_->Get(kKeyBucket, rk));
    if (!v) return Corruption("mvcc: missing version at revision " + std::to_string(rev.main));
    return std::move(*v);
  };
  return store_->RangeAt(opts, revision_, read);
}

// ---------------------------------------------------------------- HashKv

Result<std::unique_ptr<backend::ReadTxn>> Store::SnapshotWithPending(std::string_view from_key,
                                                                     std::string_view to_key,
                                                                     PendingCopy* pending) const {
  pending->insert(pending_.lower_bound(from_key), pending_.lower_bound(to_key));
  return backend_->BeginRead();
}

Status Store::MergedScan(backend::ReadTxn& snapshot, const PendingCopy& pending,
                         std::string_view from_key, std::string_view to_key,
                         const std::function<bool(std::string_view, std::string_view)>& fn) {
  // A version can be in both (its batch committed after the copy); it counts once.
  auto next = pending.begin();
  bool stopped = false;
  RETURN_IF_ERROR(
      snapshot.Scan(kKeyBucket, from_key, to_key, [&](std::string_view k, std::string_view v) {
        for (; next != pending.end() && std::string_view(next->first) <= k; ++next) {
          if (next->first != k && !fn(next->first, next->second)) {
            stopped = true;
            return false;
          }
        }
        if (!fn(k, v)) {
          stopped = true;
          return false;
        }
        return true;
      }));
  for (; !stopped && next != pending.end(); ++next) {
    if (!fn(next->first, next->second)) break;
  }
  return OkStatus();
}

Result<Store::HashKvResult> Store::HashKv(Revision rev) const {
  std::set<RevisionPair> keep;
  PendingCopy pending;
  std::unique_ptr<backend::ReadTxn> snapshot;
  int64_t at = rev.value(), compacted = 0;
  std::string end;
  {
    std::shared_lock lock(mu_);
    compacted = compact_rev_.load();
    const int64_t current = current_rev_.load();
    if (at > 0 && at <= compacted) return CompactedError(at, compacted);
    if (at > current) return FutureError(at, current);
    if (at <= 0) at = current;
    for (const auto& [key, ki] : index_) ki.Keep(at, &keep);
    end = EncodeRevisionKey({at + 1, 0}, false);
    ASSIGN_OR_RETURN(snapshot, SnapshotWithPending("", end, &pending));
  }
  // From here on the snapshot plus the copied pending versions are a consistent picture, even
  // if the apply thread commits or compacts meanwhile.
  uint32_t crc = crc32c::Value(kKeyBucket);
  Status error;
  RETURN_IF_ERROR(MergedScan(*snapshot, pending, "", end, [&](auto k, auto v) {
    std::optional<DecodedRevisionKey> rk = DecodeRevisionKey(k);
    if (!rk) {
      error = Corruption("mvcc key bucket: malformed revision key");
      return false;
    }
    // Versions at or below the compact revision count only if compaction keeps them; this also
    // hides versions whose deletion by a compaction is not committed yet.
    if (rk->rev.main <= compacted && !keep.contains(rk->rev)) return true;
    crc = crc32c::Extend(crc, k.data(), k.size());
    crc = crc32c::Extend(crc, v.data(), v.size());
    return true;
  }));
  RETURN_IF_ERROR(error);
  return HashKvResult{crc, Revision(compacted), Revision(at)};
}

// ---------------------------------------------------------------- Events

Result<Store::EventsResult> Store::Events(Revision from, Revision to, size_t max_events) const {
  if (from.value() < 1) return InvalidArgument("events must start at revision 1 or later");
  PendingCopy pending;
  std::unique_ptr<backend::ReadTxn> snapshot;
  std::set<RevisionPair> keep;
  int64_t last = 0, compacted = 0;
  std::string begin_key, end_key;
  {
    std::shared_lock lock(mu_);
    compacted = compact_rev_.load();
    if (from.value() < compacted) return CompactedError(from.value(), compacted);
    last = current_rev_.load();
    if (to.value() > 0 && to.value() < last) last = to.value();
    if (from.value() > last) return EventsResult{{}, from};
    // Versions at the compact revision itself survive only if compaction kept them; the
    // snapshot may still hold ones an uncommitted compaction deleted.
    if (from.value() == compacted) {
      for (const auto& [key, ki] : index_) ki.Keep(compacted, &keep);
    }
    begin_key = EncodeRevisionKey({from.value(), 0}, false);
    end_key = EncodeRevisionKey({last + 1, 0}, false);
    ASSIGN_OR_RETURN(snapshot, SnapshotWithPending(begin_key, end_key, &pending));
  }
  EventsResult result{{}, Revision(last + 1)};
  Status error;
  RETURN_IF_ERROR(MergedScan(*snapshot, pending, begin_key, end_key, [&](auto k, auto v) {
    std::optional<DecodedRevisionKey> rk = DecodeRevisionKey(k);
    if (!rk) {
      error = Corruption("mvcc key bucket: malformed revision key");
      return false;
    }
    if (!result.events.empty() && result.events.size() >= max_events &&
        rk->rev.main != result.events.back().kv.mod_revision.value()) {
      result.next = Revision(rk->rev.main);
      return false;
    }
    if (rk->rev.main == compacted && !keep.contains(rk->rev)) return true;
    Result<KeyValue> kv = DecodeKeyValue(v);
    if (!kv.ok()) {
      error = kv.status();
      return false;
    }
    Event event;
    event.kv = std::move(kv).value();
    if (rk->tombstone) {
      event.type = Event::Type::kDelete;
      event.kv.mod_revision = Revision(rk->rev.main);
    }
    result.events.push_back(std::move(event));
    return true;
  }));
  RETURN_IF_ERROR(error);
  return result;
}

// ---------------------------------------------------------------- writing

Status Store::Poison(Status status) {
  CHECK(!status.ok());
  if (write_error_.ok()) {
    write_error_ = Status(status.code(),
                          "mvcc store needs reopening after a failed write: " + status.message());
  }
  return status;
}

Status Store::EnsureBatch() {
  RETURN_IF_ERROR(write_error_);
  if (batch_) return OkStatus();
  Result<std::unique_ptr<backend::WriteTxn>> txn = backend_->BeginWrite();
  if (!txn.ok()) return Poison(txn.status());
  batch_ = std::move(txn).value();
  return OkStatus();
}

std::unique_ptr<Store::WriteTxn> Store::BeginWrite() {
  CHECK(!write_open_) << "only one WriteTxn at a time";
  // Open the batch before taking mu_, so the backend's writer lock (held for the whole batch) is
  // always taken before mu_, never after. A failure is sticky and the txn's operations report it.
  EnsureBatch().IgnoreError();
  write_open_ = true;
  return std::unique_ptr<WriteTxn>(new WriteTxn(this, std::unique_lock(mu_)));
}

Store::WriteTxn::WriteTxn(Store* store, std::unique_lock<RwLock> lock)
    : store_(store), lock_(std::move(lock)), begin_rev_(store->current_rev_.load()) {}

Store::WriteTxn::~WriteTxn() {
  if (!ended_) End();
}

Revision Store::WriteTxn::End() {
  CHECK(!ended_) << "WriteTxn ended twice";
  ended_ = true;
  if (changes_ > 0) store_->current_rev_ = begin_rev_ + 1;
  lock_.unlock();
  store_->write_open_ = false;
  return Revision(store_->current_rev_.load());
}

Result<RangeResult> Store::WriteTxn::Range(const RangeOptions& opts) {
  CHECK(!ended_);
  RETURN_IF_ERROR(store_->EnsureBatch());
  backend::WriteTxn* batch = store_->batch_.get();
  ValueReader read = [batch](RevisionPair rev) -> Result<std::string> {
    ASSIGN_OR_RETURN(std::optional<std::string> v,
                     batch->Get(kKeyBucket, EncodeRevisionKey(rev, false)));
    if (!v) return Corruption("mvcc: missing version at revision " + std::to_string(rev.main));
    return std::move(*v);
  };
  return store_->RangeAt(opts, ReadRevision(), read);
}

Status Store::WriteTxn::WriteVersion(const KeyValue& kv, RevisionPair rev, bool tombstone) {
  std::string rk = EncodeRevisionKey(rev, tombstone);
  std::string value = EncodeKeyValue(kv);
  Status s = store_->batch_->Put(kKeyBucket, rk, value);
  if (!s.ok()) return store_->Poison(s);
  store_->pending_.insert_or_assign(std::move(rk), std::move(value));
  return OkStatus();
}

Result<Store::WriteTxn::PutResult> Store::WriteTxn::Put(std::string_view key,
                                                        std::string_view value, LeaseId lease) {
  CHECK(!ended_);
  if (key.empty()) return Status(Code::kEmptyKey, "key is not provided");
  RETURN_IF_ERROR(store_->EnsureBatch());
  PutResult result;
  const RevisionPair rev{begin_rev_ + 1, changes_};
  KeyValue kv{
      std::string(key), Revision(rev.main), Revision(rev.main), 1, std::string(value), lease};
  // The index knows the live version's create revision and version: no backend read (etcd
  // keeps the same in its key index).
  auto it = store_->index_.find(key);
  if (it != store_->index_.end() && it->second.LiveNow()) {
    std::optional<KeyIndex::Found> live = it->second.Get(ReadRevision());
    CHECK(live.has_value()) << "a live key without a visible version";
    result.prev = PutResult::Replaced{live->created, Revision(live->rev.main), live->version};
    kv.create_revision = live->created;
    kv.version = live->version + 1;
  }
  RETURN_IF_ERROR(WriteVersion(kv, rev, /*tombstone=*/false));
  events_.push_back(Event{Event::Type::kPut, std::move(kv)});
  if (it == store_->index_.end()) it = store_->index_.emplace(std::string(key), KeyIndex()).first;
  it->second.Put(rev);
  ++changes_;
  return result;
}

Result<Store::WriteTxn::DeleteResult> Store::WriteTxn::DeleteRange(std::string_view key,
                                                                   std::string_view range_end) {
  CHECK(!ended_);
  RETURN_IF_ERROR(store_->EnsureBatch());
  RangeOptions live;
  live.key = std::string(key);
  live.range_end = std::string(range_end);
  ASSIGN_OR_RETURN(RangeResult existing, Range(live));
  DeleteResult result;
  for (KeyValue& prev : existing.kvs) {
    const RevisionPair rev{begin_rev_ + 1, changes_};
    KeyValue tombstone;
    tombstone.key = prev.key;
    RETURN_IF_ERROR(WriteVersion(tombstone, rev, /*tombstone=*/true));
    tombstone.mod_revision = Revision(rev.main);
    events_.push_back(Event{Event::Type::kDelete, std::move(tombstone)});
    auto it = store_->index_.find(prev.key);
    CHECK(it != store_->index_.end()) << "deleting a key missing from the index";
    it->second.Tombstone(rev);
    ++changes_;
    result.prev_kvs.push_back(std::move(prev));
  }
  result.deleted = static_cast<int64_t>(result.prev_kvs.size());
  return result;
}

// ---------------------------------------------------------------- compaction and commit

Status Store::Compact(Revision rev) {
  CHECK(!write_open_) << "Compact while a WriteTxn is open";
  RETURN_IF_ERROR(write_error_);
  const int64_t at = rev.value();
  std::set<RevisionPair> keep;
  {
    std::unique_lock lock(mu_);
    if (at <= compact_rev_.load()) return CompactedError(at, compact_rev_.load());
    if (at > current_rev_.load()) return FutureError(at, current_rev_.load());
    for (auto it = index_.begin(); it != index_.end();) {
      it = it->second.Compact(at, &keep) ? index_.erase(it) : std::next(it);
    }
    compact_rev_ = at;
    // Pending versions the compaction drops will never be read again; free them now.
    const std::string upper = EncodeRevisionKey({at + 1, 0}, false);
    for (auto it = pending_.begin(); it != pending_.end() && it->first < upper;) {
      auto rk = DecodeRevisionKey(it->first);
      CHECK(rk.has_value());
      it = keep.contains(rk->rev) ? std::next(it) : pending_.erase(it);
    }
  }
  // Readers no longer ask for what is deleted below, so this runs without the lock.
  RETURN_IF_ERROR(EnsureBatch());
  RETURN_IF_ERROR(DeleteCompacted(at, keep));
  Status s = batch_->Put(kMetaBucket, kCompactRevisionKey, EncodeUint64(static_cast<uint64_t>(at)));
  if (!s.ok()) return Poison(s);
  return OkStatus();
}

Status Store::DeleteCompacted(int64_t at, const std::set<RevisionPair>& keep) {
  const std::string end = EncodeRevisionKey({at + 1, 0}, false);
  std::string start;
  for (;;) {
    std::vector<std::string> doomed;
    bool more = false;
    Status error;
    Status s = batch_->Scan(kKeyBucket, start, end, [&](std::string_view k, std::string_view) {
      if (doomed.size() >= kCompactionChunk) {
        start = std::string(k);
        more = true;
        return false;
      }
      std::optional<DecodedRevisionKey> rk = DecodeRevisionKey(k);
      if (!rk) {
        error = Corruption("mvcc key bucket: malformed revision key during compaction");
        return false;
      }
      if (!keep.contains(rk->rev)) doomed.emplace_back(k);
      return true;
    });
    if (!s.ok()) return Poison(s);
    if (!error.ok()) return Poison(error);
    for (const std::string& k : doomed) {
      Status d = batch_->Delete(kKeyBucket, k);
      if (!d.ok()) return Poison(d);
    }
    if (!more) return OkStatus();
  }
}

Status Store::Commit(Index applied_index) {
  CHECK(!write_open_) << "Commit while a WriteTxn is open";
  RETURN_IF_ERROR(EnsureBatch());
  Status s = batch_->Put(kMetaBucket, kConsistentIndexKey, EncodeUint64(applied_index.value()));
  if (s.ok() && !format_written_) {
    s = batch_->Put(kMetaBucket, kFormatVersionKey, EncodeUint64(kFormatVersion));
  }
  if (s.ok()) s = batch_->Commit();
  batch_.reset();
  if (!s.ok()) return Poison(s);
  // The backend now holds every pending version; readers that start after this find them there.
  // A batch spans many turns (thousands of versions): the map is freed after the lock is let go,
  // so readers wait only for the swap.
  std::map<std::string, std::string, std::less<>> committed;
  {
    std::unique_lock lock(mu_);
    committed.swap(pending_);
    consistent_index_ = applied_index.value();
  }
  format_written_ = true;
  return OkStatus();
}

Status Store::Sync() { return backend_->Sync(); }

Result<backend::WriteTxn*> Store::BatchTxn() {
  CHECK(!write_open_) << "BatchTxn while a WriteTxn is open";
  RETURN_IF_ERROR(EnsureBatch());
  return batch_.get();
}

}  // namespace dolmen::mvcc
