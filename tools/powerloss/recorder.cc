// LD_PRELOAD recorder for the power-loss tester (README.md in this folder).
//
// Every call that changes what is on disk under $DOLMEN_POWERLOSS_DIR is passed on to libc
// (found with dlsym(RTLD_NEXT)) and then appended, with its data, a global sequence number and a
// CLOCK_MONOTONIC timestamp, to the trace file $DOLMEN_POWERLOSS_TRACE. The trace format is in
// docs/formats/powerloss-trace.md; reconstruct.py reads it back.
//
// Contract:
//  - Thread-safe: one mutex serialises the fd table and the trace appends (never held across the
//    real call, so a slow fdatasync does not block other threads' writes).
//  - Crash-safe trace: each record is one write(2) to an O_APPEND fd, length-prefixed, never
//    buffered here, so a kill -9 leaves a readable prefix (at most the last record is cut short,
//    and the reader drops it).
//  - A record is appended after its call returned successfully, so the record order is an order
//    in which the effects happened. A sync records the sequence number current when it was
//    called ("covers"): only writes recorded before the call count as made durable by it, which
//    is what fsync promises (writes that raced with it may or may not be included).
//  - Calls on other files (sockets, logs, files outside the dir) take one relaxed atomic load.
//  - Not covered (documented in README.md): link, O_TMPFILE, stdio and
//    glibc-internal writes (they do not go through these symbols), writes through a writable
//    shared mapping (msync is recorded but carries no data).

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>

namespace {

// Operation codes and flags: keep in step with docs/formats/powerloss-trace.md and reconstruct.py.
enum Op : uint8_t {
  kCreate = 1,     // open with O_CREAT: path, ino
  kWrite = 2,      // path, ino, a = offset, data
  kTruncate = 3,   // path, ino, a = new size
  kFallocate = 4,  // path, ino, a = offset, b = length, aux = mode
  kSync = 5,       // path, ino, a = covers (records with seq < a are covered), aux = SyncKind
  kRename = 6,     // path -> path2, aux = renameat2 flags
  kUnlink = 7,     // path
  kRmdir = 8,      // path
  kMkdir = 9,      // path
  kMsync = 10,     // a = address, b = length, aux = flags (no file: recorded for completeness)
};
enum SyncKind : uint32_t { kFsync = 1, kFdatasync = 2, kSyncFileRange = 3 };
enum Flag : uint8_t { kFlagDir = 1, kFlagSyncWrite = 2 };

constexpr char kMagic[8] = {'D', 'P', 'L', 'T', 'R', 'A', 'C', 'E'};
constexpr uint32_t kVersion = 1;
constexpr int kMaxFds = 1 << 16;

struct FdInfo {
  std::string rel;  // path relative to the recorded dir ("." for the dir itself)
  uint64_t ino = 0;
  bool dir = false;
  bool sync_writes = false;  // O_SYNC / O_DSYNC: each write is durable when it returns
  bool append = false;
};

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
std::string* g_dir = nullptr;  // absolute, normalised; null when recording is off
int g_trace_fd = -1;
uint64_t g_next_seq = 1;                  // guarded by g_mu
std::atomic<uint64_t> g_seq_snapshot{1};  // g_next_seq, readable without the lock
std::atomic<uint8_t> g_tracked[kMaxFds];  // fast path: is this fd under the dir?
FdInfo* g_fds[kMaxFds];                   // guarded by g_mu

// Says why on stderr (without going through our own write) and stops: a recorder that cannot
// record would make the reconstructed disks lie.
[[noreturn]] void Die(const char* why) {
  static const char prefix[] = "dolmen powerloss recorder: ";
  long ignored = ::syscall(SYS_write, 2, prefix, sizeof prefix - 1);
  ignored = ::syscall(SYS_write, 2, why, strlen(why));
  ignored = ::syscall(SYS_write, 2, "\n", 1);
  (void)ignored;
  abort();
}

template <typename Fn>
Fn Real(const char* name) {
  void* sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr) Die(name);
  return reinterpret_cast<Fn>(sym);
}

#define REAL(name) static const auto real_##name = Real<decltype(&::name)>(#name)

// Lexical normalisation: collapses "//", "." and "..". Symlinks are not resolved (the test
// passes real paths).
std::string Normalize(const std::string& path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      size_t k = out.rfind('/');
      out.resize(k == std::string::npos ? 0 : k);
      continue;
    }
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

