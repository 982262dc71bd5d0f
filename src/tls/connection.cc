#include "tls/connection.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

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

// Waits for what OpenSSL asked for (`error` from SSL_get_error); false on timeout or a
// socket that is closed or failing.
bool WaitFor(int fd, int error, Clock::time_point deadline) {
  pollfd p{fd, static_cast<short>(error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
  while (true) {
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    return n > 0 && (p.revents & (POLLIN | POLLOUT)) != 0;
  }
}

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

Result<std::unique_ptr<ServerConnection>> ServerConnection::Accept(const SslCtxPtr& ctx, int fd,
                                                                   int timeout_ms, Alpn alpn) {
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return Internal("SSL_new: " + LastSslError());
  SetServerAlpn(ssl, alpn);
  std::unique_ptr<ServerConnection> c(new ServerConnection(ctx, ssl, fd));
  BlockSigpipeOnThisThread();
  SetNonBlocking(fd);
  SSL_set_fd(ssl, fd);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ERR_clear_error();
    int rc = SSL_accept(ssl);
    if (rc == 1) return c;
    int error = SSL_get_error(ssl, rc);
    if ((error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) &&
        WaitFor(fd, error, deadline)) {
      continue;
    }
    std::string why;
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      why = RemainingMs(deadline) == 0 ? "handshake timed out" : "connection closed";
    } else if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      why = "connection closed during the handshake";
    } else {
      why = LastSslError();
      long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) why = X509_verify_cert_error_string(verify);
    }
    return Unavailable("TLS handshake failed: " + why);
  }
}

ServerConnection::~ServerConnection() { SSL_free(ssl_); }

std::string ServerConnection::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), data == nullptr ? 0 : len);
}

std::string ServerConnection::PeerCommonName() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  X509_free(cert);
  return cn;
}

size_t ServerConnection::Peek(char* buf, size_t n, int timeout_ms) {
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

void ServerConnection::ProxyTo(int plain_fd) {
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

}  // namespace dolmen::tls
