// An in-memory FileSystem that remembers what has been made durable, so tests and the simulator
// can crash it and see exactly what a real disk would be allowed to keep (LevelDB memenv,
// TigerBeetle's simulated storage).
//
// Model:
// - A file's durable content is its content as of its last successful Sync.
// - A file's name (creation, rename, removal) is durable after SyncDir on its directory.
// - Directories are durable as soon as CreateDirs returns (a simplification: nothing in Dolmen
//   depends on a directory vanishing at a crash).
// - Crash() makes every unsynced change disappear, optionally leaving a torn prefix of the bytes
//   appended since the last Sync (a partial write that reached the platter), drops all locks
//   (the process died) and turns every open handle stale (its calls then fail with kIoError).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "io/file_system.h"

namespace dolmen::io {

struct CrashOptions {
  enum class Tail {
    kDrop,        // unsynced appended bytes are lost entirely
    kTornPrefix,  // a prefix of them survives (a torn write)
    kTornZeros,   // a prefix survives as zeros (size reached disk, data did not; ext4-like)
  };
  Tail tail = Tail::kDrop;
  // Length of the surviving prefix, per file, for kTornPrefix/kTornZeros: exactly this many
  // bytes (capped at the unsynced length) if set, otherwise drawn from `seed`.
  std::optional<uint64_t> keep_bytes;
  uint64_t seed = 0;
};

class MemoryFileSystem : public FileSystem {
 public:
  virtual void Crash(const CrashOptions& options) = 0;
  void Crash() { Crash(CrashOptions{}); }

  // Test hooks. Replace a file's content, both visible and durable (e.g. to flip a byte).
  virtual Status SetContentsForTest(const std::string& path, std::string contents) = 0;
  // What a crash without a torn tail would leave of `path`; kNotFound if its name is not durable.
  virtual Result<std::string> DurableContents(const std::string& path) = 0;
  // Bytes reserved by the last Preallocate on `path` (0 if none).
  virtual uint64_t PreallocatedBytes(const std::string& path) = 0;
};

std::unique_ptr<MemoryFileSystem> NewMemoryFileSystem();

}  // namespace dolmen::io
