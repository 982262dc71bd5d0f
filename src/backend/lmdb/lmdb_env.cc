#include "backend/lmdb/lmdb_env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "log/log.h"

namespace dolmen::backend::lmdb_internal {

// Turns an LMDB error into a Status; `file` names the data file so operators know what broke.
Status FromMdb(int rc, std::string_view what, const std::string& file) {
  std::string message = "lmdb file " + file + ": " + std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
      return Status(Code::kNoSpace, std::move(message));
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
      return Corruption(std::move(message));
    case MDB_BAD_VALSIZE:
      return InvalidArgument(std::move(message));
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
    case MDB_TXN_FULL:
    case MDB_MAP_RESIZED:
      return Status(Code::kResourceExhausted, std::move(message));
    default:
      return IoError(std::move(message));
  }
}

std::vector<std::string> NamesOf(const DbiMap& map) {
  std::vector<std::string> names;
  for (const auto& [name, dbi] : map) names.push_back(name);
  return names;
}

std::optional<MDB_dbi> Lookup(const DbiMap& map, std::string_view bucket) {
  auto it = map.find(bucket);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

Result<DbiMap> OpenExistingBuckets(MDB_env* env, const std::string& file) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return FromMdb(rc, "begin txn", file);
  MDB_dbi main_dbi;
  rc = mdb_dbi_open(txn, nullptr, 0, &main_dbi);
  MDB_cursor* cursor = nullptr;
  if (rc == 0) rc = mdb_cursor_open(txn, main_dbi, &cursor);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return FromMdb(rc, "open main database", file);
  }
  DbiMap dbis;
  MDB_val k, v;
  while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) == 0) {
    std::string name(FromVal(k));
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi);
    if (rc != 0) break;
    dbis.emplace(std::move(name), dbi);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return FromMdb(rc, "open buckets", file);
  }
  // Committing a read txn is what makes its handles shared by the environment.
  rc = mdb_txn_commit(txn);
  if (rc != 0) return FromMdb(rc, "open buckets", file);
  return dbis;
}

Result<MDB_env*> OpenRawEnv(const EnvSpec& spec) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return FromMdb(rc, "create env", spec.file);
  if (rc == 0) rc = mdb_env_set_mapsize(env, spec.options.map_size_bytes);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, kMaxBuckets);
  if (rc == 0) rc = mdb_env_set_maxreaders(env, kMaxReaders);
  if (rc == 0) rc = mdb_env_open(env, spec.path.c_str(), spec.flags, 0600);
  if (rc != 0) {
    mdb_env_close(env);
    return FromMdb(rc, "open", spec.file);
  }
  return env;
}

LiveEnv::~LiveEnv() {
  mdb_env_close(env);
  if (!own_lock_file.empty()) ::unlink(own_lock_file.c_str());
}

Status SyncParentDir(const std::string& file) {
  std::string dir = file.substr(0, file.rfind('/') == std::string::npos ? 0 : file.rfind('/'));
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError("fsync directory " + dir + ": " + std::strerror(err));
  return OkStatus();
}

Status RemoveDefragmentLeftovers(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return IoError("open directory " + dir + ": " + std::strerror(errno));
  std::vector<std::string> leftovers;
  while (const struct dirent* entry = ::readdir(d)) {
    if (std::string_view(entry->d_name).starts_with(kDefragmentCopyPrefix)) {
      leftovers.emplace_back(entry->d_name);
    }
  }
  ::closedir(d);
  for (const std::string& name : leftovers) {
    const std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return IoError("remove " + path + ": " + std::strerror(errno));
    }
  }
  return OkStatus();
}

// A data file that holds only zero bytes never had a commit reach the disk: LMDB writes its
// meta pages (never zero) at the first commit, and a power cut before that commit was synced
// can leave the file's size on disk with none of its bytes (found by the power-loss tester on
// a member's very first start). It holds nothing, so it is removed and created again, where
// LMDB would refuse it as "not an LMDB file". Any non-zero byte leaves the file to LMDB.
Status RemoveIfNeverCommitted(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return OkStatus();
    return IoError("open " + file + ": " + std::strerror(errno));
  }
  struct stat st;
  bool zeros = ::fstat(fd, &st) == 0 && st.st_size > 0;
  char buf[1 << 16];
  // Bounded: a data file of real size is never all zeros after a commit, so read at most 16 MiB.
  constexpr off_t kMaxScan = 16 << 20;
  for (off_t at = 0; zeros && at < st.st_size; at += sizeof buf) {
    if (at >= kMaxScan) {
      zeros = false;
      break;
    }
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) {
      zeros = false;
      break;
    }
    zeros = std::all_of(buf, buf + n, [](char c) { return c == 0; });
  }
  ::close(fd);
  if (!zeros) return OkStatus();
  log::Warn(
      "the backend file holds only zero bytes (no commit ever reached the disk, e.g. a power cut "
      "during the first start): creating it again",
      {{"path", file}});
  if (::unlink(file.c_str()) != 0) return IoError("unlink " + file + ": " + std::strerror(errno));
  return OkStatus();
}

}  // namespace dolmen::backend::lmdb_internal
