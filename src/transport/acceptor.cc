#include "transport/acceptor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "base/check.h"

namespace dolmen::transport {
namespace {

std::string RemoteAddress(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unix";
}

}  // namespace

std::string AcceptedConnection::remote_ip() const {
  if (remote_.starts_with("[")) return remote_.substr(1, remote_.find(']') - 1);
  const size_t colon = remote_.rfind(':');
  return colon == std::string::npos ? "" : remote_.substr(0, colon);
}

void SetReceiveTimeout(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

bool AcceptedConnection::PeekFirstByte(int timeout_s, char* first) {
  SetReceiveTimeout(fd_, timeout_s);
  ssize_t n;
  do {
    n = ::recv(fd_, first, 1, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  SetReceiveTimeout(fd_, 0);
  return n == 1;
}

size_t AcceptedConnection::PeekPrefix(char* buf, size_t n, int timeout_s) {
  char first = 0;
  if (n == 0 || !PeekFirstByte(timeout_s, &first)) return 0;
  // The rest normally came in the same segment. If not, look again until it has: poll cannot
  // wait for "more than is there", so the wait is a short pause, bounded by the deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    ssize_t got = ::recv(fd_, buf, n, MSG_PEEK | MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return 0;  // closed or failed after its first byte
    if (static_cast<size_t>(got) == n || std::chrono::steady_clock::now() >= deadline) {
      return static_cast<size_t>(got);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void AcceptedConnection::Decided() {
  if (std::exchange(decided_, true)) return;
  std::lock_guard<std::mutex> lock(acceptor_->mu_);
  --acceptor_->undecided_;
}

int AcceptedConnection::Release() {
  std::lock_guard<std::mutex> lock(acceptor_->mu_);
  if (acceptor_->stopping_) return -1;
  return std::exchange(fd_, -1);
}

bool AcceptedConnection::HandOverUnlessStopping(const std::function<void()>& hand_over) {
  std::lock_guard<std::mutex> lock(acceptor_->mu_);
  if (acceptor_->stopping_) return false;
  hand_over();
  return true;
}

Acceptor::~Acceptor() {
  Stop();
  for (const Listening& l : listening_) CloseListening(l.socket);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status Acceptor::Start(std::vector<Listening> listening, Serve serve) {
  CHECK(!acceptor_.joinable()) << "Acceptor started twice";
  listening_ = std::move(listening);
  serve_ = std::move(serve);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return Unavailable(std::string("eventfd: ") + std::strerror(errno));
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return OkStatus();
}

void Acceptor::StopAccepting() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (accepting_stopped_) return;
    accepting_stopped_ = true;
  }
  if (wake_fd_ >= 0) SignalEventFd(wake_fd_);
  if (acceptor_.joinable()) acceptor_.join();
  // A stopped server refuses connections at once (a listening socket nobody accepts from
  // would let clients connect and then hang until their deadline).
  for (const Listening& l : listening_) CloseListening(l.socket);
  listening_.clear();
}

void Acceptor::Stop() {
  StopAccepting();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  std::list<std::unique_ptr<AcceptedConnection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Unblocks each connection's reads and polls; its thread then closes the socket.
    for (auto& c : connections_) {
      if (c->fd_ >= 0) ::shutdown(c->fd_, SHUT_RDWR);
    }
    connections.swap(connections_);
  }
  for (auto& c : connections) c->thread_.join();
}

void Acceptor::AcceptLoop() {
  std::vector<pollfd> fds;
  for (const Listening& l : listening_) fds.push_back({l.socket.fd, POLLIN, 0});
  fds.push_back({wake_fd_, POLLIN, 0});
  while (true) {
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // only on a bad descriptor, which would be a bug of ours; Stop still works
    }
    if (fds.back().revents != 0) return;  // Stop
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      sockaddr_storage addr{};
      socklen_t addr_len = sizeof(addr);
      int fd = ::accept4(fds[i].fd, reinterpret_cast<sockaddr*>(&addr), &addr_len, SOCK_CLOEXEC);
      if (fd < 0) continue;  // the peer gave up, or a transient shortage: keep serving
      std::lock_guard<std::mutex> lock(mu_);
      if (accepting_stopped_) {
        ::close(fd);
        return;
      }
      ReapDoneLocked();
      if (undecided_ >= max_undecided_) {
        // A flood of connections that say nothing: refuse more rather than grow threads
        // without bound. Real clients speak at once, so they are rarely here.
        ::close(fd);
        continue;
      }
      ++undecided_;
      auto connection = std::make_unique<AcceptedConnection>();
      AcceptedConnection* c = connection.get();
      c->acceptor_ = this;
      c->fd_ = fd;
      c->source_ = listening_[i].source;
      c->remote_ = RemoteAddress(addr);
      c->thread_ = std::thread([this, c] { Run(c); });
      connections_.push_back(std::move(connection));
    }
  }
}

void Acceptor::Run(AcceptedConnection* connection) {
  serve_(*connection);
  connection->Decided();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (connection->fd_ >= 0) ::close(connection->fd_);
    connection->fd_ = -1;
  }
  connection->done_.store(true);
}

void Acceptor::ReapDoneLocked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done_.load()) {
      (*it)->thread_.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace dolmen::transport
