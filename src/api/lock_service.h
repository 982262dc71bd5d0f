// v3lockpb.Lock: etcd's server-side mutex (etcdserver/api/v3lock), built on the recipes in
// recipes.h. Lock queues a key "<name>/<lease hex>" carrying the caller's lease and answers
// once every key created before it under the name is gone; Unlock deletes the key. A lease
// that expires releases the lock (its key is deleted with the lease).
#pragma once

#include "api/recipes.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace dolmen::api {

class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  LockService(server::Server* server, KeyWaiter* waiter) : server_(server), waiter_(waiter) {}

  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx,
                                 const v3lockpb::LockRequest* request,
                                 v3lockpb::LockResponse* response) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* ctx,
                                   const v3lockpb::UnlockRequest* request,
                                   v3lockpb::UnlockResponse* response) override;

 private:
  server::Server* server_;
  KeyWaiter* waiter_;
};

}  // namespace dolmen::api
