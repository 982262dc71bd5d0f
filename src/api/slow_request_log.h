// etcd's --warning-unary-request-duration (3.5: --experimental-warning-unary-request-duration):
// a unary RPC that takes longer than the threshold, from its arrival to its status, logs one
// warning line ("request stats", as etcd's interceptor names it) with the method and the time.
// Streams (Watch, LeaseKeepAlive, Snapshot) are exempt: they last as long as the client wants.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <memory>

namespace dolmen::api {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewSlowRequestLog(
    std::chrono::nanoseconds threshold);

}  // namespace dolmen::api
