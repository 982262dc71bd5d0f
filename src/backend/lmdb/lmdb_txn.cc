#include "backend/lmdb/lmdb_txn.h"

#include "backend/lmdb/lmdb_backend_impl.h"

namespace dolmen::backend::lmdb_internal {

LmdbWriteTxn::LmdbWriteTxn(LmdbBackend* backend, std::shared_ptr<LiveEnv> env, MDB_txn* txn,
                           std::shared_ptr<Journal> journal)
    : LmdbTxnBase(txn, &backend->file()),
      backend_(backend),
      env_(std::move(env)),
      dbis_(backend->dbis()),
      journal_(std::move(journal)) {}
LmdbWriteTxn::~LmdbWriteTxn() {
  // Aborting closes the handles this txn opened, which is why they were never published.
  if (!done_) {
    mdb_txn_abort(txn_);
    backend_->WriterDone();
  }
}

Status LmdbWriteTxn::Commit() {
  RETURN_IF_ERROR(CheckOpen());
  done_ = true;
  // mdb_txn_commit frees the txn whatever its outcome.
  int rc = created_.empty() ? mdb_txn_commit(txn_) : backend_->CommitAndPublish(txn_, created_);
  if (rc == 0) backend_->RefreshSizes(/*rewritten=*/false);
  if (rc == 0 && journal_ != nullptr) backend_->AppendToJournal(*journal_, std::move(ops_));
  backend_->WriterDone();
  if (rc != 0) return FromMdb(rc, "commit", *file_);
  return OkStatus();
}

}  // namespace dolmen::backend::lmdb_internal
