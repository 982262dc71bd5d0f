#include "embed/member_http.h"

#include <sys/socket.h>
#include <unistd.h>

#include "api/grpc_metrics.h"
#include "api/maintenance_service.h"
#include "http/client_port.h"
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

Status MemberHttp::ListenMetrics() {
  for (const Url& u : config_.listen_metrics) {
    if (Status s = metrics_.Listen(u.host, u.port); !s.ok()) {
      return Status(s.code(), "cannot listen on " + u.text + " for metrics: " + s.message());
    }
  }
  return OkStatus();
}

transport::HttpHandler MemberHttp::ClientHandler() {
  return [this](int fd, const transport::ConnectionInfo& info) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
      close(fd);
      return;
    }
    // Refused (too many connections, or stopping): libmicrohttpd closed the socket.
    (void)(info.tls ? client_tls_ : client_)
        .AdoptConnection(fd, reinterpret_cast<sockaddr*>(&peer), len);
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
  gateway_.Shutdown();  // ends its streams, so the connection threads can be joined
  client_.Stop();
  client_tls_.Stop();
  metrics_.Stop();
}

}  // namespace dolmen::embed
