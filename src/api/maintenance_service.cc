#include "api/maintenance_service.h"

#include "api/require_leader.h"

namespace dolmen::api {

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  server_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(server_->current_revision().value());
  response->set_version(kEtcdApiVersion);
  response->set_dbsize(static_cast<int64_t>(server_->backend_size_bytes()));
  response->set_dbsizeinuse(static_cast<int64_t>(server_->backend_size_in_use_bytes()));
  response->set_leader(server_->leader().value());
  response->set_raftindex(server_->commit_index().value());
  response->set_raftappliedindex(server_->applied_index().value());
  response->set_raftterm(server_->term().value());
  auto self = server_->membership().Get(server_->member_id());
  response->set_islearner(self && self->is_learner());
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::AlarmRequest*,
                                                    etcdserverpb::AlarmResponse* response) {
  // No alarm can be raised yet (quota enforcement comes with the cluster work), so GET lists
  // none and ACTIVATE/DEACTIVATE have nothing to change.
  server_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(server_->current_revision().value());
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::HashKVRequest* request,
                                                     etcdserverpb::HashKVResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  auto result = server_->HashKv(Revision(request->revision()));
  if (!result.ok()) {
    reactor->Finish(ToGrpcStatus(result.status()));
    return reactor;
  }
  server_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(server_->current_revision().value());
  response->set_hash(result->hash);
  // etcd reports -1 for a store that was never compacted.
  int64_t compacted = result->compact_revision.value();
  response->set_compact_revision(compacted == 0 ? -1 : compacted);
  response->set_hash_revision(result->hash_revision.value());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MoveLeaderRequest* request,
    etcdserverpb::MoveLeaderResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->driver()->MoveLeader(MemberId(request->targetid()),
                                [this, reactor, response](dolmen::Status s) {
                                  if (!s.ok()) {
                                    reactor->Finish(ToGrpcStatus(s));
                                    return;
                                  }
                                  server_->FillHeader(response->mutable_header());
                                  reactor->Finish(grpc::Status::OK);
                                });
  return reactor;
}

}  // namespace dolmen::api
