// etcd's gRPC server refuses a request larger than --max-request-bytes plus 512 KiB with Go
// gRPC's own message; clients and tests match on it. gRPC C++ words its limit differently, so
// its hard cap is set higher (src/embed) and this check gives etcd's answer.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

namespace dolmen::api {

inline constexpr uint64_t kGrpcOverheadBytes = 512 * 1024;

// False (and the reactor finished with RESOURCE_EXHAUSTED) when `request` is over the limit.
template <typename Request>
bool WithinLimit(const Request& request, uint64_t max_request_bytes,
                 grpc::ServerUnaryReactor* reactor) {
  uint64_t size = request.ByteSizeLong();
  uint64_t limit = max_request_bytes + kGrpcOverheadBytes;
  if (size <= limit) return true;
  reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "grpc: received message larger than max (" + std::to_string(size) +
                                   " vs. " + std::to_string(limit) + ")"));
  return false;
}

}  // namespace dolmen::api
