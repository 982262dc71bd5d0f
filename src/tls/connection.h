// One TLS connection over a connected socket, for the side that accepted it: the handshake,
// a look at the first decrypted bytes, and then a proxy that moves bytes both ways between
// the TLS connection and a plaintext socket (one end of a socketpair whose other end a
// plaintext server, such as gRPC, reads as if the client were local).
//
// Threads: one per connection, the caller's, on which SIGPIPE is blocked from Accept on (a
// client that went away is then an EPIPE, not a signal). The socket is switched to non-blocking; it
// stays the caller's (the caller closes it, and may shutdown() it from another thread to end the
// proxy early).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "tls/context.h"

namespace dolmen::tls {

class ServerConnection {
 public:
  // Handshakes as the server on `fd`, within `timeout_ms`. Fails (with OpenSSL's reason:
  // "certificate verify failed", "peer did not return a certificate", ...) if the client is
  // refused or too slow. `alpn`: whether h2 is offered (SetServerAlpn).
  static Result<std::unique_ptr<ServerConnection>> Accept(const SslCtxPtr& ctx, int fd,
                                                          int timeout_ms,
                                                          Alpn alpn = Alpn::kH2OrHttp1);
  ~ServerConnection();

  // The ALPN protocol agreed on ("h2", "http/1.1") or "".
  std::string alpn() const;
  // The verified client certificate's subject CN, or "" (no certificate).
  std::string PeerCommonName() const;
  // Waits at most `timeout_ms` for `n` decrypted bytes and copies them without consuming
  // them; returns how many arrived (fewer on timeout or close).
  size_t Peek(char* buf, size_t n, int timeout_ms);
  // Moves bytes both ways between this connection and `plain_fd` until either side closes or
  // fails; then shuts the TLS connection down. Does not close plain_fd.
  void ProxyTo(int plain_fd);

 private:
  ServerConnection(SslCtxPtr ctx, SSL* ssl, int fd) : ctx_(std::move(ctx)), ssl_(ssl), fd_(fd) {}
  SslCtxPtr ctx_;  // kept alive as long as the connection (a reload may replace it meanwhile)
  SSL* ssl_;
  int fd_;
};

// A connected socketpair (AF_UNIX, SOCK_STREAM, close-on-exec), for ProxyTo: first is ours,
// second is handed to the plaintext server.
Result<std::pair<int, int>> NewSocketPair();

}  // namespace dolmen::tls
