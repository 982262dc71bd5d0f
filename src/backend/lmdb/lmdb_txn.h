// The backend's read and write transactions on LMDB. Internal to this folder.
#pragma once

#include <lmdb.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/lmdb/journal.h"
#include "backend/lmdb/lmdb_env.h"

namespace dolmen::backend::lmdb_internal {

class LmdbBackend;

// Shared by read and write txns: Get and Scan given a txn and a handle lookup.
class LmdbTxnBase {
 protected:
  LmdbTxnBase(MDB_txn* txn, const std::string* file) : txn_(txn), file_(file) {}

  Result<std::optional<std::string>> GetIn(std::optional<MDB_dbi> dbi, std::string_view key) {
    ASSIGN_OR_RETURN(std::optional<std::string_view> v, GetViewIn(dbi, key));
    if (!v) return std::optional<std::string>();
    return std::optional<std::string>(std::string(*v));
  }

  // LMDB's own pointer into the map: valid until the txn ends (or, in a write txn, its next
  // write), which is the contract of ReadTxn::GetView.
  Result<std::optional<std::string_view>> GetViewIn(std::optional<MDB_dbi> dbi,
                                                    std::string_view key) {
    if (!dbi || key.empty() || key.size() > kMaxKeyBytes) {
      return std::optional<std::string_view>();
    }
    MDB_val k = ToVal(key);
    MDB_val v;
    int rc = mdb_get(txn_, *dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
    if (rc != 0) return FromMdb(rc, "get", *file_);
    return std::optional<std::string_view>(FromVal(v));
  }

  Status ScanIn(std::optional<MDB_dbi> dbi, std::string_view start, std::string_view end,
                const std::function<bool(std::string_view, std::string_view)>& fn) {
    if (!dbi) return OkStatus();
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, *dbi, &cursor);
    if (rc != 0) return FromMdb(rc, "cursor open", *file_);
    MDB_val k = ToVal(start);
    MDB_val v;
    // LMDB rejects an empty search key, so "from the start" is MDB_FIRST.
    rc = mdb_cursor_get(cursor, &k, &v, start.empty() ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0) {
      std::string_view key = FromVal(k);
      if (!end.empty() && key >= end) break;
      if (!fn(key, FromVal(v))) break;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) return FromMdb(rc, "scan", *file_);
    return OkStatus();
  }

  MDB_txn* txn_;
  const std::string* file_;
};

class LmdbReadTxn final : public ReadTxn, private LmdbTxnBase {
 public:
  // `txn` began in `env`, which this txn keeps open until it ends.
  LmdbReadTxn(MDB_txn* txn, std::shared_ptr<const DbiMap> dbis, const std::string* file,
              std::shared_ptr<LiveEnv> env)
      : LmdbTxnBase(txn, file), dbis_(std::move(dbis)), env_(std::move(env)) {}
  ~LmdbReadTxn() override { mdb_txn_abort(txn_); }

  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    return GetIn(Lookup(*dbis_, bucket), key);
  }
  Result<std::optional<std::string_view>> GetView(std::string_view bucket,
                                                  std::string_view key) override {
    return GetViewIn(Lookup(*dbis_, bucket), key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return ScanIn(Lookup(*dbis_, bucket), start, end, fn);
  }
  // The handle map taken with the snapshot names exactly its buckets (see BeginRead).
  Result<std::vector<std::string>> Buckets() override { return NamesOf(*dbis_); }

 private:
  std::shared_ptr<const DbiMap> dbis_;
  std::shared_ptr<LiveEnv> env_;
};

class LmdbWriteTxn final : public WriteTxn, private LmdbTxnBase {
 public:
  LmdbWriteTxn(LmdbBackend* backend, std::shared_ptr<LiveEnv> env, MDB_txn* txn,
               std::shared_ptr<Journal> journal);
  ~LmdbWriteTxn() override;

