#include "transport/peer_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/pem.h>

#include "log/log.h"
#include "tls/identity.h"

namespace dolmen::transport {
namespace {

// How often gRPC's file watcher re-reads the certificate, key and CA for channels (the
// message stream's context looks at the files on every new connection instead).
constexpr unsigned kGrpcRefreshS = 5;
constexpr auto kRefreshEvery = std::chrono::hours(1);

void LogWarning(const std::string& line) { log::Warn(line); }

// The host part of gRPC's target name ("127.0.0.1:2380", "[::1]:2380", "name").
std::string HostOf(std::string_view target) {
  if (!target.empty() && target.front() == '[') {
    size_t close = target.find(']');
    return std::string(target.substr(1, close == std::string_view::npos ? target.npos : close - 1));
  }
  size_t colon = target.rfind(':');
  if (colon != std::string_view::npos && target.find(':') == colon)
    target = target.substr(0, colon);
  return std::string(target);
}

// The checks OpenSSL's own verification does not make on a gRPC channel: the server's
// certificate names the URL's host (unless verification is skipped, as towards auto-TLS peers),
// and is an allowed identity (--peer-cert-allowed-cn / -hostname). The chain itself is verified
// by gRPC against the CA bundle.
class PeerVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  PeerVerifier(bool check_host, tls::Options files)
      : check_host_(check_host), files_(std::move(files)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    *sync_status = Check(request);
    if (!sync_status->ok()) {
      log::Warn(
          "refused a peer's certificate",
          {{"target", std::string(request->target_name().data(), request->target_name().size())},
           {"error", sync_status->error_message()}});
    }
    return true;  // answered synchronously
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  grpc::Status Check(grpc::experimental::TlsCustomVerificationCheckRequest* request) const {
    const grpc::string_ref pem = request->peer_cert();
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = bio == nullptr ? nullptr : PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (cert == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "peer sent no certificate");
    }
    Status s;
    const std::string host =
        HostOf(std::string_view(request->target_name().data(), request->target_name().size()));
    if (check_host_ && !tls::NamesHost(cert, host)) {
      s = Status(Code::kFailedPrecondition,
                 "certificate does not name the peer URL's host " + host);
    }
    if (s.ok()) s = tls::CheckAllowedIdentity(cert, files_.allowed_cn, files_.allowed_hostname);
    X509_free(cert);
    if (s.ok()) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, s.message());
  }

  const bool check_host_;
  const tls::Options files_;
};

// `f`: o.files as a dialing member presents them (tls::Options::Dialing).
std::shared_ptr<grpc::ChannelCredentials> NewCredentials(const TlsOptions& o, const tls::Options& f,
                                                         bool check_host) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  if (!f.cert_file.empty() || !f.trusted_ca_file.empty()) {
    options.set_certificate_provider(
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            f.key_file, f.cert_file, f.trusted_ca_file, kGrpcRefreshS));
    if (!f.cert_file.empty()) options.watch_identity_key_cert_pairs();
    if (!f.trusted_ca_file.empty()) options.watch_root_certs();
  }
  options.set_verify_server_certs(!o.skip_verify);
  // The host is checked by PeerVerifier (gRPC's per-call check would compare the call's
  // authority with a certificate we may have been told not to verify).
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PeerVerifier>(
          check_host && !o.skip_verify, f));
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace

Result<std::shared_ptr<PeerTls>> PeerTls::New(const TlsOptions& options) {
  std::shared_ptr<PeerTls> t(new PeerTls(options));
  RETURN_IF_ERROR(tls::Validate(options.files));
  if (!options.files.empty()) {
    ASSIGN_OR_RETURN(t->server_, tls::ReloadingContext::New(tls::ReloadingContext::Kind::kServer,
                                                            options.files, false, LogWarning));
  }
  // Dialing presents --peer-client-cert-file if given, else the server's pair.
  const tls::Options dialing = options.files.Dialing();
  ASSIGN_OR_RETURN(t->client_,
                   tls::ReloadingContext::New(tls::ReloadingContext::Kind::kClient, dialing,
                                              options.skip_verify, LogWarning));
  if (options.refresh) {
    const auto every = std::chrono::duration_cast<std::chrono::seconds>(kRefreshEvery);
    if (t->server_) t->server_->SetRefresh(options.refresh, every);
    t->client_->SetRefresh(options.refresh, every);
  }
  t->checking_host_ = NewCredentials(options, dialing, true);
  t->chain_only_ = NewCredentials(options, dialing, false);
  return t;
}

tls::SslCtxPtr PeerTls::ServerContext() const {
  return server_ == nullptr ? nullptr : server_->Current();
}

tls::SslCtxPtr PeerTls::ClientContext() const { return client_->Current(); }

std::shared_ptr<grpc::ChannelCredentials> PeerTls::ChannelCredentials(
    const DialTarget& target) const {
  return target.host.empty() ? chain_only_ : checking_host_;
}

}  // namespace dolmen::transport
