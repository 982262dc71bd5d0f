// Writes a file sequentially at a bounded pace, flushing it to the disk step by step, so that
// the final fsync has little left to write and the disk never takes a burst of dirty pages
// (docs/maintenance.md, "The paced copy"). A defragmentation writes its compacted copy with it:
// on a disk shared with the write-ahead log, one burst of ~10 MB written and fsynced at once
// made every WAL fdatasync of the moment wait behind it (docs/benchmarks.md, 2026-12-07).
// POSIX only (pwrite, sync_file_range); no LMDB. One thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"

namespace dolmen::backend::lmdb_internal {

struct WritePace {
  // Each step is handed to the disk on its own (sync_file_range WRITE) once written, and the
  // step before it is waited for: at most two steps are ever in flight or dirty.
  size_t step_bytes = 256u << 10;
  // The pace: the writer sleeps while it is ahead of this rate. 0: no pace (flushing only).
  uint64_t bytes_per_second = 0;
};

// The rate for a copy of `expected_bytes`: at least `floor_bytes_per_second`, and fast enough
// that the whole copy takes at most `longest` (a 1 GB database must not take minutes).
uint64_t AdaptiveBytesPerSecond(uint64_t expected_bytes, uint64_t floor_bytes_per_second,
                                std::chrono::seconds longest);

class PacedFileWriter {
 public:
  // `fd` is open for writing, at offset 0, and outlives the writer; `name` is for errors.
  PacedFileWriter(int fd, std::string name, WritePace pace);

  // Appends `bytes`; returns the first error (every later call returns it too).
  Status Append(const char* data, size_t bytes);
  // Flushes what is left and fsyncs the file (unless `sync` is false). Call once, at the end.
  Status Finish(bool sync);

  uint64_t written_bytes() const { return written_; }
  // Tests only: runs after each step is handed to the disk, with the bytes written so far; an
  // error it returns fails the write as a disk error would.
  std::function<Status(uint64_t)> after_step_for_test;

 private:
  Status WriteStep(const char* data, size_t bytes);
  // Starts the writeback of [offset, offset + bytes) and waits for the step before it.
  Status FlushStep(uint64_t offset, size_t bytes);
  void Pace();

  const int fd_;
  const std::string name_;
  const WritePace pace_;
  const std::chrono::steady_clock::time_point start_;
  uint64_t written_ = 0;
  uint64_t step_start_ = 0;                          // the offset where the step being filled began
  uint64_t previous_step_ = 0, previous_bytes_ = 0;  // the step in flight, if previous_bytes_
  bool flush_supported_ = true;  // sync_file_range refused (not a regular file): fsync only
  Status error_;
};

}  // namespace dolmen::backend::lmdb_internal