void Init() {
  const char* dir = getenv("DOLMEN_POWERLOSS_DIR");
  const char* trace = getenv("DOLMEN_POWERLOSS_TRACE");
  if (dir == nullptr || trace == nullptr || dir[0] != '/' || trace[0] == '\0') return;
  REAL(open);
  REAL(write);
  REAL(lseek);
  int fd = real_open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) Die("cannot open $DOLMEN_POWERLOSS_TRACE");
  if (real_lseek(fd, 0, SEEK_END) == 0) {
    char header[12];
    memcpy(header, kMagic, 8);
    memcpy(header + 8, &kVersion, 4);
    if (real_write(fd, header, sizeof header) != sizeof header) Die("cannot write the trace");
  }
  g_trace_fd = fd;
  g_dir = new std::string(Normalize(dir));
}

bool Enabled() {
  pthread_once(&g_once, Init);
  return g_dir != nullptr;
}

// Returns the path relative to the recorded dir, or false if it is outside.
bool Relative(const std::string& abs, std::string* rel) {
  const std::string& d = *g_dir;
  if (abs == d) {
    *rel = ".";
    return true;
  }
  if (abs.size() > d.size() && abs.compare(0, d.size(), d) == 0 && abs[d.size()] == '/') {
    *rel = abs.substr(d.size() + 1);
    return true;
  }
  return false;
}

std::string FdPathLocked(int dirfd);

// Absolute form of `path` as openat(dirfd, path) would see it.
std::string Absolute(int dirfd, const char* path) {
  if (path[0] == '/') return Normalize(path);
  std::string base;
  if (dirfd == AT_FDCWD) {
    char buf[4096];
    if (getcwd(buf, sizeof buf) == nullptr) return std::string();
    base = buf;
  } else {
    pthread_mutex_lock(&g_mu);
    base = FdPathLocked(dirfd);
    pthread_mutex_unlock(&g_mu);
    if (base.empty()) {
      char link[64], buf[4096];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, buf, sizeof buf - 1);
      if (n <= 0) return std::string();
      base.assign(buf, static_cast<size_t>(n));
    }
  }
  return Normalize(base + "/" + path);
}

std::string FdPathLocked(int fd) {
  if (fd < 0 || fd >= kMaxFds || g_fds[fd] == nullptr) return std::string();
  const std::string& rel = g_fds[fd]->rel;
  return rel == "." ? *g_dir : *g_dir + "/" + rel;
}

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct Record {
  explicit Record(Op o) : op(o) {}
  Op op;
  uint8_t flags = 0;
  uint32_t aux = 0;
  uint64_t ino = 0, a = 0, b = 0;
  std::string path, path2;
};

// Appends one record; `iov`/`iovcnt` is its data. Caller does not hold g_mu.
void Append(const Record& r, const struct iovec* iov = nullptr, int iovcnt = 0) {
  REAL(write);
  size_t data_len = 0;
  for (int i = 0; i < iovcnt; ++i) data_len += iov[i].iov_len;
  constexpr size_t kFixed = 8 + 8 + 1 + 1 + 2 + 2 + 2 + 4 + 8 + 8 + 8;
  const uint32_t body = static_cast<uint32_t>(kFixed + r.path.size() + r.path2.size() + data_len);
  std::string buf;
  buf.resize(4 + body);
  char* p = buf.data();
  auto put = [&p](const void* v, size_t n) {
    memcpy(p, v, n);
    p += n;
  };
  put(&body, 4);
  char* seq_at = p;
  p += 16;  // seq and timestamp, filled under the lock
  const uint16_t path_len = static_cast<uint16_t>(r.path.size());
  const uint16_t path2_len = static_cast<uint16_t>(r.path2.size());
  const uint16_t reserved = 0;
  put(&r.op, 1);
  put(&r.flags, 1);
  put(&path_len, 2);
  put(&path2_len, 2);
  put(&reserved, 2);
  put(&r.aux, 4);
  put(&r.ino, 8);
  put(&r.a, 8);
  put(&r.b, 8);
  put(r.path.data(), r.path.size());
  put(r.path2.data(), r.path2.size());
  for (int i = 0; i < iovcnt; ++i) put(iov[i].iov_base, iov[i].iov_len);
  pthread_mutex_lock(&g_mu);
  const uint64_t seq = g_next_seq++;
  g_seq_snapshot.store(g_next_seq, std::memory_order_release);
  const uint64_t now = NowNs();
  memcpy(seq_at, &seq, 8);
  memcpy(seq_at + 8, &now, 8);
  size_t off = 0;
  while (off < buf.size()) {  // a regular file takes it whole; loop for EINTR/short writes
    ssize_t n = real_write(g_trace_fd, buf.data() + off, buf.size() - off);
    if (n <= 0) Die("cannot write the trace");  // a trace with a hole would lie
    off += static_cast<size_t>(n);
  }
  pthread_mutex_unlock(&g_mu);
}

