#include "io/posix/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>
#include <thread>

#include "log/log.h"

namespace dolmen::io {
namespace {

Status ErrnoStatus(const std::string& what, int err) {
  std::string message = what + ": " + std::strerror(err);
  if (err == ENOENT) return NotFound(message);
  return IoError(message);
}

// Test-only hook (tests/fault, the slow-disk scenarios): with DOLMEN_TEST_SLOW_SYNC_FILE=PATH,
// every fdatasync of a written file first sleeps for the number of milliseconds written in PATH
// (no delay if PATH is missing, empty or 0). PATH is read at each sync so that a test can make
// one member's disk slow and fast again while it runs; each change of the delay is logged once,
// which lets the test see that the hook is active. Never set outside tests.
void MaybeDelaySyncForTest() {
  static const char* const path = std::getenv("DOLMEN_TEST_SLOW_SYNC_FILE");
  if (path == nullptr || *path == '\0') return;
  static std::atomic<long long> logged_ms{0};
  std::ifstream in(path);
  long long delay_ms = 0;
  if (!(in >> delay_ms) || delay_ms < 0) delay_ms = 0;
  if (logged_ms.exchange(delay_ms) != delay_ms) {
    log::Warn("test hook DOLMEN_TEST_SLOW_SYNC_FILE: fdatasync delayed by " +
                  std::to_string(delay_ms) + " ms",
              {{"delay", std::chrono::milliseconds(delay_ms)}});
  }
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return IoError("append " + path_ + ": file is closed");
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(size_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write " + path_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
    return OkStatus();
  }

  Status Sync() override {
    if (fd_ < 0) return IoError("sync " + path_ + ": file is closed");
    MaybeDelaySyncForTest();
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync " + path_, errno);
    return OkStatus();
  }

  Status Close() override {
    if (fd_ < 0) return IoError("close " + path_ + ": file is closed");
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoStatus("close " + path_, errno);
    return OkStatus();
  }

  uint64_t Size() const override { return size_; }

  Status Preallocate(uint64_t bytes) override {
    if (fd_ < 0) return IoError("preallocate " + path_ + ": file is closed");
#ifdef __linux__
    if (bytes <= std::max(size_, allocated_)) return OkStatus();
    int rc;
    do {
      rc = ::fallocate(fd_, 0, 0, static_cast<off_t>(bytes));
    } while (rc != 0 && errno == EINTR);
    // Not every file system can preallocate (tmpfs on old kernels, some FUSE); it is an
    // optimization, so only a real failure such as ENOSPC is reported.
    if (rc == 0) {
      allocated_ = bytes;
    } else if (errno != EOPNOTSUPP && errno != ENOSYS) {
      return ErrnoStatus("fallocate " + path_, errno);
    }
#else
    (void)bytes;
#endif
    return OkStatus();
  }

  Status TrimPreallocation() override {
    if (fd_ < 0) return IoError("trim " + path_ + ": file is closed");
    if (allocated_ <= size_) return OkStatus();
    int rc;
    do {
      rc = ::ftruncate(fd_, static_cast<off_t>(size_));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return ErrnoStatus("ftruncate " + path_, errno);
    allocated_ = 0;
    return OkStatus();
  }

 private:
  int fd_;
  std::string path_;
  // Where the next append goes: the file's length when opened plus what we appended. Writes
  // are positional rather than O_APPEND because a preallocated file is longer than this.
  uint64_t size_;
  uint64_t allocated_ = 0;  // the length Preallocate extended the file to, if it did
};

class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
};

class PosixFileSystemImpl final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus("fstat " + path, err);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(fd, path, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::string> ReadFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    // Read straight into a buffer of the file's size (a WAL segment is 64 MiB): no chunk
    // copies, few system calls. The loop still ends at end-of-file, whatever fstat said.
    struct stat st;
    size_t expected = ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0;
    std::string out(std::max<size_t>(expected, 1 << 16), '\0');
    size_t got = 0;
    while (true) {
      if (got == out.size()) out.resize(out.size() * 2);
      ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return ErrnoStatus("read " + path, err);
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    out.resize(got);
    return out;
  }

  Result<std::string> ReadAt(const std::string& path, uint64_t offset, size_t max_bytes) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    std::string out(max_bytes, '\0');
    size_t got = 0;
    while (got < max_bytes) {
      ssize_t n = ::pread(fd, out.data() + got, max_bytes - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return ErrnoStatus("read " + path, err);
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    out.resize(got);
    return out;
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir " + dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir " + dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDirs(const std::string& dir) override {
    std::string prefix;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      prefix = dir.substr(0, pos);
      if (prefix.empty() || prefix == "/") continue;
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("mkdir " + prefix, errno);
      }
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus("stat " + dir, errno);
    if (!S_ISDIR(st.st_mode)) return IoError("mkdir " + dir + ": exists and is not a directory");
    return OkStatus();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink " + path, errno);
    return OkStatus();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename " + from + " -> " + to, errno);
    }
    return OkStatus();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("truncate " + path, errno);
    }
    return OkStatus();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus("fsync " + dir, err);
    return OkStatus();
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    int rc;
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Status(Code::kUnavailable, "lock " + path +
                                              " is held by another process (is another member "
                                              "using this data directory?)");
      }
      return ErrnoStatus("flock " + path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd, path));
  }

  Result<uint64_t> AvailableBytes(const std::string& dir) override {
    struct statvfs st;
    int rc;
    do {
      rc = ::statvfs(dir.c_str(), &st);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return ErrnoStatus("statvfs " + dir, errno);
    // f_bavail, not f_bfree: what is left for a writer without root's reserved blocks, so a
    // member run as root keeps the same margin.
    return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
  }
};

}  // namespace

FileSystem* PosixFileSystem() {
  static auto* fs = new PosixFileSystemImpl();
  return fs;
}

}  // namespace dolmen::io
