#include "api/election_service.h"

#include <atomic>
#include <memory>
#include <utility>

#include "api/caller.h"
#include "api/errors.h"
#include "api/not_implemented.h"

namespace dolmen::api {
namespace {

// etcd returns these as plain Go errors, which gRPC-Go sends as UNKNOWN with the text as is;
// clients match on the text. Not in the error table: they are not etcdserver errors.
grpc::Status NotLeader() { return {grpc::StatusCode::UNKNOWN, "election: not leader"}; }
grpc::Status NoLeader() { return {grpc::StatusCode::UNKNOWN, "election: no leader"}; }
grpc::Status MissingLeader() {
  return {grpc::StatusCode::UNKNOWN, "\"leader\" field must be provided"};
}

etcdserverpb::Compare CreatedAt(const std::string& key, int64_t revision) {
  etcdserverpb::Compare c;
  c.set_key(key);
  c.set_target(etcdserverpb::Compare::CREATE);
  c.set_result(etcdserverpb::Compare::EQUAL);
  c.set_create_revision(revision);
  return c;
}

// A txn that runs `op` only while `leader` still holds its key.
etcdserverpb::TxnRequest IfLeader(const v3electionpb::LeaderKey& leader) {
  etcdserverpb::TxnRequest txn;
  *txn.add_compare() = CreatedAt(leader.key(), leader.rev());
  return txn;
}

struct CampaignCall : std::enable_shared_from_this<CampaignCall> {
  server::Server* server;
  KeyWaiter* waiter;
  grpc::CallbackServerContext* ctx;
  grpc::ServerUnaryReactor* reactor;
  v3electionpb::CampaignResponse* response;
  v3electionpb::CampaignRequest request;
  std::string prefix;
  std::string key;
  etcdserverpb::ResponseHeader header;

