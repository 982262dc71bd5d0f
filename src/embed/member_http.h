#pragma once

// The HTTP side of a running member (docs/http.md): the endpoints on --listen-metrics-urls and
// on the client URLs (connections the client listener hands over), the member's scrape-time
// metrics, and the gRPC metrics interceptor. Declared after the server it serves, so it is
// destroyed (and stops serving) first.

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "embed/config.h"
#include "http/endpoints.h"
#include "http/gateway.h"
#include "http/health.h"
#include "http/http_server.h"
#include "http/member_metrics.h"
#include "server/server.h"
#include "tls/context.h"
#include "transport/client_listener.h"

namespace dolmen::embed {

class MemberHttp {
 public:
  MemberHttp(server::Server* server, const Config& config);
  ~MemberHttp() { Stop(); }

  // Listens on every --listen-metrics-urls entry; the first failure is returned. https URLs
  // are served with `client_tls` (the client URLs' context, as etcd serves them: its
  // certificate, its client certificate requirement and CRL), plus etcd's SAN check of a client
  // certificate against the address it connects from; null is an error if one is https.
  Status ListenMetrics(std::shared_ptr<tls::ReloadingContext> client_tls);
  // The client listener's handler for HTTP/1 connections.
  transport::HttpHandler ClientHandler();
  // The JSON gateway (/v3/...) calls the client port's gRPC services through `channel` (an
  // in-process channel of that server); until then its paths answer 503.
  void ServeGateway(std::shared_ptr<grpc::Channel> channel) {
    gateway_.Connect(std::move(channel));
  }
  // The interceptor factory to give the gRPC server builder (grpc_server_* metrics).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> GrpcMetrics() const;
  void Stop();

 private:
  // What answers the client URLs' HTTP/1 (http/client_port.h); `tls` for TLS connections.
  http::Handler ClientPortHandler(bool tls);

  const Config& config_;
  http::HealthChecks checks_;
  http::MemberMetrics member_metrics_;
  http::Gateway gateway_;  // before client_, whose connections use it
  // Plaintext and TLS connections of the client URLs, apart because only the first get the
  // --host-whitelist check.
  http::HttpServer client_;
  http::HttpServer client_tls_;
  http::HttpServer metrics_;
  // The https --listen-metrics-urls: TLS handshakes there, then the decrypted connections are
  // handed to metrics_. Null without any.
  std::unique_ptr<transport::ClientListener> metrics_tls_;
};

}  // namespace dolmen::embed
