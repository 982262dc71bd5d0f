#include "api/kv_service.h"

#include <string>
#include <utility>

#include "api/caller.h"
#include "api/errors.h"
#include "api/request_size.h"
#include "api/require_leader.h"
#include "api/unary_reply.h"

namespace dolmen::api {

namespace {

// Hands `bytes` to gRPC as the reply without copying them: the slice owns the string and
// deletes it once the transport has sent it.
grpc::ByteBuffer ByteBufferOf(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* s) { delete static_cast<std::string*>(s); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* request_bytes,
                                           grpc::ByteBuffer* response) {
  auto* reactor = ctx->DefaultReactor();
  etcdserverpb::RangeRequest request;
  grpc::ByteBuffer copy(*request_bytes);  // shares the slices; Deserialize consumes its input
  if (grpc::Status parsed =
          grpc::SerializationTraits<etcdserverpb::RangeRequest>::Deserialize(&copy, &request);
      !parsed.ok()) {
    reactor->Finish(parsed);  // what a generated handler answers for bytes that do not parse
    return reactor;
  }
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (!WithinLimit(request, server_->config().max_request_bytes, reactor)) return reactor;
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->RangeSerialized(
      request,
      [reactor, response](Result<std::string> bytes) {
        if (!bytes.ok()) {
          reactor->Finish(ToGrpcStatus(bytes.status()));
          return;
        }
        *response = ByteBufferOf(std::move(bytes).value());
        reactor->Finish(grpc::Status::OK);
      },
      caller);
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