  void Start() {
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = CreatedAt(key, 0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(request.value());
    put->set_lease(request.lease());
    txn.add_failure()->mutable_request_range()->set_key(key);
    server->Txn(txn, [self = shared_from_this()](Result<etcdserverpb::TxnResponse> r) {
      self->Enqueued(std::move(r));
    });
  }

  void Enqueued(Result<etcdserverpb::TxnResponse> r) {
    if (!r.ok()) return reactor->Finish(RecipeError(r.status()));
    header = r->header();
    int64_t rev = r->header().revision();
    auto self = shared_from_this();
    if (!r->succeeded()) {
      const auto& kvs = r->responses(0).response_range().kvs();
      if (kvs.empty()) return reactor->Finish(RecipeError(Status(Code::kInternal, "key vanished")));
      rev = kvs[0].create_revision();
      if (kvs[0].value() != request.value()) {
        // Campaigning again with a new value proclaims it, as etcd's Campaign does.
        v3electionpb::LeaderKey me;
        me.set_key(key);
        me.set_rev(rev);
        etcdserverpb::TxnRequest txn = IfLeader(me);
        auto* put = txn.add_success()->mutable_request_put();
        put->set_key(key);
        put->set_value(request.value());
        put->set_lease(request.lease());
        return server->Txn(txn, [self, rev](Result<etcdserverpb::TxnResponse> p) {
          if (!p.ok()) return self->reactor->Finish(RecipeError(p.status()));
          if (!p->succeeded()) return self->reactor->Finish(NotLeader());
          self->Wait(rev);
        });
      }
    }
    Wait(rev);
  }

  void Wait(int64_t rev) {
    auto self = shared_from_this();
    WaitDeletes(
        server, waiter, prefix, rev - 1, [self] { return self->ctx->IsCancelled(); },
        [self, rev](Result<etcdserverpb::ResponseHeader> h) {
          if (!h.ok()) return self->Resign(rev, h.status());
          *self->response->mutable_header() = self->header;
          auto* leader = self->response->mutable_leader();
          leader->set_name(self->request.name());
          leader->set_key(self->key);
          leader->set_rev(rev);
          leader->set_lease(self->request.lease());
          self->reactor->Finish(grpc::Status::OK);
        });
  }

  // A cancelled campaign withdraws its key, as etcd's does.
  void Resign(int64_t rev, Status why) {
    v3electionpb::LeaderKey me;
    me.set_key(key);
    me.set_rev(rev);
    etcdserverpb::TxnRequest txn = IfLeader(me);
    txn.add_success()->mutable_request_delete_range()->set_key(key);
    server->Txn(
        txn, [self = shared_from_this(), why](auto) { self->reactor->Finish(RecipeError(why)); });
  }
};

// Streams the leader: the oldest key under the name, again each time it or its value changes.
// One write in flight; the next look waits for the write to complete.
class ObserveReactor final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  ObserveReactor(server::Server* server, KeyWaiter* waiter, std::string prefix)
      : server_(server), waiter_(waiter), prefix_(std::move(prefix)) {
    Look();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Done(grpc::Status::CANCELLED);
    WaitForChange();
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override {
    // Deleted only once the waiter has let go of us too.
    if (pending_.fetch_sub(1) == 1) delete this;
  }

 private:
  void Look() {
    auto rr = server_->store()->Range(ToRangeOptionsFirst());
    if (!rr.ok()) return Done(RecipeError(rr.status()));
    if (rr->kvs.empty()) {
      // No leader yet: wait for one.
      seen_create_ = 0;
      seen_mod_ = 0;
      return WaitForChange();
    }
    const auto& kv = rr->kvs.front();
    seen_key_ = kv.key;
    seen_create_ = kv.create_revision.value();
    seen_mod_ = kv.mod_revision.value();
    response_.Clear();
    server_->FillHeader(response_.mutable_header());
    response_.mutable_header()->set_revision(rr->revision.value());
    server::ToProto(kv, response_.mutable_kv());
    StartWrite(&response_);
  }

  mvcc::RangeOptions ToRangeOptionsFirst() const {
    return server::ToRangeOptions(FirstCreated(prefix_));
  }

  void WaitForChange() {
    pending_.fetch_add(1);
    auto ready = [this]() -> Result<bool> {
      ASSIGN_OR_RETURN(mvcc::RangeResult rr, server_->store()->Range(ToRangeOptionsFirst()));
      if (rr.kvs.empty()) return false;  // still (or again) no leader: nothing to say
      const auto& kv = rr.kvs.front();
      return kv.key != seen_key_ || kv.create_revision.value() != seen_create_ ||
             kv.mod_revision.value() != seen_mod_;
    };
    // Any change under the name may change the leader or its value.
    waiter_->WaitUntil(
        prefix_, PrefixEnd(prefix_), ready, [this] { return cancelled_.load(); },
        [this](Status s) {
          if (s.ok()) {
            Look();
          } else {
            Done(s.code() == Code::kCancelled ? grpc::Status::CANCELLED : RecipeError(s));
          }
          OnDone();  // the waiter's reference
        });
  }

  void Done(grpc::Status status) {
    if (finished_.exchange(true)) return;
    Finish(std::move(status));
  }

  server::Server* const server_;
  KeyWaiter* const waiter_;
  const std::string prefix_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  std::atomic<int> pending_{1};  // gRPC's reference plus the waiter's while it waits
  std::string seen_key_;
  int64_t seen_create_ = 0;
  int64_t seen_mod_ = 0;
  v3electionpb::LeaderResponse response_;
};

}  // namespace

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::CampaignRequest* request,
                                                    v3electionpb::CampaignResponse* response) {
  // With auth enabled, only root: the election's keys are written as the member (docs/auth.md).
  if (FinishUnlessAdmin(ctx, ctx->DefaultReactor(), server_)) return ctx->DefaultReactor();
  auto call = std::make_shared<CampaignCall>();
  call->server = server_;
  call->waiter = waiter_;
  call->ctx = ctx;
  call->reactor = ctx->DefaultReactor();
  call->response = response;
  call->request = *request;
  call->prefix = request->name() + "/";
  call->key = LeaseKey(call->prefix, request->lease());
  call->Start();
  return call->reactor;
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::ProclaimRequest* request,
                                                    v3electionpb::ProclaimResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
  if (!request->has_leader()) {
    reactor->Finish(MissingLeader());
    return reactor;
  }
  etcdserverpb::TxnRequest txn = IfLeader(request->leader());
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(request->leader().key());
  put->set_value(request->value());
  put->set_lease(request->leader().lease());
  server_->Txn(txn, [reactor, response](Result<etcdserverpb::TxnResponse> r) {
    if (!r.ok()) return reactor->Finish(RecipeError(r.status()));
    if (!r->succeeded()) return reactor->Finish(NotLeader());
    *response->mutable_header() = r->header();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::LeaderRequest* request,
                                                  v3electionpb::LeaderResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
  server_->Range(FirstCreated(request->name() + "/"),
                 [reactor, response](Result<etcdserverpb::RangeResponse> r) {
                   if (!r.ok()) return reactor->Finish(RecipeError(r.status()));
                   if (r->kvs().empty()) return reactor->Finish(NoLeader());
                   *response->mutable_header() = r->header();
                   *response->mutable_kv() = r->kvs(0);
                   reactor->Finish(grpc::Status::OK);
                 });
  return reactor;
}

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* request) {
  if (Status s = CheckAdminCaller(ctx, server_); !s.ok()) {
    return new FinishedWriter<v3electionpb::LeaderResponse>(ToGrpcStatus(s));
  }
  return new ObserveReactor(server_, waiter_, request->name() + "/");
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::ResignRequest* request,
                                                  v3electionpb::ResignResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
  if (!request->has_leader()) {
    reactor->Finish(MissingLeader());
    return reactor;
  }
  etcdserverpb::TxnRequest txn = IfLeader(request->leader());
  txn.add_success()->mutable_request_delete_range()->set_key(request->leader().key());
  server_->Txn(txn, [reactor, response](Result<etcdserverpb::TxnResponse> r) {
    if (!r.ok()) return reactor->Finish(RecipeError(r.status()));
    *response->mutable_header() = r->header();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace dolmen::api
