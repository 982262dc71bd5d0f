// etcdserverpb.Auth (docs/auth.md): every RPC hands its request and the caller's AuthInfo to
// the server, which checks, hashes and proposes; errors come back as etcd's.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(server::Server* server) : server_(server) {}

#define DOLMEN_AUTH_RPC(Method, Request, Response)                       \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx,     \
                                   const etcdserverpb::Request* request, \
                                   etcdserverpb::Response* response) override;
  DOLMEN_AUTH_RPC(AuthEnable, AuthEnableRequest, AuthEnableResponse)
  DOLMEN_AUTH_RPC(AuthDisable, AuthDisableRequest, AuthDisableResponse)
  DOLMEN_AUTH_RPC(AuthStatus, AuthStatusRequest, AuthStatusResponse)
  DOLMEN_AUTH_RPC(Authenticate, AuthenticateRequest, AuthenticateResponse)
  DOLMEN_AUTH_RPC(UserAdd, AuthUserAddRequest, AuthUserAddResponse)
  DOLMEN_AUTH_RPC(UserGet, AuthUserGetRequest, AuthUserGetResponse)
  DOLMEN_AUTH_RPC(UserList, AuthUserListRequest, AuthUserListResponse)
  DOLMEN_AUTH_RPC(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse)
  DOLMEN_AUTH_RPC(UserChangePassword, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse)
  DOLMEN_AUTH_RPC(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse)
  DOLMEN_AUTH_RPC(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse)
  DOLMEN_AUTH_RPC(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse)
  DOLMEN_AUTH_RPC(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse)
  DOLMEN_AUTH_RPC(RoleList, AuthRoleListRequest, AuthRoleListResponse)
  DOLMEN_AUTH_RPC(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse)
  DOLMEN_AUTH_RPC(RoleGrantPermission, AuthRoleGrantPermissionRequest,
                  AuthRoleGrantPermissionResponse)
  DOLMEN_AUTH_RPC(RoleRevokePermission, AuthRoleRevokePermissionRequest,
                  AuthRoleRevokePermissionResponse)
#undef DOLMEN_AUTH_RPC

 private:
  server::Server* server_;
};

}  // namespace dolmen::api
