// etcdserverpb.Cluster: MemberList from the replicated membership; membership changes
// (MemberAdd/Remove/Update/Promote) arrive next.
#pragma once

#include "api/not_implemented.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(server::Server* server) : server_(server) {}

  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MemberListRequest* request,
                                       etcdserverpb::MemberListResponse* response) override;

  DOLMEN_NOT_IMPLEMENTED_UNARY(Cluster, MemberAdd, etcdserverpb::MemberAddRequest,
                               etcdserverpb::MemberAddResponse)
  DOLMEN_NOT_IMPLEMENTED_UNARY(Cluster, MemberRemove, etcdserverpb::MemberRemoveRequest,
                               etcdserverpb::MemberRemoveResponse)
  DOLMEN_NOT_IMPLEMENTED_UNARY(Cluster, MemberUpdate, etcdserverpb::MemberUpdateRequest,
                               etcdserverpb::MemberUpdateResponse)
  DOLMEN_NOT_IMPLEMENTED_UNARY(Cluster, MemberPromote, etcdserverpb::MemberPromoteRequest,
                               etcdserverpb::MemberPromoteResponse)

 private:
  server::Server* server_;
};

}  // namespace dolmen::api
