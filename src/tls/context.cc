#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <cstring>
#include <map>
#include <string_view>

#include "tls/identity.h"

namespace dolmen::tls {
namespace {

// --peer-cert-allowed-cn / --peer-cert-allowed-hostname, kept with the context they apply to.
struct AllowedIdentity {
  std::string cn;
  std::string hostname;
};

void FreeAllowedIdentity(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<AllowedIdentity*>(ptr);
}

int AllowedIdentityIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeAllowedIdentity);
  return index;
}

// OpenSSL's verify callback: once the chain verified, the leaf must also be an allowed
// identity. A refusal fails the handshake (the other side gets an alert), as etcd's
// VerifyPeerCertificate does; why is kept for the log (VerifyReasonIndex).
int VerifyAllowedIdentity(int preverified, X509_STORE_CTX* store) {
  if (preverified != 1 || X509_STORE_CTX_get_error_depth(store) != 0) return preverified;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return preverified;
  const auto* allowed = static_cast<const AllowedIdentity*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), AllowedIdentityIndex()));
  if (allowed == nullptr) return preverified;
  Status s =
      CheckAllowedIdentity(X509_STORE_CTX_get_current_cert(store), allowed->cn, allowed->hostname);
  if (s.ok()) return 1;
  if (auto* reason = static_cast<std::string*>(SSL_get_ex_data(ssl, VerifyReasonIndex()))) {
    *reason = s.message();
  }
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// Installs the allowed-identity check on a context whose options ask for one.
void SetAllowedIdentity(SSL_CTX* ctx, const Options& o, int mode) {
  if (o.allowed_cn.empty() && o.allowed_hostname.empty()) {
    SSL_CTX_set_verify(ctx, mode, nullptr);
    return;
  }
  SSL_CTX_set_ex_data(ctx, AllowedIdentityIndex(),
                      new AllowedIdentity{o.allowed_cn, o.allowed_hostname});
  SSL_CTX_set_verify(ctx, mode, VerifyAllowedIdentity);
}