bool Tracked(int fd) {
  return fd >= 0 && fd < kMaxFds && g_tracked[fd].load(std::memory_order_acquire) != 0;
}

// Copy of the fd's entry (under the lock), for building a record.
bool Lookup(int fd, FdInfo* out) {
  if (!Tracked(fd)) return false;
  pthread_mutex_lock(&g_mu);
  bool ok = g_fds[fd] != nullptr;
  if (ok) *out = *g_fds[fd];
  pthread_mutex_unlock(&g_mu);
  return ok;
}

void Forget(int fd) {
  if (fd < 0 || fd >= kMaxFds) return;
  pthread_mutex_lock(&g_mu);
  delete g_fds[fd];
  g_fds[fd] = nullptr;
  g_tracked[fd].store(0, std::memory_order_release);
  pthread_mutex_unlock(&g_mu);
}

void Remember(int fd, FdInfo info) {
  if (fd < 0 || fd >= kMaxFds) return;
  pthread_mutex_lock(&g_mu);
  delete g_fds[fd];
  g_fds[fd] = new FdInfo(std::move(info));
  g_tracked[fd].store(1, std::memory_order_release);
  pthread_mutex_unlock(&g_mu);
}

void Copy(int from, int to) {
  FdInfo info;
  if (Lookup(from, &info)) {
    Remember(to, info);
  } else {
    Forget(to);
  }
}

// After a successful open/openat: start tracking the fd if it is under the dir, and record a
// creation (and truncation) if the call could have created (or emptied) the file.
void AfterOpen(int fd, int dirfd, const char* path, int flags) {
  if (fd < 0 || !Enabled()) return;
  std::string rel;
  if (!Relative(Absolute(dirfd, path), &rel)) {
    Forget(fd);  // a stale entry from an fd number closed behind our back
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  FdInfo info;
  info.rel = rel;
  info.ino = st.st_ino;
  info.dir = S_ISDIR(st.st_mode);
  info.sync_writes = (flags & (O_SYNC | O_DSYNC)) != 0;
  info.append = (flags & O_APPEND) != 0;
  Remember(fd, info);
  if (flags & O_CREAT) {
    Record r(kCreate);
    r.path = rel;
    r.ino = info.ino;
    Append(r);
  }
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
    Record r(kTruncate);
    r.path = rel;
    r.ino = info.ino;
    r.a = 0;
    Append(r);
  }
}

void RecordWrite(const FdInfo& info, uint64_t offset, const struct iovec* iov, int iovcnt) {
  Record r(kWrite);
  r.path = info.rel;
  r.ino = info.ino;
  r.a = offset;
  r.flags = info.sync_writes ? kFlagSyncWrite : 0;
  Append(r, iov, iovcnt);
}

// Records `n` bytes of `iov` written at `offset` (a short write records only what went out).
void RecordWritten(const FdInfo& info, uint64_t offset, const struct iovec* iov, int iovcnt,
                   size_t n) {
  struct iovec cut[64];
  int cnt = 0;
  size_t left = n;
  std::string joined;  // more than 64 pieces: copy into one
  if (iovcnt > 64) {
    for (int i = 0; i < iovcnt && left > 0; ++i) {
      size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
      joined.append(static_cast<const char*>(iov[i].iov_base), take);
      left -= take;
    }
    struct iovec one = {joined.data(), joined.size()};
    RecordWrite(info, offset, &one, 1);
    return;
  }
  for (int i = 0; i < iovcnt && left > 0; ++i) {
    size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
    cut[cnt++] = {iov[i].iov_base, take};
    left -= take;
  }
  RecordWrite(info, offset, cut, cnt);
}

void RecordSync(int fd, uint32_t kind, uint64_t covers) {
  FdInfo info;
  if (!Lookup(fd, &info)) return;
  Record r(kSync);
  r.path = info.rel;
  r.ino = info.ino;
  r.a = covers;
  r.aux = kind;
  r.flags = info.dir ? kFlagDir : 0;
  Append(r);
}

