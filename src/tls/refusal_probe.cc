#include "tls/refusal_probe.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tls/identity.h"

namespace dolmen::tls {
namespace {

// A blocking socket connected to host:port whose reads and writes give up after timeout_ms;
// -1 if it cannot connect.
int ConnectWithTimeouts(const std::string& host, const std::string& port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

// The reason of OpenSSL's last error ("sslv3 alert handshake failure"), or "".
std::string LastReason() {
  const unsigned long e = ERR_peek_last_error();
  const char* reason = e == 0 ? nullptr : ERR_reason_error_string(e);
  ERR_clear_error();
  return reason == nullptr ? "" : reason;
}

std::string PeerRefused(const std::string& alert) {
  return "the peer refused this member's certificate (TLS alert: " + alert +
         "; the peer's log says why)";
}

}  // namespace

std::string ProbeTlsRefusal(const SslCtxPtr& ctx, const std::string& host, const std::string& port,
                            int timeout_ms) {
  const int fd = ConnectWithTimeouts(host, port, timeout_ms);
  if (fd < 0) return "";
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) {
    ::close(fd);
    return "";
  }
  ExpectServerHost(ssl, host);
  SSL_set_fd(ssl, fd);
  std::string why;
  ERR_clear_error();
  if (SSL_connect(ssl) != 1) {
    const long verify = SSL_get_verify_result(ssl);
    const std::string reason = LastReason();
    if (verify != X509_V_OK) {
      why = std::string("this member refused the peer's certificate: ") +
            X509_verify_cert_error_string(verify);
    } else if (reason.find("alert") != std::string::npos) {
      why = PeerRefused(reason);
    }
  } else {
    // TLS 1.3: the server checks our certificate after our handshake ended; its alert, if
    // any, is what the first read returns. A timeout (nothing to read) means it accepted.
    char byte;
    if (SSL_read(ssl, &byte, 1) <= 0) {
      const std::string reason = LastReason();
      if (reason.find("alert") != std::string::npos) why = PeerRefused(reason);
    }
  }
  SSL_free(ssl);
  ::close(fd);
  return why;
}

}  // namespace dolmen::tls
