#include "api/slow_request_log.h"

#include <string>

#include "log/log.h"

namespace dolmen::api {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

// One per RPC (gRPC creates it when the call arrives and deletes it when the call ends).
class SlowRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  SlowRequestInterceptor(const char* method, std::chrono::nanoseconds threshold)
      : method_(method == nullptr ? "" : method),
        threshold_(threshold),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const auto took = std::chrono::steady_clock::now() - start_;
      if (took > threshold_) {
        // etcd 3.5 logs "request stats" at warn level for a unary request over the threshold.
        log::Warn("request stats",
                  {{"method", method_}, {"time spent", took}, {"expected-duration", threshold_}});
      }
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  std::chrono::nanoseconds threshold_;
  std::chrono::steady_clock::time_point start_;
};

class SlowRequestLogFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit SlowRequestLogFactory(std::chrono::nanoseconds threshold) : threshold_(threshold) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    if (info->type() != ServerRpcInfo::Type::UNARY) return nullptr;
    return new SlowRequestInterceptor(info->method(), threshold_);
  }

 private:
  std::chrono::nanoseconds threshold_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewSlowRequestLog(
    std::chrono::nanoseconds threshold) {
  return std::make_unique<SlowRequestLogFactory>(threshold);
}

}  // namespace dolmen::api