uint64_t CurrentSeq() { return g_seq_snapshot.load(std::memory_order_acquire); }

// Records a path operation if `path` (relative to dirfd) is under the dir.
void RecordPathOp(Op op, int dirfd, const char* path, uint32_t aux = 0) {
  if (!Enabled()) return;
  std::string rel;
  if (!Relative(Absolute(dirfd, path), &rel)) return;
  Record r(op);
  r.path = rel;
  r.aux = aux;
  Append(r);
}

void RecordRename(int olddirfd, const char* oldpath, int newdirfd, const char* newpath,
                  uint32_t flags) {
  if (!Enabled()) return;
  std::string from, to;
  bool from_in = Relative(Absolute(olddirfd, oldpath), &from);
  bool to_in = Relative(Absolute(newdirfd, newpath), &to);
  if (!from_in && !to_in) return;
  Record r(kRename);
  // A side outside the dir is kept absolute (with its leading '/'); the reconstructor treats
  // a move out as an unlink and refuses a move in (it has no content for it).
  r.path = from_in ? from : Absolute(olddirfd, oldpath);
  r.path2 = to_in ? to : Absolute(newdirfd, newpath);
  r.aux = flags;
  Append(r);
  // Open fds follow the file to its new name.
  pthread_mutex_lock(&g_mu);
  for (int fd = 0; fd < kMaxFds; ++fd) {
    if (g_fds[fd] == nullptr || !from_in) continue;
    std::string& rel = g_fds[fd]->rel;
    if (rel == from || (rel.size() > from.size() && rel.compare(0, from.size(), from) == 0 &&
                        rel[from.size()] == '/')) {
      rel = to_in ? to + rel.substr(from.size()) : std::string("/") + rel;
    }
  }
  pthread_mutex_unlock(&g_mu);
}

void RecordFallocate(int fd, int mode, off_t offset, off_t len) {
  FdInfo info;
  if (!Lookup(fd, &info)) return;
  Record r(kFallocate);
  r.path = info.rel;
  r.ino = info.ino;
  r.a = static_cast<uint64_t>(offset);
  r.b = static_cast<uint64_t>(len);
  r.aux = static_cast<uint32_t>(mode);
  Append(r);
}

int OpenMode(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

ssize_t WriteAt(int fd, const struct iovec* iov, int iovcnt, ssize_t n, uint64_t offset) {
  if (n > 0) {
    FdInfo info;
    if (Lookup(fd, &info)) RecordWritten(info, offset, iov, iovcnt, static_cast<size_t>(n));
  }
  return n;
}

// Offset of the next write(2)/writev(2) on fd: asked from the kernel rather than tracked
// through lseek, so every way of moving it (lseek, read, dup'ed fds) is accounted for.
off_t CurrentOffset(int fd) {
  REAL(lseek);
  return real_lseek(fd, 0, SEEK_CUR);
}

// For an O_APPEND fd the offset is known only after the write: end of file minus n.
uint64_t AppendedAt(int fd, ssize_t n) { return static_cast<uint64_t>(CurrentOffset(fd) - n); }

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
  REAL(open);
  va_list ap;
  va_start(ap, flags);
  int mode = OpenMode(flags, ap);
  va_end(ap);
  int fd = real_open(path, flags, mode);
  AfterOpen(fd, AT_FDCWD, path, flags);
  return fd;
}

int open64(const char* path, int flags, ...) {
  REAL(open64);
  va_list ap;
  va_start(ap, flags);
  int mode = OpenMode(flags, ap);
  va_end(ap);
  int fd = real_open64(path, flags, mode);
  AfterOpen(fd, AT_FDCWD, path, flags);
  return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
  REAL(openat);
  va_list ap;
  va_start(ap, flags);
  int mode = OpenMode(flags, ap);
  va_end(ap);
  int fd = real_openat(dirfd, path, flags, mode);
  AfterOpen(fd, dirfd, path, flags);
  return fd;
}

int openat64(int dirfd, const char* path, int flags, ...) {
  REAL(openat64);
  va_list ap;
  va_start(ap, flags);
  int mode = OpenMode(flags, ap);
  va_end(ap);
  int fd = real_openat64(dirfd, path, flags, mode);
  AfterOpen(fd, dirfd, path, flags);
  return fd;
}

// _FORTIFY_SOURCE callers reach these instead of open/openat.
int __open_2(const char* path, int flags) { return open(path, flags); }
int __open64_2(const char* path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char* path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char* path, int flags) { return openat64(dirfd, path, flags); }

