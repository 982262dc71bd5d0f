#include "api/cluster_service.h"

namespace dolmen::api {

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* response) {
  server_->FillHeader(response->mutable_header());
  auto* m = response->add_members();
  m->set_id(server_->member_id().value());
  m->set_name(server_->config().name);
  for (const auto& u : server_->config().peer_urls) m->add_peerurls(u);
  for (const auto& u : server_->config().client_urls) m->add_clienturls(u);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace dolmen::api
