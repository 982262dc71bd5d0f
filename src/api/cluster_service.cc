#include "api/cluster_service.h"

namespace dolmen::api {

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* response) {
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
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace dolmen::api
