// OpenSSL contexts built from Options, with etcd's rules and error texts, and kept current as
// the files on disk change.
//
// Reload: every new connection asks ReloadingContext::Current(), which looks at the files'
// identity (device, inode, size, mtime: four stat calls) and rebuilds the context when one of
// them changed. The certificate, the key, the CRL and, unlike etcd (etcd-io/etcd#11555), the
// CA bundle are all re-read. A rebuild that fails (a half-written file, a key that does not
// match the certificate) keeps the previous context and logs why, once per change. Existing
// connections keep the context they were made with until they close.
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"
#include "tls/options.h"

namespace dolmen::tls {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::shared_ptr<SSL_CTX>;

// Checks what etcd checks before it serves: versions, cipher names, file pairs
// (kInvalidArgument with etcd's text). Reads no file.
Status Validate(const Options& options);

// A server context: our certificate and key; client certificates required and verified against
// the CA bundle (or the system's roots) when Options::RequiresClientCert, and then also checked
// against Options::allowed_cn / allowed_hostname (the handshake fails otherwise); the CRL
// checked for the whole chain; ALPN answering h2 or http/1.1.
Result<SslCtxPtr> NewServerContext(const Options& options);
// What a server connection offers in ALPN. A URL that serves HTTP only (etcd 3.5's
// --listen-client-http-urls) must not offer h2: the HTTP server speaks HTTP/1.1 only.
enum class Alpn { kH2OrHttp1, kHttp1Only };
// Before the handshake of a connection made from a NewServerContext: its ALPN answer. Without
// it, h2 or http/1.1.
void SetServerAlpn(SSL* ssl, Alpn alpn);

// A client context for dialing: our certificate and key if given (for servers that verify
// clients); the server verified against the CA bundle, or not at all if `skip_verify` (what
// etcd does towards auto-TLS peers, whose certificates nobody signed). The server's certificate
// must also be an allowed identity (etcd applies --peer-cert-allowed-cn both ways); its host
// name is checked per connection (ClientConnection::Connect).
Result<SslCtxPtr> NewClientContext(const Options& options, bool skip_verify);

using LogFn = std::function<void(const std::string&)>;

class ReloadingContext {
 public:
  enum class Kind { kServer, kClient };
  // Builds the first context; fails as NewServerContext / NewClientContext do.
  static Result<std::unique_ptr<ReloadingContext>> New(Kind kind, Options options, bool skip_verify,
                                                       LogFn log);

  // The context to use for a new connection: rebuilt first if a file changed. Thread-safe.
  SslCtxPtr Current();
  // Before serving: `refresh` runs (on a connection's thread, before the files are looked at)
  // at most once per `every`, e.g. to renew an auto-TLS certificate in place.
  void SetRefresh(std::function<void()> refresh, std::chrono::seconds every) {
    refresh_ = std::move(refresh);
    refresh_every_ = every;
  }
  const Options& options() const { return options_; }

  // Which file a path names and its version, as far as stat tells.
  struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };

 private:
  using Ids = std::array<FileId, 4>;  // cert, key, CA, CRL

  ReloadingContext(Kind kind, Options options, bool skip_verify, LogFn log)
      : kind_(kind),
        options_(std::move(options)),
        skip_verify_(skip_verify),
        log_(std::move(log)) {}
  Ids Identify() const;
  Result<SslCtxPtr> Build() const;

  const Kind kind_;
  const Options options_;
  const bool skip_verify_;
  const LogFn log_;

  std::function<void()> refresh_;
  std::chrono::seconds refresh_every_{0};
  std::mutex refresh_mu_;
  std::chrono::steady_clock::time_point next_refresh_{};  // guarded by refresh_mu_

  std::mutex mu_;
  SslCtxPtr current_;  // guarded by mu_
  Ids ids_{};          // guarded by mu_: the files current_ was built from
  Ids failed_ids_{};   // guarded by mu_: the files a rebuild last failed on (logged once)
};

// The SSL ex_data slot where a connection keeps a std::string* that the verify callback fills
// with why a certificate was refused beyond OpenSSL's own checks (an identity not allowed).
int VerifyReasonIndex();

// OpenSSL's error queue as text (and cleared), for messages.
std::string LastSslError();

}  // namespace dolmen::tls
