// etcdserverpb.Maintenance: Status, Alarm (list/deactivate; no alarm is raised yet) and
// HashKV today; the rest arrives with the replicated cluster.
#pragma once

#include "api/not_implemented.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

// The etcd API version Dolmen implements, reported by Status and /version. Kubernetes turns on
// watch progress requests only from 3.5.13.
inline constexpr const char* kEtcdApiVersion = "3.5.13";

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(server::Server* server) : server_(server) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::StatusRequest* request,
                                   etcdserverpb::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::AlarmRequest* request,
                                  etcdserverpb::AlarmResponse* response) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::HashKVRequest* request,
                                   etcdserverpb::HashKVResponse* response) override;

  DOLMEN_NOT_IMPLEMENTED_UNARY(Maintenance, Defragment, etcdserverpb::DefragmentRequest,
                               etcdserverpb::DefragmentResponse)
  DOLMEN_NOT_IMPLEMENTED_UNARY(Maintenance, Hash, etcdserverpb::HashRequest,
                               etcdserverpb::HashResponse)
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MoveLeaderRequest* request,
                                       etcdserverpb::MoveLeaderResponse* response) override;
  DOLMEN_NOT_IMPLEMENTED_UNARY(Maintenance, Downgrade, etcdserverpb::DowngradeRequest,
                               etcdserverpb::DowngradeResponse)

  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext*, const etcdserverpb::SnapshotRequest*) override {
    return new FinishedWriter<etcdserverpb::SnapshotResponse>(
        NotImplemented("/etcdserverpb.Maintenance/Snapshot"));
  }

 private:
  server::Server* server_;
};

}  // namespace dolmen::api
