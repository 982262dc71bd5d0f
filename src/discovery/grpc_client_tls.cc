#include "discovery/grpc_client_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace dolmen::discovery {
namespace {

Result<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if ((!in.good() && !in.eof()) || text.str().empty()) {
    return InvalidArgument("cannot read " + flag + " " + path);
  }
  return text.str();
}

}  // namespace

Result<std::shared_ptr<grpc::ChannelCredentials>> NewGrpcClientCredentials(const GrpcClientTls& o) {
  std::string root, cert, key;
  if (!o.ca_file.empty()) {
    ASSIGN_OR_RETURN(root, ReadFile(o.ca_flag, o.ca_file));
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return InvalidArgument(o.cert_flag + " and " + o.key_flag + " must be given together");
  }
  if (!o.cert_file.empty()) {
    ASSIGN_OR_RETURN(cert, ReadFile(o.cert_flag, o.cert_file));
    ASSIGN_OR_RETURN(key, ReadFile(o.key_flag, o.key_file));
  }
  if (!o.skip_verify) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = root;
    ssl.pem_cert_chain = cert;
    ssl.pem_private_key = key;
    return grpc::SslCredentials(ssl);
  }
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  if (!cert.empty()) pairs.push_back({key, cert});
  grpc::experimental::TlsChannelCredentialsOptions tls;
  // gRPC's static provider aborts when given neither roots nor a key pair: without either,
  // there is nothing to provide (the server's certificate is not checked anyway).
  if (!root.empty() || !pairs.empty()) {
    tls.set_certificate_provider(
        std::make_shared<grpc::experimental::StaticDataCertificateProvider>(root, pairs));
    if (!root.empty()) tls.watch_root_certs();
    if (!pairs.empty()) tls.watch_identity_key_cert_pairs();
  }
  tls.set_verify_server_certs(false);
  tls.set_check_call_host(false);
  tls.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  return grpc::experimental::TlsCredentials(tls);
}

}  // namespace dolmen::discovery
