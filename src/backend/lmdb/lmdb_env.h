// The LMDB environment beneath the backend (lmdb_backend.h): how one is opened, how LMDB's
// errors become Statuses, and the bucket handles. Internal to this folder.
#pragma once

#include <lmdb.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"

namespace dolmen::backend::lmdb_internal {

// Named databases are few (mvcc, lease, auth, a meta bucket each); the limit only sizes a table.
constexpr MDB_dbi kMaxBuckets = 32;
// Every concurrent read txn takes a reader slot; gRPC threads are bounded well below this.
constexpr unsigned int kMaxReaders = 1024;

// Committed bucket handles. Immutable once published, so readers share them without locking.
using DbiMap = std::map<std::string, MDB_dbi, std::less<>>;

inline MDB_val ToVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view FromVal(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Turns an LMDB error into a Status; `file` names the data file so operators know what broke.
Status FromMdb(int rc, std::string_view what, const std::string& file);

std::vector<std::string> NamesOf(const DbiMap& map);
std::optional<MDB_dbi> Lookup(const DbiMap& map, std::string_view bucket);

// How an environment was opened, so Defragment can open it again the same way.
struct EnvSpec {
  std::string path;  // what mdb_env_open takes: the directory, or the file with MDB_NOSUBDIR
  std::string file;  // the data file
  unsigned int flags = 0;
  Options options;
};

Result<MDB_env*> OpenRawEnv(const EnvSpec& spec);

// An open environment, shared by the backend and every txn begun in it, and closed when the
// last of them lets go: a defragmentation replaces the backend's environment while readers
// that began in the old one still read it (docs/maintenance.md, "The swap"). An environment
// that was a defragmentation's copy has a lock file of its own, removed with it.
struct LiveEnv {
  LiveEnv(MDB_env* e, std::string lock_file) : env(e), own_lock_file(std::move(lock_file)) {}
  ~LiveEnv();
  LiveEnv(const LiveEnv&) = delete;
  LiveEnv& operator=(const LiveEnv&) = delete;

  MDB_env* const env;
  const std::string own_lock_file;  // empty: the data directory's lock.mdb, left in place
};
// Opens a handle for every bucket that already exists, so readers never call mdb_dbi_open.
Result<DbiMap> OpenExistingBuckets(MDB_env* env, const std::string& file);
// fsyncs the directory holding `file` (after a rename into it).
Status SyncParentDir(const std::string& file);
// Every defragmentation copy (and its lock file) in `dir`: what a crash before a copy was
// renamed into place leaves; the data file is then the old one, whole.
Status RemoveDefragmentLeftovers(const std::string& dir);
inline constexpr std::string_view kDefragmentCopyPrefix = "data.mdb.defrag";
// A data file of zero bytes only is removed (see the definition for why).
Status RemoveIfNeverCommitted(const std::string& file);

}  // namespace dolmen::backend::lmdb_internal
