// One TLS connection over a connected socket: the handshake (as the side that accepted it, or
// the side that dialed), a look at the first decrypted bytes, non-blocking and blocking reads and
// writes for callers that speak on it themselves (the peer message stream), and a proxy that
// moves bytes both ways between the TLS connection and a plaintext socket (one end of a
// socketpair whose other end a plaintext server, such as gRPC, reads as if the client were
// local).
//
// Threads: an SSL object is not safe for concurrent use: one thread at a time (the caller's
// lock, or one thread per connection). SIGPIPE is blocked on the thread that handshakes (a
// peer that went away is then an EPIPE, not a signal); other threads that write must block it
// too, or ignore it process-wide, as the member does. The socket is switched to non-blocking;
// it stays the caller's (the caller closes it, and may shutdown() it from another thread to end
// a blocking call or the proxy early).
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "tls/context.h"

namespace dolmen::tls {

class Connection {
 public:
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The ALPN protocol agreed on ("h2", "http/1.1") or "".
  std::string alpn() const;
  // The other side's verified certificate's subject CN, or "" (no certificate).
  std::string PeerCommonName() const;
  // The other side's certificate (owned by the connection), or null.
  X509* PeerCertificate() const;
  // Waits at most `timeout_ms` for `n` decrypted bytes and copies them without consuming
  // them; returns how many arrived (fewer on timeout or close).
  size_t Peek(char* buf, size_t n, int timeout_ms);
  // Moves bytes both ways between this connection and `plain_fd` until either side closes or
  // fails; then shuts the TLS connection down. Does not close plain_fd.
  void ProxyTo(int plain_fd);

  // Non-blocking, for a caller that polls the socket itself: > 0 bytes moved; 0 the other side
  // closed or the connection failed; -1 nothing now: try again once the socket is ready for
  // *want (POLLIN or POLLOUT; a write may need to read first, and a read to write). A write
  // that returned -1 must be retried with the same bytes.
  ssize_t ReadSome(char* buf, size_t n, short* want);
  ssize_t WriteSome(const char* data, size_t n, short* want);
  // Blocking: exactly `n` bytes, or kUnavailable ("closed" at a clean end before the first
  // byte) once the connection ends, fails or (timeout_ms >= 0) the time is up.
  Status ReadFull(char* buf, size_t n, int timeout_ms = -1);
  Status WriteAll(std::string_view data);
  // Sends close_notify (best effort, non-blocking).
  void Shutdown();

 protected:
  Connection(SslCtxPtr ctx, SSL* ssl, int fd) : ctx_(std::move(ctx)), ssl_(ssl), fd_(fd) {}
  // Runs the handshake within `timeout_ms`; returns early (kCancelled) once `wake_fd` (an
  // eventfd, or -1) is readable.
  Status Handshake(bool accept, int timeout_ms, int wake_fd);

  SslCtxPtr ctx_;  // kept alive as long as the connection (a reload may replace it meanwhile)
  SSL* ssl_;
  int fd_;
  std::string verify_reason_;  // filled by the verify callback (context.h, VerifyReasonIndex)
};

// The side that accepted the TCP connection.
class ServerConnection : public Connection {
 public:
  // Handshakes as the server on `fd`, within `timeout_ms`. Fails (with OpenSSL's reason:
  // "certificate verify failed", "peer did not return a certificate", ..., or why an allowed
  // identity check refused the certificate) if the client is refused or too slow.
  // `alpn`: whether h2 is offered (SetServerAlpn).
  static Result<std::unique_ptr<ServerConnection>> Accept(const SslCtxPtr& ctx, int fd,
                                                          int timeout_ms,
                                                          Alpn alpn = Alpn::kH2OrHttp1);

 private:
  using Connection::Connection;
};

// The side that dialed.
class ClientConnection : public Connection {
 public:
  // Handshakes as the client on `fd` towards `host` (the URL's host: an IP address must be an IP
  // SAN of the server's certificate, a name a DNS SAN, unless the context skips verification;
  // empty: no host check), within `timeout_ms`, giving up early once `wake_fd` is readable.
  static Result<std::unique_ptr<ClientConnection>> Connect(const SslCtxPtr& ctx, int fd,
                                                           const std::string& host, int timeout_ms,
                                                           int wake_fd);

 private:
  using Connection::Connection;
};

// A connected socketpair (AF_UNIX, SOCK_STREAM, close-on-exec), for ProxyTo: first is ours,
// second is handed to the plaintext server.
Result<std::pair<int, int>> NewSocketPair();

}  // namespace dolmen::tls
