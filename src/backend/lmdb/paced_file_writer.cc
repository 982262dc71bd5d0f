// See paced_file_writer.h.
#include "backend/lmdb/paced_file_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace dolmen::backend::lmdb_internal {

uint64_t AdaptiveBytesPerSecond(uint64_t expected_bytes, uint64_t floor_bytes_per_second,
                                std::chrono::seconds longest) {
  const uint64_t seconds = std::max<uint64_t>(1, longest.count());
  return std::max(floor_bytes_per_second, expected_bytes / seconds);
}

PacedFileWriter::PacedFileWriter(int fd, std::string name, WritePace pace)
    : fd_(fd), name_(std::move(name)), pace_(pace), start_(std::chrono::steady_clock::now()) {
  if (pace_.step_bytes == 0) error_ = InvalidArgument("paced write of " + name_ + ": step of 0");
}

Status PacedFileWriter::Append(const char* data, size_t bytes) {
  while (error_.ok() && bytes > 0) {
    const size_t room = pace_.step_bytes - (written_ - step_start_);
    const size_t n = std::min(room, bytes);
    error_ = WriteStep(data, n);
    data += n;
    bytes -= n;
    if (!error_.ok() || written_ - step_start_ < pace_.step_bytes) break;
    error_ = FlushStep(step_start_, pace_.step_bytes);
    step_start_ = written_;
    if (error_.ok() && after_step_for_test) error_ = after_step_for_test(written_);
    if (error_.ok()) Pace();
  }
  return error_;
}

Status PacedFileWriter::Finish(bool sync) {
  if (error_.ok() && written_ > step_start_)
    error_ = FlushStep(step_start_, written_ - step_start_);
  if (error_.ok() && previous_bytes_ > 0 && flush_supported_) {
    // Wait for the last step; the fsync below then writes only metadata.
    if (::sync_file_range(fd_, previous_step_, previous_bytes_,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      error_ = IoError("sync_file_range " + name_ + ": " + std::strerror(errno));
    }
  }
  if (error_.ok() && sync && ::fsync(fd_) != 0) {
    error_ = IoError("fsync " + name_ + ": " + std::strerror(errno));
  }
  return error_;
}

Status PacedFileWriter::WriteStep(const char* data, size_t bytes) {
  while (bytes > 0) {
    ssize_t n = ::pwrite(fd_, data, bytes, static_cast<off_t>(written_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return IoError("write " + name_ + " at " + std::to_string(written_) + ": " +
                     (n < 0 ? std::strerror(errno) : "no progress"));
    }
    written_ += static_cast<uint64_t>(n);
    data += n;
    bytes -= static_cast<size_t>(n);
  }
  return OkStatus();
}

Status PacedFileWriter::FlushStep(uint64_t offset, size_t bytes) {
  if (!flush_supported_) return OkStatus();
  // Start this step's writeback without waiting for it...
  if (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(bytes),
                        SYNC_FILE_RANGE_WRITE) != 0) {
    if (errno == ESPIPE || errno == EINVAL || errno == ENOSYS) {
      flush_supported_ = false;  // a pipe, or a file system without it: the fsync does it all
      return OkStatus();
    }
    return IoError("sync_file_range " + name_ + ": " + std::strerror(errno));
  }
  // ...and wait for the previous one's, started a step ago: the dirty pages never exceed two
  // steps, and a WAL fdatasync never queues behind more than that.
  if (previous_bytes_ > 0 &&
      ::sync_file_range(
          fd_, static_cast<off_t>(previous_step_), static_cast<off_t>(previous_bytes_),
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
    return IoError("sync_file_range " + name_ + ": " + std::strerror(errno));
  }
  previous_step_ = offset;
  previous_bytes_ = bytes;
  return OkStatus();
}

void PacedFileWriter::Pace() {
  if (pace_.bytes_per_second == 0) return;
  const auto due =
      start_ + std::chrono::microseconds(written_ * 1'000'000 / pace_.bytes_per_second);
  std::this_thread::sleep_until(due);  // returns at once when behind
}

}  // namespace dolmen::backend::lmdb_internal
