#include "transport/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace dolmen::transport {
namespace {

constexpr int kKeepaliveIdleS = 10;
constexpr int kKeepaliveIntervalS = 5;
constexpr int kKeepaliveProbes = 2;
constexpr unsigned kUserTimeoutMs = 15'000;

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

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

Status Errno(const std::string& what) { return Unavailable(what + ": " + std::strerror(errno)); }

}  // namespace

Result<std::vector<int>> ListenOn(const std::string& target) {
  ASSIGN_OR_RETURN(AddrInfoPtr addrs, Resolve(target, /*passive=*/true));
  std::vector<int> fds;
  auto fail = [&](Status s) -> Status {
    for (int fd : fds) ::close(fd);
    return s;
  };
  for (addrinfo* ai = addrs.get(); ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return fail(Errno("socket"));
    fds.push_back(fd);
    int one = 1;
    // SO_REUSEADDR so a restarted member can bind while old connections linger in TIME_WAIT;
    // never SO_REUSEPORT, which would let a second member share the port.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) return fail(Errno("bind " + target));
    if (::listen(fd, SOMAXCONN) != 0) return fail(Errno("listen " + target));
  }
  if (fds.empty()) return Unavailable("no address for " + target);
  return fds;
}

Result<int> ConnectTo(const std::string& target, std::chrono::milliseconds timeout, int wake_fd) {
  ASSIGN_OR_RETURN(AddrInfoPtr addrs, Resolve(target, /*passive=*/false));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Status last = Unavailable("no address for " + target);
  for (addrinfo* ai = addrs.get(); ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return Errno("socket");
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
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
          socklen_t len = sizeof(err);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          errno = err;
          rc = err == 0 ? 0 : -1;
          break;
        }
      }
    }
    if (rc == 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      TuneStreamSocket(fd);
      return fd;
    }
    last = Errno("connect " + target);
    ::close(fd);
  }
  return last;
}

void TuneStreamSocket(int fd) {
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
