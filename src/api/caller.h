// Who sends a call, for auth (docs/auth.md): etcd reads the simple token from the gRPC metadata
// key "token" (clientv3) or, failing that, "authorization" (the JSON gateway passes the HTTP
// Authorization header under it). No token: an empty AuthInfo, which auth refuses once it is
// enabled ("user name is empty"), as etcd does.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "server/server.h"

namespace dolmen::api {

// The caller of `context`: its token's user, or empty without a token; "invalid auth token" for
// a token this member does not know.
Result<auth::AuthInfo> CallerOf(const grpc::ServerContextBase* context, server::Server* server);

// For unary handlers: the caller, or nullopt after finishing `reactor` with the error.
std::optional<auth::AuthInfo> CallerOrFinish(grpc::CallbackServerContext* context,
                                             grpc::ServerUnaryReactor* reactor,
                                             server::Server* server);

// For RPCs that need the root role (etcd's authMaintenanceServer: Defragment, Snapshot, Hash,
// HashKV; dolmen's Lock and Election, docs/auth.md): OK when auth is disabled or the caller has
// it.
Status CheckAdminCaller(const grpc::ServerContextBase* context, server::Server* server);
// The same for unary handlers: finishes `reactor` with the refusal and returns true.
bool FinishUnlessAdmin(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                       server::Server* server);

}  // namespace dolmen::api