int creat(const char* path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char* path, mode_t mode) {
  return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int close(int fd) {
  REAL(close);
  if (Tracked(fd)) Forget(fd);
  return real_close(fd);
}

int dup(int fd) {
  REAL(dup);
  int nfd = real_dup(fd);
  if (nfd >= 0 && (Tracked(fd) || Tracked(nfd))) Copy(fd, nfd);
  return nfd;
}

int dup2(int fd, int nfd) {
  REAL(dup2);
  int r = real_dup2(fd, nfd);
  if (r >= 0 && (Tracked(fd) || Tracked(r))) Copy(fd, r);
  return r;
}

int dup3(int fd, int nfd, int flags) {
  REAL(dup3);
  int r = real_dup3(fd, nfd, flags);
  if (r >= 0 && (Tracked(fd) || Tracked(r))) Copy(fd, r);
  return r;
}

// fcntl(F_DUPFD[_CLOEXEC]) is a dup (CPython's os.dup uses it). Every command's argument is
// passed on as the pointer-sized value it arrived as, which is how glibc reads it too.
int fcntl(int fd, int cmd, ...) {
  REAL(fcntl);
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  int r = real_fcntl(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && (Tracked(fd) || Tracked(r))) {
    Copy(fd, r);
  }
  return r;
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl(fd, cmd, arg);
}

ssize_t write(int fd, const void* buf, size_t count) {
  REAL(write);
  if (!Tracked(fd)) return real_write(fd, buf, count);
  FdInfo info;
  bool known = Lookup(fd, &info);
  off_t before = known && !info.append ? CurrentOffset(fd) : 0;
  ssize_t n = real_write(fd, buf, count);
  struct iovec iov = {const_cast<void*>(buf), count};
  if (n > 0 && known) {
    uint64_t at = info.append ? AppendedAt(fd, n) : static_cast<uint64_t>(before);
    RecordWritten(info, at, &iov, 1, static_cast<size_t>(n));
  }
  return n;
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  REAL(writev);
  if (!Tracked(fd)) return real_writev(fd, iov, iovcnt);
  FdInfo info;
  bool known = Lookup(fd, &info);
  off_t before = known && !info.append ? CurrentOffset(fd) : 0;
  ssize_t n = real_writev(fd, iov, iovcnt);
  if (n > 0 && known) {
    uint64_t at = info.append ? AppendedAt(fd, n) : static_cast<uint64_t>(before);
    RecordWritten(info, at, iov, iovcnt, static_cast<size_t>(n));
  }
  return n;
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  REAL(pwrite);
  ssize_t n = real_pwrite(fd, buf, count, offset);
  if (!Tracked(fd)) return n;
  struct iovec iov = {const_cast<void*>(buf), count};
  return WriteAt(fd, &iov, 1, n, static_cast<uint64_t>(offset));
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t offset) {
  REAL(pwrite64);
  ssize_t n = real_pwrite64(fd, buf, count, offset);
  if (!Tracked(fd)) return n;
  struct iovec iov = {const_cast<void*>(buf), count};
  return WriteAt(fd, &iov, 1, n, static_cast<uint64_t>(offset));
}

ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
  REAL(pwritev);
  ssize_t n = real_pwritev(fd, iov, iovcnt, offset);
  if (!Tracked(fd)) return n;
  return WriteAt(fd, iov, iovcnt, n, static_cast<uint64_t>(offset));
}

ssize_t pwritev64(int fd, const struct iovec* iov, int iovcnt, off64_t offset) {
  REAL(pwritev64);
  ssize_t n = real_pwritev64(fd, iov, iovcnt, offset);
  if (!Tracked(fd)) return n;
  return WriteAt(fd, iov, iovcnt, n, static_cast<uint64_t>(offset));
}

ssize_t pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) {
  REAL(pwritev2);
  if (!Tracked(fd)) return real_pwritev2(fd, iov, iovcnt, offset, flags);
  FdInfo info;
  bool known = Lookup(fd, &info);
  off_t before = offset == -1 && known && !info.append ? CurrentOffset(fd) : offset;
  ssize_t n = real_pwritev2(fd, iov, iovcnt, offset, flags);
  if (n > 0 && known) {
    uint64_t at = offset == -1 && info.append ? AppendedAt(fd, n) : static_cast<uint64_t>(before);
    // RWF_SYNC / RWF_DSYNC make this one write durable, like O_SYNC.
    if (flags & (RWF_SYNC | RWF_DSYNC)) info.sync_writes = true;
    RecordWritten(info, at, iov, iovcnt, static_cast<size_t>(n));
  }
  return n;
}

