#include "api/kv_service.h"

#include "api/caller.h"
#include "api/request_size.h"
#include "api/require_leader.h"
#include "api/unary_reply.h"

namespace dolmen::api {

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (!WithinLimit(*request, server_->config().max_request_bytes, reactor)) return reactor;
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->Range(*request, ReplyTo(reactor, response), caller);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (!WithinLimit(*request, server_->config().max_request_bytes, reactor)) return reactor;
  if (Status s = server_->CheckQuota(server::QuotaCost(*request)); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->Put(*request, ReplyTo(reactor, response), caller);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* ctx,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (!WithinLimit(*request, server_->config().max_request_bytes, reactor)) return reactor;
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->DeleteRange(*request, ReplyTo(reactor, response), caller);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::TxnRequest* request,
                                         etcdserverpb::TxnResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (!WithinLimit(*request, server_->config().max_request_bytes, reactor)) return reactor;
  if (Status s = server_->CheckQuota(server::QuotaCost(*request)); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->Txn(*request, ReplyTo(reactor, response), caller);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* ctx,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (!WithinLimit(*request, server_->config().max_request_bytes, reactor)) return reactor;
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->Compact(*request, ReplyTo(reactor, response), caller);
  return reactor;
}

}  // namespace dolmen::api
