#pragma once

// gRPC server metrics with go-grpc-prometheus's names, labels and buckets, as etcd exports them
// (grpc_server_started_total, grpc_server_handled_total, grpc_server_msg_{received,sent}_total,
// and with --metrics=extensive grpc_server_handling_seconds), plus etcd's
// etcd_network_client_grpc_{sent,received}_bytes_total. Collected by a server interceptor.
//
// Hot path: the metric children of every method of etcd's services are created up front (as
// go-grpc-prometheus pre-registers them, so every series exists from the start with 0) in a
// table that is read-only once the server starts; an RPC costs a hash lookup of its method
// name and a few relaxed atomic adds. Methods outside the table (the catch-all service) go
// through the labelled families.

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "metrics/metrics.h"

namespace dolmen::api {

class GrpcMetricsFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Full service names ("etcdserverpb.KV") whose methods are pre-registered: `typed` ones are
  // served by generated (protobuf-typed) handlers, whose message sizes are counted;
  // `untyped` ones by the generic catch-all service (raw bytes, not counted).
  GrpcMetricsFactory(metrics::Registry* registry, const std::vector<std::string>& typed,
                     const std::vector<std::string>& untyped, bool handling_time_histogram);
  // Pre-registers one method whose descriptor is not linked in ("/grpc.health.v1.Health/Check").
  // Before the server starts only (the table is read without a lock afterwards).
  void PreRegister(const std::string& full_method, grpc::experimental::ServerRpcInfo::Type type);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // One method's children, resolved once.
  struct Method {
    metrics::Counter* started = nullptr;
    metrics::Counter* received = nullptr;
    metrics::Counter* sent = nullptr;
    metrics::Counter* handled[17] = {};     // by grpc::StatusCode
    metrics::Histogram* seconds = nullptr;  // null unless --metrics=extensive
    bool proto = false;                     // messages are protobuf (sizes can be taken)
    bool raw = false;  // a raw handler's: messages are grpc::ByteBuffers (sizes: Length())
  };

 private:
  Method* Find(const char* full_method, grpc::experimental::ServerRpcInfo::Type type);
  Method Resolve(const std::string& type, const std::string& service, const std::string& method);

  metrics::CounterFamily& started_;
  metrics::CounterFamily& handled_;
  metrics::CounterFamily& received_;
  metrics::CounterFamily& sent_;
  metrics::HistogramFamily* seconds_;
  // Read-only after construction: keys point into `names_`.
  std::vector<std::unique_ptr<std::string>> names_;
  std::unordered_map<std::string_view, std::unique_ptr<Method>> methods_;
  // Methods not known up front, created on first use (rare: unknown RPCs).
  std::mutex other_mu_;
  std::unordered_map<std::string, std::unique_ptr<Method>> other_;
};

}  // namespace dolmen::api
