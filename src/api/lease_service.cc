#include "api/lease_service.h"

#include <mutex>

#include "api/caller.h"
#include "api/errors.h"
#include "api/require_leader.h"
#include "api/unary_reply.h"

namespace dolmen::api {
namespace {

// One keep-alive stream. Strictly one request at a time: read, renew, write, and only when the
// write is done read again — so at most one renewal and one write are in flight and nothing
// queues up per stream, however fast the client sends. A renewal on a follower is forwarded to
// the leader and answered on another thread; mu_ orders that answer against cancellation.
class KeepAliveReactor final : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                              etcdserverpb::LeaseKeepAliveResponse>,
                               public LeaderMonitor::Stream {
 public:
  KeepAliveReactor(server::Server* server, LeaderMonitor* monitor, bool require_leader)
      : server_(server), monitor_(require_leader ? monitor : nullptr) {
    if (monitor_ != nullptr) {
      // etcd's stream interceptor: refused at once without a leader, else watched for one.
      if (server_->leader().value() == 0) {
        finishing_ = true;
        Finish(ToGrpcStatus(Status(Code::kNoLeader, "no leader")));
        return;
      }
      monitor_->Register(this);
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or went away): etcd ends the stream with OK
      FinishOnce(grpc::Status::OK);
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finishing_) return;
      busy_ = true;
    }
    response_.Clear();
    // The header before the renewal, as etcd: its revision is never newer than the renewal,
    // so a client cannot see a keep-alive succeed at a revision after the lease's revoke.
    server_->FillHeader(response_.mutable_header());
    response_.mutable_header()->set_revision(server_->current_revision().value());
    response_.set_id(request_.id());
    server_->LeaseRenew(LeaseId(request_.id()), [this](Result<int64_t> ttl) { Renewed(ttl); });
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      busy_ = false;
    }
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "keep-alive stream closed"));
      return;
    }
    if (!FinishIfWanted()) StartRead(&request_);
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void CancelNoLeader() override { FinishOnce(ToGrpcStatus(Status(Code::kNoLeader, "no leader"))); }

  void OnDone() override {
    if (monitor_ != nullptr) monitor_->Unregister(this);
    delete this;
  }

 private:
  void Renewed(const Result<int64_t>& ttl) {
    Status failed;
    if (ttl.ok()) {
      response_.set_ttl(*ttl);
    } else if (ttl.status().code() == Code::kLeaseNotFound) {
      response_.set_ttl(0);  // etcd answers a missing lease with TTL 0, not an error
    } else {
      failed = ttl.status();
    }
    bool write;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!failed.ok() && !wanted_) {
        wanted_ = true;
        wanted_status_ = ToGrpcStatus(failed);
      }
      write = !wanted_;  // cancelled while the renewal was in flight: nothing more to write
      busy_ = write;     // the write keeps it busy until OnWriteDone
    }
    if (write) {
      StartWrite(&response_);
    } else {
      FinishIfWanted();
    }
  }

  // Finishes now, or once the renewal or write in flight is done. The first status counts.
  void FinishOnce(grpc::Status status) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!wanted_) {
        wanted_ = true;
        wanted_status_ = std::move(status);
      }
    }
    FinishIfWanted();
  }

  // Calls Finish if it was asked for and nothing is in flight; returns whether the stream is
  // finishing (the caller then starts nothing new).
  bool FinishIfWanted() {
    grpc::Status status;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finishing_) return true;
      if (!wanted_) return false;
      if (busy_) return true;
      finishing_ = true;
      status = wanted_status_;
    }
    Finish(status);
    return true;
  }

  server::Server* const server_;
  LeaderMonitor* const monitor_;  // null unless the client required a leader
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
  std::mutex mu_;
  bool busy_ = false;       // a renewal or a write is in flight; guarded by mu_
  bool wanted_ = false;     // Finish was asked for; guarded by mu_
  bool finishing_ = false;  // Finish was called; guarded by mu_
  grpc::Status wanted_status_;
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::LeaseGrantRequest* request,
                                                   etcdserverpb::LeaseGrantResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  if (Status s = server_->CheckQuota(server::QuotaCost(*request)); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  server_->LeaseGrant(*request, ReplyTo(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseRevokeRequest* request,
                                                    etcdserverpb::LeaseRevokeResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  auto caller = CallerOrFinish(ctx, reactor, server_);
  if (!caller) return reactor;
  server_->LeaseRevoke(*request, ReplyTo(reactor, response), caller);
  return reactor;
}

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* ctx) {
  return new KeepAliveReactor(server_, monitor_, RequiresLeader(ctx));
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* request,
    etcdserverpb::LeaseTimeToLiveResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server::Server* server = server_;
  int64_t id = request->id();
  server_->LeaseTimeToLive(*request, [server, id, reactor, response](
                                         Result<etcdserverpb::LeaseTimeToLiveResponse> result) {
    if (result.ok()) {
      *response = std::move(result).value();
    } else if (result.status().code() == Code::kLeaseNotFound) {
      // etcd answers a missing lease with TTL -1 (etcdctl: "already expired"), not an error.
      server->FillHeader(response->mutable_header());
      response->mutable_header()->set_revision(server->current_revision().value());
      response->set_id(id);
      response->set_ttl(-1);
    } else {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseLeasesRequest*,
                                                    etcdserverpb::LeaseLeasesResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  *response = server_->LeaseLeases();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace dolmen::api