// Go's cipher-suite names (crypto/tls, what --cipher-suites takes) and OpenSSL's for the same
// suites. TLS 1.3 suites are accepted and, as in Go, not configurable.
const std::map<std::string, std::string>& GoCipherSuites() {
  static const std::map<std::string, std::string> suites = {
      {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"},
      {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
      {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
      {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
      {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
      {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
      {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_AES_128_GCM_SHA256", ""},
      {"TLS_AES_256_GCM_SHA384", ""},
      {"TLS_CHACHA20_POLY1305_SHA256", ""},
  };
  return suites;
}

Result<int> ParseVersion(const std::string& text) {
  if (text.empty()) return 0;  // no bound
  if (text == "TLS1.2") return TLS1_2_VERSION;
  if (text == "TLS1.3") return TLS1_3_VERSION;
  return InvalidArgument("unexpected TLS version \"" + text +
                         "\" (must be one of: TLS1.2, TLS1.3)");
}

// SetServerAlpn's mark: the connection's app data points here when it offers HTTP/1.1 only.
constexpr char kHttp1OnlyMark = 0;

// ALPN on the server: HTTP/2 when the client offers it (gRPC clients do), else HTTP/1.1, else
// none (a client without ALPN is still served; the first bytes tell the protocol).
int SelectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static constexpr unsigned char kOurs[] = "\x02h2\x08http/1.1";
  static constexpr unsigned char kHttp1[] = "\x08http/1.1";
  const bool http1_only = SSL_get_app_data(ssl) == &kHttp1OnlyMark;
  const unsigned char* ours = http1_only ? kHttp1 : kOurs;
  const unsigned int ours_len = http1_only ? sizeof(kHttp1) - 1 : sizeof(kOurs) - 1;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, ours_len, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

Status LoadCertAndKey(SSL_CTX* ctx, const Options& o) {
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    return InvalidArgument("cannot load certificate " + o.cert_file + ": " + LastSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgument("cannot load key " + o.key_file + ": " + LastSslError());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return InvalidArgument("key " + o.key_file + " does not match certificate " + o.cert_file +
                           ": " + LastSslError());
  }
  return OkStatus();
}

// The versions, ciphers and trust every context shares.
Result<SslCtxPtr> NewBaseContext(const SSL_METHOD* method, const Options& o) {
  RETURN_IF_ERROR(Validate(o));
  SslCtxPtr ctx(SSL_CTX_new(method), SslCtxDeleter());
  if (!ctx) return Internal("SSL_CTX_new: " + LastSslError());
  ASSIGN_OR_RETURN(int min_version, ParseVersion(o.min_version));
  ASSIGN_OR_RETURN(int max_version, ParseVersion(o.max_version));
  SSL_CTX_set_min_proto_version(ctx.get(), min_version == 0 ? TLS1_2_VERSION : min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  if (!o.cipher_suites.empty()) {
    std::string list;
    for (const std::string& name : o.cipher_suites) {
      const std::string& ours = GoCipherSuites().at(name);
      if (!ours.empty()) list += (list.empty() ? "" : ":") + ours;
    }
    if (!list.empty() && SSL_CTX_set_cipher_list(ctx.get(), list.c_str()) != 1) {
      return InvalidArgument("no usable cipher suite in --cipher-suites: " + LastSslError());
    }
  }
  // Partial writes let the proxy hand SSL_write whatever it has and retry with what is left.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!o.cert_file.empty()) RETURN_IF_ERROR(LoadCertAndKey(ctx.get(), o));
  if (!o.trusted_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), o.trusted_ca_file.c_str(), nullptr) != 1) {
      return InvalidArgument("cannot load trusted CA file " + o.trusted_ca_file + ": " +
                             LastSslError());
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return Internal("cannot load the system's trusted CAs: " + LastSslError());
  }
  if (!o.crl_file.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == nullptr ||
        X509_load_crl_file(lookup, o.crl_file.c_str(), X509_FILETYPE_PEM) <= 0) {
      return InvalidArgument("cannot load CRL file " + o.crl_file + ": " + LastSslError());
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  return ctx;
}

ReloadingContext::FileId IdOf(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace

std::string LastSslError() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "unknown error" : out;
}

int VerifyReasonIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void SetServerAlpn(SSL* ssl, Alpn alpn) {
  SSL_set_app_data(ssl, alpn == Alpn::kHttp1Only ? const_cast<char*>(&kHttp1OnlyMark) : nullptr);
}

Status Validate(const Options& o) {
  if (o.cert_file.empty() != o.key_file.empty()) {
    return InvalidArgument("KeyFile and CertFile must both be present[key: " + o.key_file +
                           ", cert: " + o.cert_file + "]");
  }
  if (o.client_cert_file.empty() != o.client_key_file.empty()) {
    // etcd 3.5's text, its stray bracket included.
    return InvalidArgument(
        "ClientKeyFile and ClientCertFile must both be present or both absent: "
        "key: " +
        o.client_key_file + ", cert: " + o.client_cert_file + "]");
  }
  ASSIGN_OR_RETURN(int min_version, ParseVersion(o.min_version));
  ASSIGN_OR_RETURN(int max_version, ParseVersion(o.max_version));
  if (min_version != 0 && max_version != 0 && min_version > max_version) {
    return InvalidArgument("min version (" + o.min_version + ") is greater than max version (" +
                           o.max_version + ")");
  }
  for (const std::string& name : o.cipher_suites) {
    if (!GoCipherSuites().contains(name)) {
      return InvalidArgument("unexpected TLS cipher suite \"" + name + "\"");
    }
  }
  if (!o.cipher_suites.empty() && min_version == TLS1_3_VERSION) {
    return InvalidArgument("cipher suites cannot be configured when only TLS1.3 is enabled");
  }
  if (!o.allowed_cn.empty() && !o.allowed_hostname.empty()) {
    return InvalidArgument("AllowedCN and AllowedHostname are mutually exclusive (cn=\"" +
                           o.allowed_cn + "\", hostname=\"" + o.allowed_hostname + "\")");
  }
  return OkStatus();
}

Result<SslCtxPtr> NewServerContext(const Options& o) {
  if (o.cert_file.empty()) return InvalidArgument("a TLS server needs a certificate and a key");
  ASSIGN_OR_RETURN(SslCtxPtr ctx, NewBaseContext(TLS_server_method(), o));
  if (o.RequiresClientCert()) {
    SetAllowedIdentity(ctx.get(), o, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    // Tell clients which CAs we accept, so they pick the right certificate.
    if (!o.trusted_ca_file.empty()) {
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.trusted_ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(ctx.get(), names);
      ERR_clear_error();
    }
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectAlpn, nullptr);
  // Session tickets would let a client resume a session made under a certificate since
  // replaced; full handshakes keep reload simple to reason about.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

Result<SslCtxPtr> NewClientContext(const Options& o, bool skip_verify) {
  ASSIGN_OR_RETURN(SslCtxPtr ctx, NewBaseContext(TLS_client_method(), o));
  SetAllowedIdentity(ctx.get(), o, skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER);
  return ctx;
}

Result<std::unique_ptr<ReloadingContext>> ReloadingContext::New(Kind kind, Options options,
                                                                bool skip_verify, LogFn log) {
  std::unique_ptr<ReloadingContext> r(
      new ReloadingContext(kind, std::move(options), skip_verify, std::move(log)));
  r->ids_ = r->Identify();
  ASSIGN_OR_RETURN(r->current_, r->Build());
  return r;
}

ReloadingContext::Ids ReloadingContext::Identify() const {
  return {IdOf(options_.cert_file), IdOf(options_.key_file), IdOf(options_.trusted_ca_file),
          IdOf(options_.crl_file)};
}

Result<SslCtxPtr> ReloadingContext::Build() const {
  return kind_ == Kind::kServer ? NewServerContext(options_)
                                : NewClientContext(options_, skip_verify_);
}

SslCtxPtr ReloadingContext::Current() {
  if (refresh_) {
    std::unique_lock<std::mutex> refresh_lock(refresh_mu_, std::try_to_lock);
    const auto now = std::chrono::steady_clock::now();
    // One connection refreshes; others meanwhile go on with what is there.
    if (refresh_lock.owns_lock() && now >= next_refresh_) {
      next_refresh_ = now + refresh_every_;
      refresh_();
    }
  }
  const Ids ids = Identify();
  std::lock_guard<std::mutex> lock(mu_);
  if (ids == ids_ || ids == failed_ids_) return current_;
  Result<SslCtxPtr> rebuilt = Build();
  if (!rebuilt.ok()) {
    // Often a file caught half-written: the next change is tried again, this one not.
    failed_ids_ = ids;
    if (log_) {
      log_("TLS files changed but cannot be used, keeping the previous ones (" +
           rebuilt.status().message() + ")");
    }
    return current_;
  }
  current_ = std::move(rebuilt).value();
  ids_ = ids;
  if (log_) log_("TLS files changed, new connections use them: " + options_.cert_file);
  return current_;
}

}  // namespace dolmen::tls
