#include "api/caller.h"

#include "api/errors.h"

namespace dolmen::api {
namespace {
// etcd's rpctypes.TokenFieldNameGRPC and TokenFieldNameSwagger.
constexpr char kTokenKey[] = "token";
constexpr char kAuthorizationKey[] = "authorization";

std::string TokenOf(const grpc::ServerContextBase* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(kTokenKey);
  if (it == metadata.end()) it = metadata.find(kAuthorizationKey);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

Result<auth::AuthInfo> CallerOf(const grpc::ServerContextBase* context, server::Server* server) {
  // etcd looks the key up only when one was sent; an empty value is looked up (and fails).
  const auto& metadata = context->client_metadata();
  if (metadata.find(kTokenKey) == metadata.end() &&
      metadata.find(kAuthorizationKey) == metadata.end()) {
    return auth::AuthInfo{};
  }
  return server->CallerFromToken(TokenOf(context));
}

std::optional<auth::AuthInfo> CallerOrFinish(grpc::CallbackServerContext* context,
                                             grpc::ServerUnaryReactor* reactor,
                                             server::Server* server) {
  auto caller = CallerOf(context, server);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return std::nullopt;
  }
  return std::move(caller).value();
}

Status CheckAdminCaller(const grpc::ServerContextBase* context, server::Server* server) {
  ASSIGN_OR_RETURN(auth::AuthInfo caller, CallerOf(context, server));
  return server->auth_store().CheckAdmin(caller);
}

bool FinishUnlessAdmin(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                       server::Server* server) {
  Status s = CheckAdminCaller(context, server);
  if (s.ok()) return false;
  reactor->Finish(ToGrpcStatus(s));
  return true;
}

}  // namespace dolmen::api
