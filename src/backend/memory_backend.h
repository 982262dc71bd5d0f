// An in-memory Backend for unit tests and the simulator: same contract as the LMDB one, no disk.
// Snapshots are copy-on-write per bucket, so a write txn costs O(size of each bucket it touches);
// fine for tests, not for large data sets.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace dolmen::backend {

std::unique_ptr<Backend> NewMemoryBackend();
// A memory backend holding the image a memory backend's CopyTo wrote (a copy: later writes do
// not touch the file). kCorruption if the file is not such an image.
Result<std::unique_ptr<Backend>> OpenMemoryImage(const std::string& path);

}  // namespace dolmen::backend