  Result<std::optional<std::string>> Get(std::string_view bucket, std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    return GetIn(Find(bucket), key);
  }
  Result<std::optional<std::string_view>> GetView(std::string_view bucket,
                                                  std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    return GetViewIn(Find(bucket), key);
  }
  Status Scan(std::string_view bucket, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    RETURN_IF_ERROR(CheckOpen());
    return ScanIn(Find(bucket), start, end, fn);
  }
  Status Put(std::string_view bucket, std::string_view key, std::string_view value) override {
    RETURN_IF_ERROR(CheckOpen());
    if (key.empty() || key.size() > kMaxKeyBytes) {
      return InvalidArgument("backend key must be 1.." + std::to_string(kMaxKeyBytes) + " bytes");
    }
    ASSIGN_OR_RETURN(MDB_dbi dbi, FindOrCreate(bucket));
    MDB_val k = ToVal(key);
    MDB_val v = ToVal(value);
    int rc = mdb_put(txn_, dbi, &k, &v, 0);
    if (rc != 0) return FromMdb(rc, "put", *file_);
    Record(JournalOp::Kind::kPut, bucket, key, value);
    return OkStatus();
  }
  Status Delete(std::string_view bucket, std::string_view key) override {
    RETURN_IF_ERROR(CheckOpen());
    std::optional<MDB_dbi> dbi = Find(bucket);
    if (!dbi || key.empty() || key.size() > kMaxKeyBytes) return OkStatus();
    MDB_val k = ToVal(key);
    int rc = mdb_del(txn_, *dbi, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) return FromMdb(rc, "delete", *file_);
    Record(JournalOp::Kind::kDelete, bucket, key, {});
    return OkStatus();
  }
  Status ClearBucket(std::string_view bucket) override {
    RETURN_IF_ERROR(CheckOpen());
    std::optional<MDB_dbi> dbi = Find(bucket);
    if (!dbi) return OkStatus();
    int rc = mdb_drop(txn_, *dbi, 0);  // 0: empty it, keep the handle valid
    if (rc != 0) return FromMdb(rc, "clear bucket " + std::string(bucket), *file_);
    Record(JournalOp::Kind::kClearBucket, bucket, {}, {});
    return OkStatus();
  }
  Result<std::vector<std::string>> Buckets() override {
    RETURN_IF_ERROR(CheckOpen());
    std::vector<std::string> names = NamesOf(*dbis_);
    for (const auto& [name, dbi] : created_) names.push_back(name);
    std::sort(names.begin(), names.end());
    return names;
  }
  Status Commit() override;

 private:
  Status CheckOpen() const {
    if (done_) return Status(Code::kFailedPrecondition, "write txn already committed");
    return OkStatus();
  }
  std::optional<MDB_dbi> Find(std::string_view bucket) const {
    if (auto dbi = Lookup(*dbis_, bucket)) return dbi;
    return Lookup(created_, bucket);
  }
  Result<MDB_dbi> FindOrCreate(std::string_view bucket) {
    if (auto dbi = Find(bucket)) return *dbi;
    // Only write txns open handles after startup, and they are serialized, which is what LMDB
    // requires of mdb_dbi_open.
    std::string name(bucket);
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn_, name.c_str(), MDB_CREATE, &dbi);
    if (rc != 0) return FromMdb(rc, "create bucket " + name, *file_);
    created_.emplace(std::move(name), dbi);
    return dbi;
  }

  // While a defragmentation is prepared, keeps what this txn wrote for its journal.
  void Record(JournalOp::Kind kind, std::string_view bucket, std::string_view key,
              std::string_view value) {
    if (journal_ == nullptr) return;
    ops_.push_back(JournalOp{kind, std::string(bucket), std::string(key), std::string(value)});
  }

  LmdbBackend* backend_;
  std::shared_ptr<LiveEnv> env_;  // the environment `txn_` began in (never replaced meanwhile)
  std::shared_ptr<const DbiMap> dbis_;
  DbiMap created_;  // buckets created by this txn, published on commit
  bool done_ = false;
  std::shared_ptr<Journal> journal_;  // null unless a defragmentation was prepared at begin
  std::vector<JournalOp> ops_;
};

}  // namespace dolmen::backend::lmdb_internal
