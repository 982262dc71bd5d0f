#include "tls/connection.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <utility>

#include "tls/identity.h"

namespace dolmen::tls {
namespace {

using Clock = std::chrono::steady_clock;

// Bounds what the proxy holds per direction: reads stop while a buffer is full, so a slow
// reader on one side pushes back on the other instead of growing memory.
constexpr size_t kBufferBytes = 64 << 10;

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for what OpenSSL asked for (`error` from SSL_get_error); false on timeout, on a
// socket that is closed or failing, or once `wake_fd` (if >= 0) is readable. A time_point::max()
// deadline waits without a bound.
bool WaitFor(int fd, int error, Clock::time_point deadline, int wake_fd = -1) {
  pollfd p[2] = {{fd, static_cast<short>(error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0},
                 {wake_fd, POLLIN, 0}};
  while (true) {
    const int timeout = deadline == Clock::time_point::max() ? -1 : RemainingMs(deadline);
    int n = ::poll(p, wake_fd >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (wake_fd >= 0 && p[1].revents != 0) return false;
    return n > 0 && (p[0].revents & (POLLIN | POLLOUT)) != 0;
  }
}

bool IsRetry(int error) { return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE; }

// OpenSSL writes records with write(2), which raises SIGPIPE once the client has gone; on this
// thread it must fail with EPIPE instead, whatever the process does with SIGPIPE (a blocked,
// thread-directed SIGPIPE stays pending and harmless).
void BlockSigpipeOnThisThread() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

}  // namespace

Result<std::pair<int, int>> NewSocketPair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Unavailable(std::string("socketpair: ") + std::strerror(errno));
  }
  return std::make_pair(fds[0], fds[1]);
}

Status Connection::Handshake(bool accept, int timeout_ms, int wake_fd) {
  BlockSigpipeOnThisThread();
  SetNonBlocking(fd_);
  SSL_set_fd(ssl_, fd_);
  SSL_set_ex_data(ssl_, VerifyReasonIndex(), &verify_reason_);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ERR_clear_error();
    int rc = accept ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (rc == 1) return OkStatus();
    int error = SSL_get_error(ssl_, rc);
    if (IsRetry(error) && WaitFor(fd_, error, deadline, wake_fd)) continue;
    std::string why;
    if (IsRetry(error)) {
      if (RemainingMs(deadline) > 0 && wake_fd >= 0)
        return Status(Code::kCancelled, "TLS handshake cancelled");
      why = RemainingMs(deadline) == 0 ? "handshake timed out" : "connection closed";
    } else if (!verify_reason_.empty()) {
      why = verify_reason_;
    } else if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      why = "connection closed during the handshake";
    } else {
      why = LastSslError();
      long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) why = X509_verify_cert_error_string(verify);
    }
    return Unavailable("TLS handshake failed: " + why);
  }
}

Result<std::unique_ptr<ServerConnection>> ServerConnection::Accept(const SslCtxPtr& ctx, int fd,
                                                                   int timeout_ms, Alpn alpn) {
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return Internal("SSL_new: " + LastSslError());
  SetServerAlpn(ssl, alpn);
  std::unique_ptr<ServerConnection> c(new ServerConnection(ctx, ssl, fd));
  RETURN_IF_ERROR(c->Handshake(true, timeout_ms, -1));
  return c;
}

Result<std::unique_ptr<ClientConnection>> ClientConnection::Connect(const SslCtxPtr& ctx, int fd,
                                                                    const std::string& host,
                                                                    int timeout_ms, int wake_fd) {
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return Internal("SSL_new: " + LastSslError());
  std::unique_ptr<ClientConnection> c(new ClientConnection(ctx, ssl, fd));
  if (!host.empty()) ExpectServerHost(ssl, host);
  RETURN_IF_ERROR(c->Handshake(false, timeout_ms, wake_fd));
  return c;
}

Connection::~Connection() { SSL_free(ssl_); }

std::string Connection::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), data == nullptr ? 0 : len);
}

std::string Connection::PeerCommonName() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  X509_free(cert);
  return cn;
}

size_t Connection::Peek(char* buf, size_t n, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ERR_clear_error();
    int got = SSL_peek(ssl_, buf, static_cast<int>(n));
    if (got > 0 && static_cast<size_t>(got) == n) return n;
    int error = got > 0 ? SSL_ERROR_WANT_READ : SSL_get_error(ssl_, got);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return 0;
    // Fewer bytes than asked for (a record cut short) or none yet: wait for the next record.
    if (!WaitFor(fd_, error, deadline)) return got > 0 ? static_cast<size_t>(got) : 0;
  }
}

