#include "api/maintenance_service.h"

#include "api/caller.h"
#include "api/errors.h"
#include "api/require_leader.h"
#include "api/unary_reply.h"

namespace dolmen::api {
namespace {

// etcd's snapshotSendBufferSize.
constexpr size_t kSnapshotChunkBytes = 32 * 1024;

// How etcd prints an alarm in Status errors: gogoproto's compact text of AlarmMember.
std::string AlarmText(const etcdserverpb::AlarmMember& m) {
  return "memberID:" + std::to_string(m.memberid()) +
         " alarm:" + etcdserverpb::AlarmType_Name(m.alarm()) + " ";
}

// Streams a backend snapshot as etcd 3.4 does: chunks of the image, each with the bytes still
// to come after it in remaining_bytes, then one more message whose blob is the SHA-256 of the
// image (remaining_bytes 0). The temporary file goes when the reactor does.
class SnapshotWriter final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  explicit SnapshotWriter(server::Server* server) {
    auto snapshot = server->OpenSnapshot();
    if (!snapshot.ok()) {
      Finish(ToGrpcStatus(snapshot.status()));
      return;
    }
    snapshot_ = std::move(snapshot).value();
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream broken"));
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    response_.Clear();
    if (checksum_sent_) {
      Finish(grpc::Status::OK);
      return;
    }
    if (snapshot_->sent_bytes() < snapshot_->size_bytes()) {
      auto chunk = snapshot_->Next(kSnapshotChunkBytes);
      if (!chunk.ok()) {
        Finish(ToGrpcStatus(chunk.status()));
        return;
      }
      response_.set_remaining_bytes(snapshot_->size_bytes() - snapshot_->sent_bytes());
      response_.set_blob(std::move(chunk).value());
    } else {
      response_.set_remaining_bytes(0);
      response_.set_blob(snapshot_->Sha256());
      checksum_sent_ = true;
    }
    StartWrite(&response_);
  }

  std::unique_ptr<server::BackendSnapshot> snapshot_;
  etcdserverpb::SnapshotResponse response_;
  bool checksum_sent_ = false;
};

}  // namespace

// etcd's authMaintenanceServer: Hash, HashKV, Defragment and Snapshot need the root role once
// auth is enabled; Status, Alarm and MoveLeader do not.
grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  // The backend's sizes change when the driver commits its batch of applied entries: report
  // them after a commit of everything applied so far, so a delete or compaction just answered
  // shows in dbSizeInUse (as it does on etcd). A stopped driver reports the last sizes.
  server_->AfterBackendCommit([this, reactor, response](dolmen::Status) {
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
    if (server_->leader().value() == 0) response->add_errors("etcdserver: no leader");
    for (const auto& alarm : server_->ActiveAlarms()) response->add_errors(AlarmText(alarm));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::AlarmRequest* request,
                                                    etcdserverpb::AlarmResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->Alarm(*request, ReplyTo(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::HashRequest*,
                                                   etcdserverpb::HashResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
  server_->Hash([this, reactor, response](Result<server::BackendHash> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    server_->FillHeader(response->mutable_header());
    response->mutable_header()->set_revision(result->revision.value());
    response->set_hash(result->hash);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(
    grpc::CallbackServerContext* ctx, const etcdserverpb::DefragmentRequest*,
    etcdserverpb::DefragmentResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
  server_->Defragment([this, reactor, response](dolmen::Status s) {
    if (!s.ok()) {
      reactor->Finish(ToGrpcStatus(s));
      return;
    }
    server_->FillHeader(response->mutable_header());
    response->mutable_header()->set_revision(server_->current_revision().value());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest*) {
  if (dolmen::Status s = CheckAdminCaller(ctx, server_); !s.ok()) {
    return new FinishedWriter<etcdserverpb::SnapshotResponse>(ToGrpcStatus(s));
  }
  return new SnapshotWriter(server_);
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::HashKVRequest* request,
                                                     etcdserverpb::HashKVResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
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
