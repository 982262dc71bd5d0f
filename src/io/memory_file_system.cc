#include "io/memory_file_system.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace dolmen::io {
namespace {

// "a//b/" -> "a/b". Paths are compared as strings, so they must be spelled one way.
std::string Normalize(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

struct Node {
  std::string data;     // what reads see now
  std::string durable;  // content as of the last Sync
  uint64_t preallocated = 0;
};

// Shared by the file system and its handles, so a handle that outlives the file system (or a
// crash) fails cleanly instead of dangling.
struct State {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Node>> files;          // the live namespace
  std::map<std::string, std::shared_ptr<Node>> durable_files;  // names as of the last SyncDir
  std::set<std::string> dirs;
  std::map<std::string, uint64_t> locks;  // path -> holder id
  uint64_t next_lock_id = 1;
  uint64_t generation = 0;  // bumped by Crash; handles from an older generation are stale

  bool DirExists(const std::string& dir) const {
    return dir == "." || dir == "/" || dirs.count(dir) > 0;
  }
};

Status Stale(const std::string& path) {
  return IoError("memory fs: handle for " + path + " is stale after a simulated crash");
}

class MemoryWritableFile final : public WritableFile {
 public:
  MemoryWritableFile(std::shared_ptr<State> state, std::shared_ptr<Node> node, std::string path)
      : state_(std::move(state)),
        node_(std::move(node)),
        path_(std::move(path)),
        generation_(state_->generation) {}

  Status Append(std::string_view data) override {
    std::lock_guard lock(state_->mu);
    RETURN_IF_ERROR(Usable());
    node_->data.append(data);
    return OkStatus();
  }

  Status Sync() override {
    std::lock_guard lock(state_->mu);
    RETURN_IF_ERROR(Usable());
    node_->durable = node_->data;
    return OkStatus();
  }

  Status Close() override {
    std::lock_guard lock(state_->mu);
    RETURN_IF_ERROR(Usable());
    closed_ = true;
    return OkStatus();
  }

  uint64_t Size() const override {
    std::lock_guard lock(state_->mu);
    return node_->data.size();
  }

  Status Preallocate(uint64_t bytes) override {
    std::lock_guard lock(state_->mu);
    RETURN_IF_ERROR(Usable());
    node_->preallocated = bytes;
    return OkStatus();
  }

  // Reads never see the reservation here (the WAL's handling of zero tails is tested on the
  // scanner and on the POSIX file system), so giving it back only forgets it.
  Status TrimPreallocation() override {
    std::lock_guard lock(state_->mu);
    RETURN_IF_ERROR(Usable());
    node_->preallocated = 0;
    return OkStatus();
  }

 private:
  Status Usable() const {
    if (closed_) return IoError("memory fs: " + path_ + " is closed");
    if (generation_ != state_->generation) return Stale(path_);
    return OkStatus();
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<Node> node_;
  std::string path_;
  uint64_t generation_;
  bool closed_ = false;
};

class MemoryFileLock final : public FileLock {
 public:
  MemoryFileLock(std::shared_ptr<State> state, std::string path, uint64_t id)
      : state_(std::move(state)), path_(std::move(path)), id_(id) {}
  ~MemoryFileLock() override {
    std::lock_guard lock(state_->mu);
    // After a crash the lock may belong to a new holder; only release our own.
    auto it = state_->locks.find(path_);
    if (it != state_->locks.end() && it->second == id_) state_->locks.erase(it);
  }
  const std::string& path() const override { return path_; }

 private:
  std::shared_ptr<State> state_;
  std::string path_;
  uint64_t id_;
};

class MemoryFileSystemImpl final : public MemoryFileSystem {
 public:
  MemoryFileSystemImpl() : state_(std::make_shared<State>()) {}

  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& raw) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    if (!state_->DirExists(DirName(path))) return NotFound("memory fs: no directory for " + path);
    if (state_->dirs.count(path)) return IoError("memory fs: " + path + " is a directory");
    auto& node = state_->files[path];
    if (!node) node = std::make_shared<Node>();
    return std::unique_ptr<WritableFile>(new MemoryWritableFile(state_, node, path));
  }

  Result<std::string> ReadFile(const std::string& raw) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) return NotFound("memory fs: no file " + path);
    return it->second->data;
  }

  Result<std::vector<std::string>> ListDir(const std::string& raw) override {
    std::string dir = Normalize(raw);
    std::lock_guard lock(state_->mu);
    if (!state_->DirExists(dir)) return NotFound("memory fs: no directory " + dir);
    std::vector<std::string> names;
    for (const auto& [path, node] : state_->files) {
      if (DirName(path) == dir) names.push_back(BaseName(path));
    }
    for (const auto& sub : state_->dirs) {
      if (DirName(sub) == dir) names.push_back(BaseName(sub));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDirs(const std::string& raw) override {
    std::string dir = Normalize(raw);
    std::lock_guard lock(state_->mu);
    for (std::string d = dir; d != "." && d != "/" && !d.empty(); d = DirName(d)) {
      if (state_->files.count(d)) return IoError("memory fs: " + d + " is a file");
      state_->dirs.insert(d);
    }
    return OkStatus();
  }

  Status Remove(const std::string& raw) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    if (state_->files.erase(path) == 0) return NotFound("memory fs: no file " + path);
    return OkStatus();
  }

  Status Rename(const std::string& raw_from, const std::string& raw_to) override {
    std::string from = Normalize(raw_from), to = Normalize(raw_to);
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(from);
    if (it == state_->files.end()) return NotFound("memory fs: no file " + from);
    if (!state_->DirExists(DirName(to))) return NotFound("memory fs: no directory for " + to);
    std::shared_ptr<Node> node = it->second;
    state_->files.erase(it);
    state_->files[to] = std::move(node);
    return OkStatus();
  }

  Status Truncate(const std::string& raw, uint64_t size) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) return NotFound("memory fs: no file " + path);
    it->second->data.resize(size, '\0');
    return OkStatus();
  }

  Status SyncDir(const std::string& raw) override {
    std::string dir = Normalize(raw);
    std::lock_guard lock(state_->mu);
    if (!state_->DirExists(dir)) return NotFound("memory fs: no directory " + dir);
    std::erase_if(state_->durable_files, [&](const auto& kv) { return DirName(kv.first) == dir; });
    for (const auto& [path, node] : state_->files) {
      if (DirName(path) == dir) state_->durable_files[path] = node;
    }
    return OkStatus();
  }

  bool Exists(const std::string& raw) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    return state_->files.count(path) > 0 || state_->DirExists(path);
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& raw) override {
    std::string path = Normalize(raw);
    {
      std::lock_guard lock(state_->mu);
      if (state_->locks.count(path)) {
        return Status(Code::kUnavailable, "lock " + path + " is held by another process");
      }
    }
    // The lock file itself exists on disk, as with flock.
    ASSIGN_OR_RETURN(auto file, OpenForAppend(path));
    file->Close().IgnoreError();
    std::lock_guard lock(state_->mu);
    if (state_->locks.count(path)) {
      return Status(Code::kUnavailable, "lock " + path + " is held by another process");
    }
    uint64_t id = state_->next_lock_id++;
    state_->locks[path] = id;
    return std::unique_ptr<FileLock>(new MemoryFileLock(state_, path, id));
  }

  void Crash(const CrashOptions& options) override {
    std::lock_guard lock(state_->mu);
    std::mt19937_64 rng(options.seed);
    state_->files = state_->durable_files;
    for (auto& [path, node] : state_->files) {
      std::string survivor = node->durable;
      bool appended_only = node->data.size() > node->durable.size() &&
                           node->data.compare(0, node->durable.size(), node->durable) == 0;
      if (options.tail != CrashOptions::Tail::kDrop && appended_only) {
        uint64_t unsynced = node->data.size() - node->durable.size();
        uint64_t keep =
            options.keep_bytes ? std::min(*options.keep_bytes, unsynced) : rng() % (unsynced + 1);
        if (options.tail == CrashOptions::Tail::kTornPrefix) {
          survivor.append(node->data, node->durable.size(), keep);
        } else {
          survivor.append(keep, '\0');
        }
      }
      node->data = survivor;
      node->durable = std::move(survivor);
    }
    state_->locks.clear();
    ++state_->generation;
  }

  Status SetContentsForTest(const std::string& raw, std::string contents) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) return NotFound("memory fs: no file " + path);
    it->second->data = contents;
    it->second->durable = std::move(contents);
    return OkStatus();
  }

  Result<std::string> DurableContents(const std::string& raw) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    auto it = state_->durable_files.find(path);
    if (it == state_->durable_files.end()) return NotFound("memory fs: no durable file " + path);
    return it->second->durable;
  }

  uint64_t PreallocatedBytes(const std::string& raw) override {
    std::string path = Normalize(raw);
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(path);
    return it == state_->files.end() ? 0 : it->second->preallocated;
  }

 private:
  static std::string BaseName(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  }

  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<MemoryFileSystem> NewMemoryFileSystem() {
  return std::make_unique<MemoryFileSystemImpl>();
}

}  // namespace dolmen::io
