// etcd's auth errors (auth/store.go, rpctypes/error.go) as Status values. src/api turns them
// into etcd's gRPC code and "etcdserver: " + the message, which clients compare verbatim.
#pragma once

#include "base/status.h"

namespace dolmen::auth {

inline Status RootUserNotExist() { return {Code::kFailedPrecondition, "root user does not exist"}; }
inline Status RootRoleNotExist() {
  return {Code::kFailedPrecondition, "root user does not have root role"};
}
inline Status UserAlreadyExist() { return {Code::kFailedPrecondition, "user name already exists"}; }
inline Status UserEmpty() { return {Code::kInvalidArgument, "user name is empty"}; }
inline Status UserNotFound() { return {Code::kFailedPrecondition, "user name not found"}; }
inline Status RoleAlreadyExist() { return {Code::kFailedPrecondition, "role name already exists"}; }
inline Status RoleNotFound() { return {Code::kFailedPrecondition, "role name not found"}; }
inline Status RoleEmpty() { return {Code::kInvalidArgument, "role name is empty"}; }
inline Status AuthFailed() {
  return {Code::kInvalidArgument, "authentication failed, invalid user ID or password"};
}
inline Status PermissionDenied() { return {Code::kPermissionDenied, "permission denied"}; }
inline Status RoleNotGranted() {
  return {Code::kFailedPrecondition, "role is not granted to the user"};
}
inline Status PermissionNotGranted() {
  return {Code::kFailedPrecondition, "permission is not granted to the role"};
}
inline Status AuthNotEnabled() {
  return {Code::kFailedPrecondition, "authentication is not enabled"};
}
inline Status InvalidAuthToken() { return {Code::kUnauthenticated, "invalid auth token"}; }
inline Status InvalidAuthMgmt() { return {Code::kInvalidArgument, "invalid auth management"}; }
inline Status AuthOldRevision() {
  return {Code::kAuthOldRevision, "revision of auth store is old"};
}

}  // namespace dolmen::auth
