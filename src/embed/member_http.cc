#include "embed/member_http.h"

#include <sys/socket.h>
#include <unistd.h>

#include "api/grpc_metrics.h"
#include "api/maintenance_service.h"
#include "http/client_port.h"
#include "log/log.h"
#include "metrics/process.h"
#include "server/server_metrics.h"
#include "wal/wal.h"

namespace dolmen::embed {
namespace {

// etcd reports the cluster version as major.minor.0 of the version every member runs.
std::string ClusterVersion() {
  std::string v = api::kEtcdApiVersion;
  const size_t first = v.find('.');
  const size_t second = v.find('.', first + 1);
  return v.substr(0, second) + ".0";
}

http::EndpointOptions Options(bool version) {
  http::EndpointOptions o;
  o.version = version;
  o.server_version = api::kEtcdApiVersion;
  o.cluster_version = ClusterVersion();
  return o;
}

http::Options ServerOptions(const Config& config) {
  http::Options o;
  // A request body (the gateway's) may be as large as a gRPC request, with JSON's overhead.
  o.max_body_bytes = 4 * config.max_request_bytes + (64 << 10);
  return o;
}

// Hands a connection the client listener accepted (and, for TLS, decrypted) to `server`.
void Adopt(http::HttpServer& server, int fd) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    close(fd);
    return;
  }
  // Refused (too many connections, or stopping): libmicrohttpd closed the socket.
  (void)server.AdoptConnection(fd, reinterpret_cast<sockaddr*>(&peer), len);
}

}  // namespace

MemberHttp::MemberHttp(server::Server* server, const Config& config)
    : config_(config),
      checks_(server),
      member_metrics_(server, &metrics::DefaultRegistry(), api::kEtcdApiVersion, ClusterVersion()),
      client_(ClientPortHandler(false), ServerOptions(config)),
      client_tls_(ClientPortHandler(true), ServerOptions(config)),
      metrics_(http::MakeEndpoints(&checks_, &metrics::DefaultRegistry(), Options(false))) {
  metrics::RegisterProcessMetrics(metrics::DefaultRegistry());
  http::RegisterEndpointMetrics();
  server::metric::RegisterAll();
  wal::RegisterWalMetrics();
}

http::Handler MemberHttp::ClientPortHandler(bool tls) {
  http::AccessPolicy policy;
  policy.cors = config_.cors;
  policy.host_whitelist = config_.host_whitelist;
  return http::MakeClientPortHandler(
      http::MakeEndpoints(&checks_, &metrics::DefaultRegistry(), Options(true)),
      config_.enable_grpc_gateway ? &gateway_ : nullptr, std::move(policy), tls);
}

Status MemberHttp::ListenMetrics(std::shared_ptr<tls::ReloadingContext> client_tls) {
  std::vector<transport::ClientUrl> secure;
  for (const Url& u : config_.listen_metrics) {
    if (u.secure()) {
      transport::ClientUrl url{u.text, u.ListenAddress(), true,
                               transport::ClientTraffic::kHttpOnly};
      url.check_client_san = true;
      secure.push_back(std::move(url));
      continue;
    }
    if (Status s = metrics_.Listen(u.host, u.port); !s.ok()) {
      return Status(s.code(), "cannot listen on " + u.text + " for metrics: " + s.message());
    }
  }
  if (secure.empty()) return OkStatus();
  if (client_tls == nullptr) {
    return Internal("https --listen-metrics-urls without a client TLS context");
  }
  // The client port's listener, for its TLS handshake and proxy; these URLs carry HTTP/1.1
  // only (etcd's would also answer HTTP/2: its Go server offers only h2 in ALPN there).
  metrics_tls_ = std::make_unique<transport::ClientListener>(std::move(secure));
  metrics_tls_->SetTls(std::move(client_tls), [](const std::string& line) { log::Warn(line); });
  metrics_tls_->SetHttpHandler(
      [this](int fd, const transport::ConnectionInfo&) { Adopt(metrics_, fd); });
  RETURN_IF_ERROR(metrics_tls_->Bind());
  return metrics_tls_->Start(nullptr);  // HTTP-only URLs: nothing goes to a gRPC server
}

transport::HttpHandler MemberHttp::ClientHandler() {
  return [this](int fd, const transport::ConnectionInfo& info) {
    Adopt(info.tls ? client_tls_ : client_, fd);
  };
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MemberHttp::GrpcMetrics()
    const {
  auto factory = std::make_unique<api::GrpcMetricsFactory>(
      &metrics::DefaultRegistry(),
      std::vector<std::string>{"etcdserverpb.KV", "etcdserverpb.Watch", "etcdserverpb.Lease",
                               "etcdserverpb.Cluster", "etcdserverpb.Maintenance", "v3lockpb.Lock",
                               "v3electionpb.Election"},
      std::vector<std::string>{"etcdserverpb.Auth"}, config_.metrics == "extensive");
  // etcd serves gRPC's health service too; its descriptor is not linked into dolmen.
  using Type = grpc::experimental::ServerRpcInfo::Type;
  factory->PreRegister("/grpc.health.v1.Health/Check", Type::UNARY);
  factory->PreRegister("/grpc.health.v1.Health/Watch", Type::SERVER_STREAMING);
  return factory;
}

void MemberHttp::Stop() {
  if (metrics_tls_ != nullptr) metrics_tls_->StopAccepting();
  gateway_.Shutdown();  // ends its streams, so the connection threads can be joined
  client_.Stop();
  client_tls_.Stop();
  metrics_.Stop();  // closes its ends of the TLS proxies' socketpairs
  if (metrics_tls_ != nullptr) metrics_tls_->Stop();
}

}  // namespace dolmen::embed
