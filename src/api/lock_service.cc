#include "api/lock_service.h"

#include <memory>
#include <utility>

#include "api/caller.h"
#include "api/errors.h"

namespace dolmen::api {
namespace {

// One Lock call, as clientv3/concurrency's Mutex.Lock: enqueue (or find) our key, and if it is
// not the oldest under the name, wait for every older one to go. On failure the key is
// deleted again, as etcd releases it when the wait fails.
struct LockCall : std::enable_shared_from_this<LockCall> {
  server::Server* server;
  KeyWaiter* waiter;
  grpc::CallbackServerContext* ctx;
  grpc::ServerUnaryReactor* reactor;
  v3lockpb::LockResponse* response;
  std::string prefix;
  std::string my_key;
  int64_t lease = 0;
  int64_t my_revision = 0;

  void Start() {
    etcdserverpb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(my_key);
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_create_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(my_key);
    put->set_lease(lease);
    *txn.add_success()->mutable_request_range() = FirstCreated(prefix);
    txn.add_failure()->mutable_request_range()->set_key(my_key);
    *txn.add_failure()->mutable_request_range() = FirstCreated(prefix);
    server->Txn(txn, [self = shared_from_this()](Result<etcdserverpb::TxnResponse> r) {
      self->Enqueued(std::move(r));
    });
  }

  void Enqueued(Result<etcdserverpb::TxnResponse> r) {
    if (!r.ok()) return reactor->Finish(RecipeError(r.status()));
    my_revision = r->header().revision();
    if (!r->succeeded()) {
      const auto& mine = r->responses(0).response_range().kvs();
      if (mine.empty())
        return reactor->Finish(RecipeError(Status(Code::kInternal, "lock key vanished")));
      my_revision = mine[0].create_revision();
    }
    const auto& owner = r->responses(1).response_range().kvs();
    if (owner.empty() || owner[0].create_revision() == my_revision) {
      return Acquired(r->header());
    }
    auto self = shared_from_this();
    WaitDeletes(
        server, waiter, prefix, my_revision - 1, [self] { return self->ctx->IsCancelled(); },
        [self](Result<etcdserverpb::ResponseHeader> h) {
          if (h.ok()) return self->Acquired(*h);
          self->Release(h.status());
        });
  }

  void Acquired(const etcdserverpb::ResponseHeader& header) {
    *response->mutable_header() = header;
    response->set_key(my_key);
    reactor->Finish(grpc::Status::OK);
  }

  void Release(Status why) {
    etcdserverpb::DeleteRangeRequest del;
    del.set_key(my_key);
    server->DeleteRange(
        del, [self = shared_from_this(), why](auto) { self->reactor->Finish(RecipeError(why)); });
  }
};

}  // namespace

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* ctx,
                                            const v3lockpb::LockRequest* request,
                                            v3lockpb::LockResponse* response) {
  // With auth enabled, only root: the lock's keys are written as the member (docs/auth.md).
  if (FinishUnlessAdmin(ctx, ctx->DefaultReactor(), server_)) return ctx->DefaultReactor();
  auto call = std::make_shared<LockCall>();
  call->server = server_;
  call->waiter = waiter_;
  call->ctx = ctx;
  call->reactor = ctx->DefaultReactor();
  call->response = response;
  call->prefix = request->name() + "/";
  call->lease = request->lease();
  call->my_key = LeaseKey(call->prefix, request->lease());
  call->Start();
  return call->reactor;
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* ctx,
                                              const v3lockpb::UnlockRequest* request,
                                              v3lockpb::UnlockResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (FinishUnlessAdmin(ctx, reactor, server_)) return reactor;
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(request->key());
  server_->DeleteRange(del, [reactor, response](Result<etcdserverpb::DeleteRangeResponse> r) {
    if (!r.ok()) return reactor->Finish(RecipeError(r.status()));
    *response->mutable_header() = r->header();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace dolmen::api
