#include "api/auth_service.h"

#include "api/caller.h"
#include "api/errors.h"
#include "api/require_leader.h"
#include "api/unary_reply.h"

namespace dolmen::api {
namespace {

// The common shape: refused without a leader when the client asks for one, then the caller
// resolved from its token (an unknown token ends the call), then `call(caller, reply)`.
template <typename Response, typename Call>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, server::Server* server,
                                Response* response, Call call) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server)) return reactor;
  auto caller = CallerOrFinish(ctx, reactor, server);
  if (!caller) return reactor;
  call(server::Caller(std::move(*caller)), ReplyTo(reactor, response));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* AuthService::AuthEnable(grpc::CallbackServerContext* ctx,
                                                  const etcdserverpb::AuthEnableRequest*,
                                                  etcdserverpb::AuthEnableResponse* response) {
  return Serve(ctx, server_, response,
               [this](const server::Caller& c, auto reply) { server_->AuthEnable(reply, c); });
}

grpc::ServerUnaryReactor* AuthService::AuthDisable(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::AuthDisableRequest*,
                                                   etcdserverpb::AuthDisableResponse* response) {
  return Serve(ctx, server_, response,
               [this](const server::Caller& c, auto reply) { server_->AuthDisable(reply, c); });
}

grpc::ServerUnaryReactor* AuthService::AuthStatus(grpc::CallbackServerContext* ctx,
                                                  const etcdserverpb::AuthStatusRequest*,
                                                  etcdserverpb::AuthStatusResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  *response = server_->AuthStatus();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::Authenticate(
    grpc::CallbackServerContext* ctx, const etcdserverpb::AuthenticateRequest* request,
    etcdserverpb::AuthenticateResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (RefuseWithoutLeader(ctx, reactor, server_)) return reactor;
  server_->Authenticate(*request, ReplyTo(reactor, response));
  return reactor;
}

// The rest take their request as it came.
#define DOLMEN_AUTH_FORWARD(Method, Request, Response)                                          \
  grpc::ServerUnaryReactor* AuthService::Method(grpc::CallbackServerContext* ctx,               \
                                                const etcdserverpb::Request* request,           \
                                                etcdserverpb::Response* response) {             \
    return Serve(ctx, server_, response, [this, request](const server::Caller& c, auto reply) { \
      server_->Method(*request, reply, c);                                                      \
    });                                                                                         \
  }
DOLMEN_AUTH_FORWARD(UserAdd, AuthUserAddRequest, AuthUserAddResponse)
DOLMEN_AUTH_FORWARD(UserGet, AuthUserGetRequest, AuthUserGetResponse)
DOLMEN_AUTH_FORWARD(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse)
DOLMEN_AUTH_FORWARD(UserChangePassword, AuthUserChangePasswordRequest,
                    AuthUserChangePasswordResponse)
DOLMEN_AUTH_FORWARD(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse)
DOLMEN_AUTH_FORWARD(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse)
DOLMEN_AUTH_FORWARD(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse)
DOLMEN_AUTH_FORWARD(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse)
DOLMEN_AUTH_FORWARD(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse)
DOLMEN_AUTH_FORWARD(RoleGrantPermission, AuthRoleGrantPermissionRequest,
                    AuthRoleGrantPermissionResponse)
DOLMEN_AUTH_FORWARD(RoleRevokePermission, AuthRoleRevokePermissionRequest,
                    AuthRoleRevokePermissionResponse)
#undef DOLMEN_AUTH_FORWARD

grpc::ServerUnaryReactor* AuthService::UserList(grpc::CallbackServerContext* ctx,
                                                const etcdserverpb::AuthUserListRequest*,
                                                etcdserverpb::AuthUserListResponse* response) {
  return Serve(ctx, server_, response,
               [this](const server::Caller& c, auto reply) { server_->UserList(reply, c); });
}

grpc::ServerUnaryReactor* AuthService::RoleList(grpc::CallbackServerContext* ctx,
                                                const etcdserverpb::AuthRoleListRequest*,
                                                etcdserverpb::AuthRoleListResponse* response) {
  return Serve(ctx, server_, response,
               [this](const server::Caller& c, auto reply) { server_->RoleList(reply, c); });
}

}  // namespace dolmen::api
