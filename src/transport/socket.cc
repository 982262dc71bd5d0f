#include "transport/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

namespace dolmen::transport {
namespace {

constexpr int kKeepaliveIdleS = 10;
constexpr int kKeepaliveIntervalS = 5;
constexpr int kKeepaliveProbes = 2;
constexpr unsigned kUserTimeoutMs = 15'000;
constexpr std::string_view kUnixPrefix = "unix:";

using Deadline = std::chrono::steady_clock::time_point;

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

Status Errno(const std::string& what) { return Unavailable(what + ": " + std::strerror(errno)); }

Result<AddrInfoPtr> Resolve(const std::string& target, bool passive) {
  size_t colon = target.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("no port in " + target);
  std::string host = target.substr(0, colon);
  std::string port = target.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0) return Unavailable("resolve " + target + ": " + ::gai_strerror(rc));
  return AddrInfoPtr(result);
}

bool IsUnixTarget(const std::string& target) { return target.starts_with(kUnixPrefix); }

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("unix socket path \"" + path + "\" is empty or longer than " +
                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

const sockaddr* AsSockaddr(const sockaddr_un& addr) {
  return reinterpret_cast<const sockaddr*>(&addr);
}

// bind found a file at the path. A socket file that refuses connections was left by a process
// that died without removing it: remove it so that bind can try again. Anything else stays.
Status RemoveIfStale(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? OkStatus() : Errno("bind " + path);  // gone meanwhile: try again
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Unavailable("bind " + path + ": a file that is not a socket is in the way");
  }
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return Errno("socket");
  int rc = ::connect(probe, AsSockaddr(addr), sizeof(addr));
  int error = errno;
  ::close(probe);
  if (rc == 0 || error == EAGAIN || error == EINPROGRESS) {  // EAGAIN: its backlog is full
    return Unavailable("bind " + path + ": address already in use (a process listens on it)");
  }
  if (error != ECONNREFUSED) {
    errno = error;
    return Errno("bind " + path + ": probing the socket file in the way");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno("bind " + path + ": removing the stale socket file");
  }
  return OkStatus();
}

Result<std::vector<ListeningSocket>> ListenOnUnix(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  auto fail = [fd](Status s) -> Status {
    ::close(fd);
    return s;
  };
  if (::bind(fd, AsSockaddr(addr), sizeof(addr)) != 0) {
    if (errno != EADDRINUSE) return fail(Errno("bind " + path));
    if (Status s = RemoveIfStale(path, addr); !s.ok()) return fail(s);
    if (::bind(fd, AsSockaddr(addr), sizeof(addr)) != 0) return fail(Errno("bind " + path));
  }
  // From here the file is ours: remove it again on failure.
  ListeningSocket out;
  out.fd = fd;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  out.unix_path = ec ? path : absolute.string();  // removed on close even after a chdir
  struct stat st {};
  if (::listen(fd, SOMAXCONN) != 0 || ::lstat(path.c_str(), &st) != 0) {
    Status s = Errno("listen " + path);
    ::unlink(path.c_str());
    return fail(s);
  }
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return std::vector<ListeningSocket>{out};
}

// One connection attempt to one address, non-blocking so that it can be bounded and cancelled.
Result<int> ConnectOne(int family, const sockaddr* addr, socklen_t len, const std::string& target,
                       Deadline deadline, int wake_fd) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket");
  int rc = ::connect(fd, addr, len);
  if (rc != 0 && errno == EINPROGRESS) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        errno = ETIMEDOUT;
        break;
      }
      pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
      int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      if (wake_fd >= 0 && (fds[1].revents & POLLIN)) {
        ::close(fd);
        return Status(Code::kCancelled, "connect to " + target + " cancelled");
      }
      if (fds[0].revents != 0) {
        int err = 0;
        socklen_t err_len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
        errno = err;
        rc = err == 0 ? 0 : -1;
        break;
      }
    }
  }
  // A unix socket connects at once or fails at once (EAGAIN when the listener's backlog is
  // full, which is a failure like any other: the caller backs off).
  if (rc != 0) {
    Status failed = Errno("connect " + target);
    ::close(fd);
    return failed;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  TuneStreamSocket(fd);
  return fd;
}

}  // namespace

Result<std::vector<ListeningSocket>> ListenOn(const std::string& target, bool reuse_port) {
  if (IsUnixTarget(target)) return ListenOnUnix(target.substr(kUnixPrefix.size()));
  ASSIGN_OR_RETURN(AddrInfoPtr addrs, Resolve(target, /*passive=*/true));
  std::vector<ListeningSocket> sockets;
  auto fail = [&](Status s) -> Status {
    for (const ListeningSocket& socket : sockets) CloseListening(socket);
    return s;
  };
  for (addrinfo* ai = addrs.get(); ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return fail(Errno("socket"));
    sockets.emplace_back().fd = fd;
    int one = 1;
    // SO_REUSEADDR so a restarted member can bind while old connections linger in TIME_WAIT;
    // SO_REUSEPORT, which lets a second process share the port, only when asked for
    // (etcd's --socket-reuse-port).
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) return fail(Errno("bind " + target));
    if (::listen(fd, SOMAXCONN) != 0) return fail(Errno("listen " + target));
  }
  if (sockets.empty()) return Unavailable("no address for " + target);
  return sockets;
}

void CloseListening(const ListeningSocket& socket) {
  if (!socket.unix_path.empty()) {
    // Removed before the close, as etcd does, so that nobody finds a dead socket file; but only
    // if it is still the file bind made.
    struct stat st {};
    if (::lstat(socket.unix_path.c_str(), &st) == 0 && st.st_dev == socket.dev &&
        st.st_ino == socket.ino) {
      ::unlink(socket.unix_path.c_str());
    }
  }
  if (socket.fd >= 0) ::close(socket.fd);
}

Result<int> ConnectTo(const std::string& target, std::chrono::milliseconds timeout, int wake_fd) {
  const Deadline deadline = std::chrono::steady_clock::now() + timeout;
  if (IsUnixTarget(target)) {
    ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(target.substr(kUnixPrefix.size())));
    return ConnectOne(AF_UNIX, AsSockaddr(addr), sizeof(addr), target, deadline, wake_fd);
  }
  ASSIGN_OR_RETURN(AddrInfoPtr addrs, Resolve(target, /*passive=*/false));
  Status last = Unavailable("no address for " + target);
  for (addrinfo* ai = addrs.get(); ai != nullptr; ai = ai->ai_next) {
    Result<int> fd =
        ConnectOne(ai->ai_family, ai->ai_addr, ai->ai_addrlen, target, deadline, wake_fd);
    if (fd.ok() || fd.status().code() == Code::kCancelled) return fd;
    last = fd.status();
  }
  return last;
}

void TuneStreamSocket(int fd) {
  int domain = 0;
  socklen_t len = sizeof(domain);
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain == AF_UNIX) return;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = kKeepaliveIdleS, interval = kKeepaliveIntervalS, probes = kKeepaliveProbes;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  unsigned user_timeout = kUserTimeoutMs;
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

void DrainEventFd(int fd) {
  uint64_t value;
  while (::read(fd, &value, sizeof(value)) < 0 && errno == EINTR) {
  }
}

void SignalEventFd(int fd) {
  uint64_t one = 1;
  while (::write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

}  // namespace dolmen::transport
