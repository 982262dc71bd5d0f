// See lmdb_compact_copy.h.
#include "backend/lmdb/lmdb_compact_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "backend/lmdb/lmdb_env.h"

namespace dolmen::backend::lmdb_internal {
namespace {

// A pipe of 1 MiB (LMDB writes its copy in 1 MiB buffers): fewer wake-ups per step. The
// default (64 KiB) is kept if the system refuses (fs.pipe-max-size).
constexpr int kPipeBytes = 1 << 20;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<CompactCopyResult> WriteCompactCopy(MDB_env* env, int fd, const std::string& name,
                                           const WritePace& pace, bool sync,
                                           std::function<Status(uint64_t)> after_step_for_test) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return IoError("pipe for the copy " + name + ": " + std::strerror(errno));
  }
  (void)::fcntl(pipe_fds[1], F_SETPIPE_SZ, kPipeBytes);
  const auto start = std::chrono::steady_clock::now();
  int copy_rc = 0;
  std::thread walker([&] {
    // Should the reader end early, LMDB's write gets EPIPE rather than the process SIGPIPE;
    // LMDB's own writer thread, started from here, inherits the mask.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    copy_rc = mdb_env_copyfd2(env, pipe_fds[1], MDB_CP_COMPACT);
    ::close(pipe_fds[1]);  // the reader's end of file
  });
  PacedFileWriter writer(fd, name, pace);
  writer.after_step_for_test = std::move(after_step_for_test);
  std::vector<char> buffer(pace.step_bytes > 0 ? pace.step_bytes : 4096);
  Status status;
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = IoError("read the copy's pipe for " + name + ": " + std::strerror(errno));
      break;  // closing the read end below ends the walk (EPIPE)
    }
    if (n == 0) break;
    // After a write error the rest is read and dropped: the walk must reach its end.
    (void)writer.Append(buffer.data(), static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  walker.join();
  if (status.ok()) status = writer.Finish(/*sync=*/false);  // the first write error, if any
  if (status.ok() && copy_rc != 0) status = FromMdb(copy_rc, "compact copy to " + name, name);
  if (!status.ok()) return status;
  CompactCopyResult result;
  result.bytes = writer.written_bytes();
  result.write_seconds = SecondsSince(start);
  if (sync && ::fsync(fd) != 0) return IoError("fsync " + name + ": " + std::strerror(errno));
  result.sync_seconds = SecondsSince(start) - result.write_seconds;
  return result;
}

}  // namespace dolmen::backend::lmdb_internal