void Connection::ProxyTo(int plain_fd) {
  BlockSigpipeOnThisThread();
  SetNonBlocking(plain_fd);
  std::string to_plain;  // decrypted, not yet written to plain_fd
  std::string to_tls;    // read from plain_fd, not yet taken by SSL_write
  to_plain.reserve(kBufferBytes);
  to_tls.reserve(kBufferBytes);
  bool tls_open = true;    // the client may still send
  bool plain_open = true;  // the plaintext server may still send
  char buf[16 << 10];
  while (true) {
    bool tls_wants_write = false;
    bool tls_wants_read = false;
    // TLS -> plain. SSL_read may have whole records buffered, so read until it asks for more.
    while (tls_open && to_plain.size() < kBufferBytes) {
      ERR_clear_error();
      int n = SSL_read(ssl_, buf,
                       static_cast<int>(std::min(sizeof(buf), kBufferBytes - to_plain.size())));
      if (n > 0) {
        to_plain.append(buf, static_cast<size_t>(n));
        continue;
      }
      int error = SSL_get_error(ssl_, n);
      if (error == SSL_ERROR_WANT_READ)
        tls_wants_read = true;
      else if (error == SSL_ERROR_WANT_WRITE)
        tls_wants_write = true;
      else
        tls_open = false;  // close_notify, reset or a protocol error: no more input
      break;
    }
    while (!to_plain.empty()) {
      ssize_t n = ::send(plain_fd, to_plain.data(), to_plain.size(), MSG_NOSIGNAL);
      if (n > 0) {
        to_plain.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return;  // the plaintext server is gone
    }
    if (!tls_open && to_plain.empty()) ::shutdown(plain_fd, SHUT_WR);
    // plain -> TLS.
    while (plain_open && to_tls.size() < kBufferBytes) {
      ssize_t n = ::recv(plain_fd, buf, std::min(sizeof(buf), kBufferBytes - to_tls.size()), 0);
      if (n > 0) {
        to_tls.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      plain_open = false;
    }
    while (!to_tls.empty()) {
      ERR_clear_error();
      int n = SSL_write(ssl_, to_tls.data(), static_cast<int>(to_tls.size()));
      if (n > 0) {
        to_tls.erase(0, static_cast<size_t>(n));
        continue;
      }
      int error = SSL_get_error(ssl_, n);
      if (error == SSL_ERROR_WANT_WRITE)
        tls_wants_write = true;
      else if (error == SSL_ERROR_WANT_READ)
        tls_wants_read = true;
      else
        return;  // the client is gone
      break;
    }
    if (!plain_open && to_tls.empty()) {
      SSL_shutdown(ssl_);  // close_notify; best effort, the socket closes next anyway
      return;
    }
    if (!tls_open && !plain_open) return;
    pollfd fds[2] = {{fd_, 0, 0}, {plain_fd, 0, 0}};
    if (tls_open && to_plain.size() < kBufferBytes) fds[0].events |= POLLIN;
    if (tls_wants_read) fds[0].events |= POLLIN;
    if (tls_wants_write || !to_tls.empty()) fds[0].events |= POLLOUT;
    if (plain_open && to_tls.size() < kBufferBytes) fds[1].events |= POLLIN;
    if (!to_plain.empty()) fds[1].events |= POLLOUT;
    // A side we wait for nothing from is left out: a closed socket reports POLLHUP even when
    // no event is asked for, which would spin this loop until the other side closes too.
    for (pollfd& p : fds) {
      if (p.events == 0) p.fd = -1;
    }
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    // A socket shut down (by Stop) or reset shows as POLLHUP/POLLERR: the reads and writes
    // above then fail and end the loop.
  }
}

X509* Connection::PeerCertificate() const { return SSL_get0_peer_certificate(ssl_); }

ssize_t Connection::ReadSome(char* buf, size_t n, short* want) {
  ERR_clear_error();
  int got = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (got > 0) return got;
  int error = SSL_get_error(ssl_, got);
  if (!IsRetry(error)) return 0;
  *want = error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
  return -1;
}

ssize_t Connection::WriteSome(const char* data, size_t n, short* want) {
  ERR_clear_error();
  int put = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (put > 0) return put;
  int error = SSL_get_error(ssl_, put);
  if (!IsRetry(error)) return 0;
  *want = error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
  return -1;
}

Status Connection::ReadFull(char* buf, size_t n, int timeout_ms) {
  const auto deadline = timeout_ms < 0 ? Clock::time_point::max()
                                       : Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t done = 0;
  while (done < n) {
    short want = 0;
    ssize_t got = ReadSome(buf + done, n - done, &want);
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    if (got == 0) return Unavailable(done == 0 ? "closed" : "connection closed inside a frame");
    if (!WaitFor(fd_, want == POLLOUT ? SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ, deadline)) {
      return Unavailable("connection closed or timed out");
    }
  }
  return OkStatus();
}

Status Connection::WriteAll(std::string_view data) {
  while (!data.empty()) {
    short want = 0;
    ssize_t put = WriteSome(data.data(), data.size(), &want);
    if (put > 0) {
      data.remove_prefix(static_cast<size_t>(put));
      continue;
    }
    if (put == 0 || !WaitFor(fd_, want == POLLOUT ? SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ,
                             Clock::time_point::max())) {
      return Unavailable("TLS write failed: connection closed");
    }
  }
  return OkStatus();
}

void Connection::Shutdown() {
  ERR_clear_error();
  SSL_shutdown(ssl_);
}

}  // namespace dolmen::tls
