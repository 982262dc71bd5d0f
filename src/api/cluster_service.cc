#include "api/cluster_service.h"

#include "api/require_leader.h"
#include "api/unary_reply.h"

namespace dolmen::api {

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->FillHeader(response->mutable_header());
  // The replicated membership: a member added but not yet started has no name and no client
  // URLs, which etcdctl shows as "unstarted".
  for (const auto& member : server_->membership().List()) {
    auto* m = response->add_members();
    m->set_id(member.id());
    m->set_name(member.name());
    for (const auto& u : member.peer_urls()) m->add_peerurls(u);
    for (const auto& u : member.client_urls()) m->add_clienturls(u);
    m->set_islearner(member.is_learner());
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::MemberAddRequest* request,
                                                    etcdserverpb::MemberAddResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->MemberAdd(*request, ReplyTo(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MemberRemoveRequest* request,
    etcdserverpb::MemberRemoveResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->MemberRemove(*request, ReplyTo(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MemberUpdateRequest* request,
    etcdserverpb::MemberUpdateResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->MemberUpdate(*request, ReplyTo(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MemberPromoteRequest* request,
    etcdserverpb::MemberPromoteResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->MemberPromote(*request, ReplyTo(reactor, response));
  return reactor;
}

}  // namespace dolmen::api
