// v3electionpb.Election: etcd's server-side election (etcdserver/api/v3election), built on the
// recipes in recipes.h. A candidate's key is "<name>/<lease hex>" with its lease; the oldest key
// under the name is the leader. Campaign answers once every older key is gone; Proclaim and
// Resign act only while the caller's key still has the create revision it won with; Observe
// streams the leader each time it (or its value) changes.
#pragma once

#include "api/recipes.h"
#include "v3electionpb/v3election.grpc.pb.h"

namespace dolmen::api {

class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  ElectionService(server::Server* server, KeyWaiter* waiter) : server_(server), waiter_(waiter) {}

  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::CampaignRequest* request,
                                     v3electionpb::CampaignResponse* response) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::ProclaimRequest* request,
                                     v3electionpb::ProclaimResponse* response) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::LeaderRequest* request,
                                   v3electionpb::LeaderResponse* response) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* request) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::ResignRequest* request,
                                   v3electionpb::ResignResponse* response) override;

 private:
  server::Server* server_;
  KeyWaiter* waiter_;
};

}  // namespace dolmen::api
