// etcdserverpb.Lease over gRPC's callback API. Grant and Revoke go through the log (the reply
// is finished from the driver thread after apply); KeepAlive and TimeToLive are answered by
// the leader's lessor (forwarded there from a follower, the reply finished from a forwarding
// thread); Leases by this member's lessor. Semantics: docs/lease.md. Calls carrying clientv3's
// require-leader metadata are refused without a leader (require_leader.h).
#pragma once

#include "api/require_leader.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  // `monitor` ends keep-alive streams that require a leader once there is none for long.
  LeaseService(server::Server* server, LeaderMonitor* monitor)
      : server_(server), monitor_(monitor) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* request,
                                       etcdserverpb::LeaseGrantResponse* response) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* request,
                                        etcdserverpb::LeaseRevokeResponse* response) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(
      grpc::CallbackServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* request,
      etcdserverpb::LeaseTimeToLiveResponse* response) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest* request,
                                        etcdserverpb::LeaseLeasesResponse* response) override;

 private:
  server::Server* server_;
  LeaderMonitor* monitor_;
};

}  // namespace dolmen::api
