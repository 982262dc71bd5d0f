// What the Maintenance service needs from a member besides its state getters: the backend
// hash, client snapshots of the backend (docs/maintenance.md). Server methods are in
// maintenance.cc.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/ids.h"
#include "base/status.h"
#include "io/file_system.h"

namespace dolmen::server {

// etcd's Hash RPC result: the backend hash and the store revision it was taken at.
struct BackendHash {
  uint32_t hash = 0;
  Revision revision;
};

// A consistent image of the backend in a temporary file (Backend::CopyTo), read in chunks for
// the Maintenance Snapshot stream, with the SHA-256 etcd appends. The file is removed when this
// is destroyed. One reader thread at a time.
class BackendSnapshot {
 public:
  BackendSnapshot(io::FileSystem* fs, std::string path, uint64_t size_bytes);
  ~BackendSnapshot();
  BackendSnapshot(const BackendSnapshot&) = delete;
  BackendSnapshot& operator=(const BackendSnapshot&) = delete;

  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t sent_bytes() const { return sent_bytes_; }
  // The next chunk of at most `max_bytes`; empty once the whole image was returned. A file
  // that ends early is kIoError (the copy was damaged underneath).
  Result<std::string> Next(size_t max_bytes);
  // SHA-256 (32 bytes) of everything Next returned.
  std::string Sha256();

 private:
  io::FileSystem* const fs_;
  const std::string path_;
  const uint64_t size_bytes_;
  uint64_t sent_bytes_ = 0;
  EVP_MD_CTX* sha_ = nullptr;
};

// Temporary snapshot files are `<data-dir>/member/<kSnapshotTempPrefix><n>.tmp`; leftovers of a
// crash are removed at start.
inline constexpr const char* kSnapshotTempPrefix = "client-snapshot-";

}  // namespace dolmen::server
