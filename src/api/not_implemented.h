// Answers for RPCs a later piece of work implements: UNIMPLEMENTED with a message naming the
// RPC, never the bare status gRPC would give. Unary methods of a partly implemented service
// use DOLMEN_NOT_IMPLEMENTED_UNARY; whole services not yet written are caught by
// CatchAllService, so every etcd method gets a clear answer.
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "api/errors.h"

namespace dolmen::api {

#define DOLMEN_NOT_IMPLEMENTED_UNARY(Service, Method, Request, Response)                        \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const Request*, Response*) \
      override {                                                                                \
    auto* reactor = ctx->DefaultReactor();                                                      \
    reactor->Finish(::dolmen::api::NotImplemented("/etcdserverpb." #Service "/" #Method));      \
    return reactor;                                                                             \
  }

// A server-streaming reactor that finishes at once with `status`.
template <typename Response>
class FinishedWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FinishedWriter(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// Takes every method no registered service handles.
class CatchAllService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;
};

}  // namespace dolmen::api
