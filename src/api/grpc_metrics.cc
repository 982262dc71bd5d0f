#include "api/grpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>

#include "api/raw_methods.h"

namespace dolmen::api {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

// Go's codes.Code.String(), indexed by code.
const char* const kCodeNames[17] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

const char* TypeName(ServerRpcInfo::Type t) {
  switch (t) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

metrics::Counter& SentBytes() {
  static metrics::Counter& c =
      metrics::DefaultRegistry().AddCounter("etcd_network_client_grpc_sent_bytes_total",
                                            "The total number of bytes sent to grpc clients.");
  return c;
}

metrics::Counter& ReceivedBytes() {
  static metrics::Counter& c = metrics::DefaultRegistry().AddCounter(
      "etcd_network_client_grpc_received_bytes_total",
      "The total number of bytes received from grpc clients.");
  return c;
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(GrpcMetricsFactory::Method* m)
      : m_(m), start_(std::chrono::steady_clock::now()) {
    m_->started->Inc();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* b) override {
    if (b->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      void* msg = b->GetRecvMessage();
      if (msg != nullptr) {
        m_->received->Inc();
        if (m_->raw) {
          ReceivedBytes().Add(static_cast<const grpc::ByteBuffer*>(msg)->Length());
        } else if (m_->proto) {
          ReceivedBytes().Add(
              static_cast<const google::protobuf::MessageLite*>(msg)->ByteSizeLong());
        }
      }
    }
    if (b->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      m_->sent->Inc();
      const void* msg = b->GetSendMessage();
      if (m_->raw && msg != nullptr) {
        SentBytes().Add(static_cast<const grpc::ByteBuffer*>(msg)->Length());
      } else if (m_->proto && msg != nullptr) {
        SentBytes().Add(static_cast<const google::protobuf::MessageLite*>(msg)->ByteSizeLong());
      }
    }
    if (b->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const int code = static_cast<int>(b->GetSendStatus().error_code());
      if (code >= 0 && code < 17) m_->handled[code]->Inc();
      if (m_->seconds != nullptr) {
        m_->seconds->Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
      }
    }
    b->Proceed();
  }

 private:
  GrpcMetricsFactory::Method* m_;
  std::chrono::steady_clock::time_point start_;
};

ServerRpcInfo::Type TypeOf(const google::protobuf::MethodDescriptor* m) {
  if (m->client_streaming() && m->server_streaming()) return ServerRpcInfo::Type::BIDI_STREAMING;
  if (m->client_streaming()) return ServerRpcInfo::Type::CLIENT_STREAMING;
  if (m->server_streaming()) return ServerRpcInfo::Type::SERVER_STREAMING;
  return ServerRpcInfo::Type::UNARY;
}

}  // namespace

GrpcMetricsFactory::GrpcMetricsFactory(metrics::Registry* registry,
                                       const std::vector<std::string>& typed,
                                       const std::vector<std::string>& untyped,
                                       bool handling_time_histogram)
    : started_(registry->AddCounterFamily("grpc_server_started_total",
                                          "Total number of RPCs started on the server.",
                                          {"grpc_type", "grpc_service", "grpc_method"})),
      handled_(registry->AddCounterFamily(
          "grpc_server_handled_total",
          "Total number of RPCs completed on the server, regardless of success or failure.",
          {"grpc_type", "grpc_service", "grpc_method", "grpc_code"})),
      received_(
          registry->AddCounterFamily("grpc_server_msg_received_total",
                                     "Total number of RPC stream messages received on the server.",
                                     {"grpc_type", "grpc_service", "grpc_method"})),
      sent_(registry->AddCounterFamily("grpc_server_msg_sent_total",
                                       "Total number of gRPC stream messages sent by the server.",
                                       {"grpc_type", "grpc_service", "grpc_method"})),
      seconds_(handling_time_histogram
                   ? &registry->AddHistogramFamily(
                         "grpc_server_handling_seconds",
                         "Histogram of response latency (seconds) of gRPC that had been "
                         "application-level handled by the server.",
                         {"grpc_type", "grpc_service", "grpc_method"},
                         {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})
                   : nullptr) {
  SentBytes();
  ReceivedBytes();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::vector<std::pair<std::string, bool>> services;
  for (const std::string& s : typed) services.emplace_back(s, true);
  for (const std::string& s : untyped) services.emplace_back(s, false);
  for (const auto& [service, is_typed] : services) {
    const google::protobuf::ServiceDescriptor* s = pool->FindServiceByName(service);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = s->method(i);
      auto name = std::make_unique<std::string>("/" + service + "/" + m->name());
      auto method = std::make_unique<Method>(Resolve(TypeName(TypeOf(m)), service, m->name()));
      method->proto = is_typed;
      method->raw = *name == kRawRangeMethod;
      methods_.emplace(*name, std::move(method));
      names_.push_back(std::move(name));
    }
  }
}

GrpcMetricsFactory::Method GrpcMetricsFactory::Resolve(const std::string& type,
                                                       const std::string& service,
                                                       const std::string& method) {
  Method m;
  m.started = &started_.With({type, service, method});
  m.received = &received_.With({type, service, method});
  m.sent = &sent_.With({type, service, method});
  for (int code = 0; code < 17; ++code) {
    m.handled[code] = &handled_.With({type, service, method, kCodeNames[code]});
  }
  if (seconds_ != nullptr) m.seconds = &seconds_->With({type, service, method});
  return m;
}

void GrpcMetricsFactory::PreRegister(const std::string& full_method, ServerRpcInfo::Type type) {
  const size_t slash = full_method.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  auto name = std::make_unique<std::string>(full_method);
  methods_.emplace(
      *name, std::make_unique<Method>(Resolve(TypeName(type), full_method.substr(1, slash - 1),
                                              full_method.substr(slash + 1))));
  names_.push_back(std::move(name));
}

GrpcMetricsFactory::Method* GrpcMetricsFactory::Find(const char* full_method,
                                                     ServerRpcInfo::Type type) {
  auto it = methods_.find(std::string_view(full_method));
  if (it != methods_.end()) return it->second.get();
  std::lock_guard lock(other_mu_);
  auto& slot = other_[full_method];
  if (!slot) {
    // "/pkg.Service/Method", as go-grpc-prometheus splits it.
    const std::string name = full_method;
    const size_t slash = name.rfind('/');
    const std::string service =
        slash == std::string::npos || slash == 0 ? "unknown" : name.substr(1, slash - 1);
    const std::string method = slash == std::string::npos ? name : name.substr(slash + 1);
    slot = std::make_unique<Method>(Resolve(TypeName(type), service, method));
  }
  return slot.get();
}

grpc::experimental::Interceptor* GrpcMetricsFactory::CreateServerInterceptor(ServerRpcInfo* info) {
  return new MetricsInterceptor(Find(info->method(), info->type()));
}

}  // namespace dolmen::api
