#include "connections.h"

#include <fstream>
#include <iterator>

namespace dolmen::bench {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Plaintext, or TLS with --cacert (and a client certificate with --cert/--key).
std::shared_ptr<grpc::ChannelCredentials> Credentials(const Options& options) {
  if (options.cacert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(options.cacert);
  if (!options.cert.empty()) {
    ssl.pem_cert_chain = ReadFile(options.cert);
    ssl.pem_private_key = ReadFile(options.key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

Connections::Connections(const Options& options) {
  const auto credentials = Credentials(options);
  for (int i = 0; i < options.conns; ++i) {
    grpc::ChannelArguments args;
    // Without a local pool, channels with equal arguments share one TCP connection and
    // --conns would measure nothing.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    const std::string& endpoint =
        options.endpoints[static_cast<size_t>(i) % options.endpoints.size()];
    auto channel = grpc::CreateCustomChannel(endpoint, credentials, args);
    kv_.push_back(etcdserverpb::KV::NewStub(channel));
    watch_.push_back(etcdserverpb::Watch::NewStub(channel));
    lease_.push_back(etcdserverpb::Lease::NewStub(channel));
    channels_.push_back(std::move(channel));
  }
}

}  // namespace dolmen::bench
