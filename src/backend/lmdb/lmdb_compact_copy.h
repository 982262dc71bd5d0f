// LMDB's compacting copy (mdb_env_copyfd2, MDB_CP_COMPACT) written into a file at a pace:
// LMDB writes the copy into a pipe on a thread of its own; the caller's thread writes what
// comes out into the file with a PacedFileWriter (docs/maintenance.md, "The paced copy").
// Internal to this folder.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <string>

#include "backend/lmdb/paced_file_writer.h"
#include "base/status.h"

namespace dolmen::backend::lmdb_internal {

struct CompactCopyResult {
  uint64_t bytes = 0;
  double write_seconds = 0;  // LMDB's walk and the paced writes, overlapped
  double sync_seconds = 0;   // the final fsync
};

// Writes a compacted copy of `env`'s latest committed state (its own read txn: a snapshot,
// beside the writer) into `fd` (empty, open for writing; `name` for errors), fsynced unless
// `sync` is false. On an error the file holds part of a copy: the caller removes it. The
// calling thread writes; LMDB's walk runs on a thread this starts and joins, with SIGPIPE
// blocked. `after_step_for_test` as PacedFileWriter's.
Result<CompactCopyResult> WriteCompactCopy(MDB_env* env, int fd, const std::string& name,
                                           const WritePace& pace, bool sync,
                                           std::function<Status(uint64_t)> after_step_for_test);

}  // namespace dolmen::backend::lmdb_internal
