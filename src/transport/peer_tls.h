// TLS between members (https / unixs peer URLs; docs/tls.md): the server context the peer port
// handshakes with, the client context the message stream dials with, and the gRPC channel
// credentials snapshots, GetMembers and forwarded requests dial with. All come from one
// TlsOptions and follow its files as they change (tls/context.h for OpenSSL; gRPC's file
// watcher, every kGrpcRefreshS, for channels).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "tls/context.h"
#include "transport/transport.h"
#include "transport/url.h"

namespace dolmen::transport {

class PeerTls {
 public:
  // Fails if a file given cannot be used (kInvalidArgument naming it). Without files (a member
  // with http peer URLs) it still dials https peers, verifying them against the system's roots,
  // as etcd does.
  static Result<std::shared_ptr<PeerTls>> New(const TlsOptions& options);

  // Whether this member has a certificate: without one, https listen URLs are refused.
  bool has_certificate() const { return server_ != nullptr; }
  const TlsOptions& options() const { return options_; }
  // The contexts for a new connection (rebuilt first if their files changed).
  tls::SslCtxPtr ServerContext() const;
  tls::SslCtxPtr ClientContext() const;
  // Credentials for a gRPC channel to `target` (target.tls must be set).
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const DialTarget& target) const;

 private:
  explicit PeerTls(TlsOptions options) : options_(std::move(options)) {}

  TlsOptions options_;
  std::unique_ptr<tls::ReloadingContext> server_;  // null without a certificate
  std::unique_ptr<tls::ReloadingContext> client_;
  std::shared_ptr<grpc::ChannelCredentials> checking_host_;  // https targets
  std::shared_ptr<grpc::ChannelCredentials> chain_only_;     // unixs targets: no host to check
};

}  // namespace dolmen::transport
