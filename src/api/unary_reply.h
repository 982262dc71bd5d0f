// Glue from the server's Result callbacks to a gRPC unary reactor.
#pragma once

#include <grpcpp/grpcpp.h>

#include <utility>

#include "api/errors.h"
#include "base/status.h"

namespace dolmen::api {

// Returns a callback that moves a successful result into `response` and finishes `reactor`.
// `response` is owned by gRPC and lives until Finish.
template <typename Response>
auto ReplyTo(grpc::ServerUnaryReactor* reactor, Response* response) {
  return [reactor, response](Result<Response> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    *response = std::move(result).value();
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace dolmen::api
