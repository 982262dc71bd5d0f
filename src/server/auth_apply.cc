// The applier's auth side (docs/auth.md): etcd's authApplierV3. Requests proposed for a client
// carry an auth header (the token's user and the auth revision it was checked at); they are
// checked here, at apply, so that a permission revoked between proposing and applying is
// honoured on every member alike. Requests the member proposes for itself (lease expiry,
// publish, alarms) carry none and are not checked.
#include "auth/errors.h"
#include "log/log.h"
#include "server/applier.h"
#include "server/auth_checks.h"

namespace dolmen::server {
namespace {

auth::AuthInfo WhoOf(const internal::InternalRequest& request) {
  return auth::AuthInfo{request.auth_header().username(), request.auth_header().auth_revision()};
}

}  // namespace

Status Applier::CheckLeaseKeysWritable(const auth::AuthInfo& who, LeaseId lease) const {
  if (lease.value() == 0 || lessor_ == nullptr) return OkStatus();
  auto keys = lessor_->Keys(lease);
  if (!keys.ok()) return OkStatus();  // no such lease: the request fails on its own
  for (const auto& key : *keys) RETURN_IF_ERROR(auth_->CheckPut(who, key));
  return OkStatus();
}

Status Applier::CheckPermitted(const internal::InternalRequest& request) const {
  if (auth_ == nullptr || !request.has_auth_header()) return OkStatus();
  const auth::AuthInfo who = WhoOf(request);
  switch (request.request_case()) {
    case internal::InternalRequest::kPut: {
      const auto& put = request.put();
      RETURN_IF_ERROR(auth_->CheckPut(who, put.key()));
      // A lease whose keys this user may not write cannot be attached to (etcd: the user could
      // not revoke it).
      RETURN_IF_ERROR(CheckLeaseKeysWritable(who, LeaseId(put.lease())));
      if (put.prev_kv()) RETURN_IF_ERROR(auth_->CheckRange(who, put.key(), ""));
      return OkStatus();
    }
    case internal::InternalRequest::kDeleteRange: {
      const auto& d = request.delete_range();
      RETURN_IF_ERROR(auth_->CheckDeleteRange(who, d.key(), d.range_end()));
      if (d.prev_kv()) RETURN_IF_ERROR(auth_->CheckRange(who, d.key(), d.range_end()));
      return OkStatus();
    }
    case internal::InternalRequest::kTxn:
      return CheckTxnPermitted(*auth_, who, request.txn());
    case internal::InternalRequest::kLeaseRevoke:
      return CheckLeaseKeysWritable(who, LeaseId(request.lease_revoke().id()));
    default:
      // Compaction, lease grant and alarms need no permission in etcd 3.4.
      return OkStatus();
  }
}

ApplyResult Applier::ApplyAuth(const internal::InternalRequest& request, Index index) {
  ApplyResult out;
  if (auth_ == nullptr || tokens_ == nullptr) {
    out.status = Unimplemented("auth is not enabled on this applier");
    return out;
  }
  const internal::AuthRequest& a = request.auth();
  const auth::AuthInfo who = WhoOf(request);
  const Revision revision = store_->CurrentRevision();
  auto header = [&](auto response) {
    response.mutable_header()->set_revision(revision.value());
    return response;
  };

  if (a.has_authenticate()) {
    // The password was checked by the proposing member at the auth revision in the header; a
    // change of the store since (a new password, a deleted user) makes it try again.
    const auto& r = a.authenticate();
    if (!auth_->enabled()) {
      out.status = auth::AuthNotEnabled();
    } else if (!auth_->UserExists(r.name())) {
      out.status = auth::AuthFailed();
    } else if (request.has_auth_header() && who.revision < auth_->revision()) {
      out.status = auth::AuthOldRevision();
    } else {
      etcdserverpb::AuthenticateResponse response;
      response.set_token(tokens_->Assign(r.simple_token(), index.value(), r.name()));
      out.response = header(std::move(response));
    }
    return out;
  }

  // Each change is logged at info, with etcd's messages. Every change needs the root role once auth
  // is enabled (etcd's needAdminPermission).
  if (request.has_auth_header()) {
    if (Status s = auth_->CheckAdmin(who); !s.ok()) {
      out.status = std::move(s);
      return out;
    }
  }
  auto txn = store_->BatchTxn();
  if (!txn.ok()) {
    storage_failed_ = true;
    out.status = txn.status();
    return out;
  }
  backend::WriteTxn* t = *txn;
  Status s;
  switch (a.request_case()) {
    case internal::AuthRequest::kEnable:
      s = auth_->Enable(t);
      if (s.ok()) {
        log::Info("enabled authentication", {});
        out.response = header(etcdserverpb::AuthEnableResponse());
      }
      break;
    case internal::AuthRequest::kDisable:
      s = auth_->Disable(t);
      if (s.ok()) {
        tokens_->InvalidateAll();
        log::Info("disabled authentication", {});
        out.response = header(etcdserverpb::AuthDisableResponse());
      }
      break;
    case internal::AuthRequest::kUserAdd:
      s = auth_->UserAdd(a.user_add(), t);
      if (s.ok()) {
        log::Info("added a user", {{"user-name", a.user_add().name()}});
        out.response = header(etcdserverpb::AuthUserAddResponse());
      }
      break;
    case internal::AuthRequest::kUserDelete:
      s = auth_->UserDelete(a.user_delete().name(), t);
      if (s.ok()) {
        tokens_->InvalidateUser(a.user_delete().name());
        log::Info("deleted a user", {{"user-name", a.user_delete().name()}});
        out.response = header(etcdserverpb::AuthUserDeleteResponse());
      }
      break;
    case internal::AuthRequest::kUserChangePassword: {
      const auto& r = a.user_change_password();
      s = auth_->UserChangePassword(r.name(), r.hashedpassword(), t);
      if (s.ok()) {
        tokens_->InvalidateUser(r.name());
        log::Info("changed a password of a user", {{"user-name", r.name()}});
        out.response = header(etcdserverpb::AuthUserChangePasswordResponse());
      }
      break;
    }
    case internal::AuthRequest::kUserGrantRole:
      s = auth_->UserGrantRole(a.user_grant_role().user(), a.user_grant_role().role(), t);
      if (s.ok()) {
        log::Info("granted a role to a user", {{"user-name", a.user_grant_role().user()},
                                               {"added-role-name", a.user_grant_role().role()}});
        out.response = header(etcdserverpb::AuthUserGrantRoleResponse());
      }
      break;
    case internal::AuthRequest::kUserRevokeRole:
      s = auth_->UserRevokeRole(a.user_revoke_role().name(), a.user_revoke_role().role(), t);
      if (s.ok()) {
        log::Info("revoked a role from a user",
                  {{"user-name", a.user_revoke_role().name()},
                   {"revoked-role-name", a.user_revoke_role().role()}});
        out.response = header(etcdserverpb::AuthUserRevokeRoleResponse());
      }
      break;
    case internal::AuthRequest::kRoleAdd:
      s = auth_->RoleAdd(a.role_add().name(), t);
      if (s.ok()) {
        log::Info("created a role", {{"role-name", a.role_add().name()}});
        out.response = header(etcdserverpb::AuthRoleAddResponse());
      }
      break;
    case internal::AuthRequest::kRoleDelete:
      s = auth_->RoleDelete(a.role_delete().role(), t);
      if (s.ok()) {
        log::Info("deleted a role", {{"role-name", a.role_delete().role()}});
        out.response = header(etcdserverpb::AuthRoleDeleteResponse());
      }
      break;
    case internal::AuthRequest::kRoleGrantPermission: {
      const auto& r = a.role_grant_permission();
      s = auth_->RoleGrantPermission(r.name(), r.perm(), t);
      if (s.ok()) {
        log::Info("granted/updated a permission to a role",
                  {{"role-name", r.name()},
                   {"permission-name", authpb::Permission::Type_Name(r.perm().permtype())}});
        out.response = header(etcdserverpb::AuthRoleGrantPermissionResponse());
      }
      break;
    }
    case internal::AuthRequest::kRoleRevokePermission: {
      const auto& r = a.role_revoke_permission();
      s = auth_->RoleRevokePermission(r.role(), r.key(), r.range_end(), t);
      if (s.ok()) {
        log::Info("revoked a permission on range", {{"role-name", r.role()}});
        out.response = header(etcdserverpb::AuthRoleRevokePermissionResponse());
      }
      break;
    }
    default:
      s = InvalidArgument("an auth entry without an operation");
      break;
  }
  if (s.code() == Code::kIoError) storage_failed_ = true;
  out.status = std::move(s);
  return out;
}

}  // namespace dolmen::server