int ftruncate(int fd, off_t length) {
  REAL(ftruncate);
  int rc = real_ftruncate(fd, length);
  FdInfo info;
  if (rc == 0 && Lookup(fd, &info)) {
    Record r(kTruncate);
    r.path = info.rel;
    r.ino = info.ino;
    r.a = static_cast<uint64_t>(length);
    Append(r);
  }
  return rc;
}

int ftruncate64(int fd, off64_t length) { return ftruncate(fd, static_cast<off_t>(length)); }

int fallocate(int fd, int mode, off_t offset, off_t len) {
  REAL(fallocate);
  int rc = real_fallocate(fd, mode, offset, len);
  if (rc == 0) RecordFallocate(fd, mode, offset, len);
  return rc;
}

int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  return fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len));
}

int posix_fallocate(int fd, off_t offset, off_t len) {
  REAL(posix_fallocate);
  int rc = real_posix_fallocate(fd, offset, len);
  if (rc == 0) RecordFallocate(fd, 0, offset, len);
  return rc;
}

int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  return posix_fallocate(fd, static_cast<off_t>(offset), static_cast<off_t>(len));
}

int fsync(int fd) {
  REAL(fsync);
  uint64_t covers = CurrentSeq();
  int rc = real_fsync(fd);
  if (rc == 0 && Tracked(fd)) RecordSync(fd, kFsync, covers);
  return rc;
}

int fdatasync(int fd) {
  REAL(fdatasync);
  uint64_t covers = CurrentSeq();
  int rc = real_fdatasync(fd);
  if (rc == 0 && Tracked(fd)) RecordSync(fd, kFdatasync, covers);
  return rc;
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  REAL(sync_file_range);
  uint64_t covers = CurrentSeq();
  int rc = real_sync_file_range(fd, offset, nbytes, flags);
  if (rc == 0 && Tracked(fd)) RecordSync(fd, kSyncFileRange, covers);
  return rc;
}

int msync(void* addr, size_t length, int flags) {
  REAL(msync);
  int rc = real_msync(addr, length, flags);
  if (rc == 0 && Enabled()) {
    Record r(kMsync);
    r.a = reinterpret_cast<uintptr_t>(addr);
    r.b = length;
    r.aux = static_cast<uint32_t>(flags);
    Append(r);
  }
  return rc;
}

int rename(const char* from, const char* to) {
  REAL(rename);
  int rc = real_rename(from, to);
  if (rc == 0) RecordRename(AT_FDCWD, from, AT_FDCWD, to, 0);
  return rc;
}

int renameat(int olddirfd, const char* from, int newdirfd, const char* to) {
  REAL(renameat);
  int rc = real_renameat(olddirfd, from, newdirfd, to);
  if (rc == 0) RecordRename(olddirfd, from, newdirfd, to, 0);
  return rc;
}

int renameat2(int olddirfd, const char* from, int newdirfd, const char* to, unsigned int flags) {
  REAL(renameat2);
  int rc = real_renameat2(olddirfd, from, newdirfd, to, flags);
  if (rc == 0) RecordRename(olddirfd, from, newdirfd, to, flags);
  return rc;
}

int unlink(const char* path) {
  REAL(unlink);
  int rc = real_unlink(path);
  if (rc == 0) RecordPathOp(kUnlink, AT_FDCWD, path);
  return rc;
}

int unlinkat(int dirfd, const char* path, int flags) {
  REAL(unlinkat);
  int rc = real_unlinkat(dirfd, path, flags);
  if (rc == 0) RecordPathOp((flags & AT_REMOVEDIR) ? kRmdir : kUnlink, dirfd, path);
  return rc;
}

int rmdir(const char* path) {
  REAL(rmdir);
  int rc = real_rmdir(path);
  if (rc == 0) RecordPathOp(kRmdir, AT_FDCWD, path);
  return rc;
}

int mkdir(const char* path, mode_t mode) {
  REAL(mkdir);
  int rc = real_mkdir(path, mode);
  if (rc == 0) RecordPathOp(kMkdir, AT_FDCWD, path);
  return rc;
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  REAL(mkdirat);
  int rc = real_mkdirat(dirfd, path, mode);
  if (rc == 0) RecordPathOp(kMkdir, dirfd, path);
  return rc;
}

}  // extern "C"
