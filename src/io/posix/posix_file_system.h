// The real FileSystem on POSIX (Linux): write(2), fdatasync, fallocate(FALLOC_FL_KEEP_SIZE),
// flock. Lives in its own library (dolmen_io_posix) so that the simulator never links it; only
// src/embed and cmd/ (and tests) should.
#pragma once

#include "io/file_system.h"

namespace dolmen::io {

// The process-wide instance; never destroyed. Thread-safe.
FileSystem* PosixFileSystem();

}  // namespace dolmen::io
