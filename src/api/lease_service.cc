#include "api/lease_service.h"

#include "api/errors.h"
#include "api/unary_reply.h"

namespace dolmen::api {
namespace {

// One keep-alive stream. Strictly one request at a time: read, renew, write, and only when the
// write is done read again — so at most one write is in flight and nothing queues up per
// stream, however fast the client sends.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveReactor(server::Server* server) : server_(server) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or went away): etcd ends the stream with OK
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    // The header before the renewal, as etcd: its revision is never newer than the renewal,
    // so a client cannot see a keep-alive succeed at a revision after the lease's revoke.
    server_->FillHeader(response_.mutable_header());
    response_.mutable_header()->set_revision(server_->current_revision().value());
    response_.set_id(request_.id());
    Result<int64_t> ttl = server_->LeaseRenew(LeaseId(request_.id()));
    if (ttl.ok()) {
      response_.set_ttl(*ttl);
    } else if (ttl.status().code() == Code::kLeaseNotFound) {
      response_.set_ttl(0);  // etcd answers a missing lease with TTL 0, not an error
    } else {
      Finish(ToGrpcStatus(ttl.status()));
      return;
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "keep-alive stream closed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  server::Server* const server_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::LeaseGrantRequest* request,
                                                   etcdserverpb::LeaseGrantResponse* response) {
  auto* reactor = ctx->DefaultReactor();
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
  server_->LeaseRevoke(*request, ReplyTo(reactor, response));
  return reactor;
}

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  return new KeepAliveReactor(server_);
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* request,
    etcdserverpb::LeaseTimeToLiveResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  auto result = server_->LeaseTimeToLive(*request);
  if (result.ok()) {
    *response = std::move(result).value();
  } else if (result.status().code() == Code::kLeaseNotFound) {
    // etcd answers a missing lease with TTL -1 (etcdctl: "already expired"), not an error.
    server_->FillHeader(response->mutable_header());
    response->mutable_header()->set_revision(server_->current_revision().value());
    response->set_id(request->id());
    response->set_ttl(-1);
  } else {
    reactor->Finish(ToGrpcStatus(result.status()));
    return reactor;
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseLeasesRequest*,
                                                    etcdserverpb::LeaseLeasesResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  *response = server_->LeaseLeases();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace dolmen::api
