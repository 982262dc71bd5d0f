// The real Backend, on LMDB. This folder is the only code that includes lmdb.h.
//
// The environment is opened with MDB_NOMETASYNC | MDB_NOTLS: a commit fdatasyncs its data pages
// and then writes the meta page without syncing it (so a power cut can undo only the newest
// commit, never expose pages that did not reach the disk); Backend::Sync also syncs the meta
// page. Read txns are not tied to threads. Buckets are LMDB named databases.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace dolmen::backend {

// Opens (creating if needed) the LMDB environment in directory `dir` (files data.mdb and
// lock.mdb). An unreadable or corrupt data file gives kCorruption naming the file.
Result<std::unique_ptr<Backend>> OpenLmdb(const std::string& dir, const Options& options);

// Opens, read-only, an image file written by an LMDB backend's CopyTo (a snapshot from the
// leader). kCorruption if it is not an LMDB file.
Result<std::unique_ptr<Backend>> OpenLmdbImage(const std::string& file);

}  // namespace dolmen::backend
