// The member's auth entry points (docs/auth.md): changes through the log, reads after a read
// barrier, passwords hashed and checked off the driver thread, tokens resolved for the API.
#include "auth/errors.h"
#include "auth/password.h"
#include "log/log.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

// Authenticate proposals refused because the auth store changed after the password was
// checked are retried this many times (etcd retries until one lands).
constexpr int kAuthenticateAttempts = 3;

// Answers `done` with the apply result's Response, its header filled as every response's.
template <typename Response>
void Reply(Server* server, ApplyResult result, const Callback<Response>& done) {
  if (!result.status.ok()) return done(result.status);
  Response* response = std::get_if<Response>(&result.response);
  CHECK(response != nullptr) << "auth apply returned another response type";
  const int64_t revision = response->header().revision();
  server->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(revision);
  done(std::move(*response));
}

// The two halves AfterReadBarrier takes for an auth read: `read` past the barrier, answered
// with this member's header (revision: the store's), or its error; a failed barrier answered too.
template <typename Response>
std::pair<std::function<Status()>, std::function<void(Status)>> Answering(
    const Server* server, Callback<Response> done, std::function<Result<Response>()> read) {
  auto shared = std::make_shared<Callback<Response>>(std::move(done));
  return {[server, shared, read = std::move(read)]() -> Status {
            ASSIGN_OR_RETURN(Response response, read());
            server->FillHeader(response.mutable_header());
            response.mutable_header()->set_revision(server->current_revision().value());
            (*shared)(std::move(response));
            return OkStatus();
          },
          [shared](Status s) { (*shared)(s); }};
}

}  // namespace

void Server::StampCaller(internal::InternalRequest* request, const Caller& caller) {
  if (!caller) return;
  request->mutable_auth_header()->set_username(caller->user);
  request->mutable_auth_header()->set_auth_revision(caller->revision);
}

Status Server::AuthStillCurrent(const Caller& caller) const {
  if (!caller || caller->revision == 0 || caller->revision == auth_->revision()) {
    return OkStatus();
  }
  return auth::AuthOldRevision();
}

Status Server::OpenAuth() {
  auth_ = std::make_unique<auth::AuthStore>();
  RETURN_IF_ERROR(auth_->Load(backend_.get()));
  tokens_ = std::make_unique<auth::SimpleTokens>(clock_, config_.auth_token_ttl);
  return OkStatus();
}

Result<auth::AuthInfo> Server::CallerFromToken(const std::string& token) {
  // etcd's format check first, then this member's table. A token issued at an index this
  // member has not applied yet is unknown here until it has (docs/auth.md).
  if (!auth::SimpleTokenIndex(token)) return auth::InvalidAuthToken();
  auto user = tokens_->UserOf(token);
  if (!user) {
    log::Warn("invalid auth token", {{"token", token}});
    return auth::InvalidAuthToken();
  }
  return auth::AuthInfo{*user, auth_->revision()};
}

template <typename Response>
void Server::ProposeAuth(internal::AuthRequest change, const Caller& caller,
                         Callback<Response> done) {
  if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_auth() = std::move(change);
  StampCaller(&request, caller);
  Propose(std::move(request), [this, done = std::move(done)](ApplyResult result) {
    Reply(this, std::move(result), done);
  });
}

void Server::AfterReadBarrier(std::function<Status()> read, std::function<void(Status)> failed) {
  ReadBarrier(/*serializable=*/false,
              [read = std::move(read), failed = std::move(failed)](Status barrier) {
                if (!barrier.ok()) return failed(barrier);
                if (Status s = read(); !s.ok()) failed(s);
              });
}

void Server::AuthEnable(Callback<etcdserverpb::AuthEnableResponse> done, const Caller& caller) {
  internal::AuthRequest change;
  change.mutable_enable();
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::AuthDisable(Callback<etcdserverpb::AuthDisableResponse> done, const Caller& caller) {
  internal::AuthRequest change;
  change.mutable_disable();
  ProposeAuth(std::move(change), caller, std::move(done));
}

etcdserverpb::AuthStatusResponse Server::AuthStatus() {
  etcdserverpb::AuthStatusResponse out;
  FillHeader(out.mutable_header());
  out.mutable_header()->set_revision(store_->CurrentRevision().value());
  out.set_enabled(auth_->enabled());
  out.set_authrevision(auth_->revision());
  return out;
}

void Server::Authenticate(const etcdserverpb::AuthenticateRequest& r,
                          Callback<etcdserverpb::AuthenticateResponse> done) {
  AuthenticateOnce(r, kAuthenticateAttempts, std::move(done));
}

void Server::AuthenticateOnce(const etcdserverpb::AuthenticateRequest& r, int attempts_left,
                              Callback<etcdserverpb::AuthenticateResponse> done) {
  // Linearizable, as etcd: a password changed a moment ago is the one checked. bcrypt then runs
  // on the read pool, never on the driver thread.
  auto shared = std::make_shared<Callback<etcdserverpb::AuthenticateResponse>>(std::move(done));
  AfterReadBarrier(
      [this, r, attempts_left, shared]() -> Status {
        ASSIGN_OR_RETURN(uint64_t checked, auth_->CheckPassword(r.name(), r.password()));
        ASSIGN_OR_RETURN(std::string prefix, auth::SimpleTokens::NewPrefix());
        internal::InternalRequest request;
        auto* a = request.mutable_auth()->mutable_authenticate();
        a->set_name(r.name());  // the password stays here
        a->set_simple_token(prefix);
        StampCaller(&request, auth::AuthInfo{r.name(), checked});
        Propose(std::move(request), [this, r, attempts_left, shared](ApplyResult result) {
          if (result.status.code() == Code::kAuthOldRevision && attempts_left > 1) {
            log::Info("revision when password checked became stale; retrying");
            return AuthenticateOnce(r, attempts_left - 1, std::move(*shared));
          }
          Reply(this, std::move(result), *shared);
        });
        return OkStatus();
      },
      [this, name = r.name(), shared](Status s) {
        if (s.code() != Code::kFailedPrecondition) {  // not "authentication is not enabled"
          log::Warn("invalid authentication was requested",
                    {{"user", name}, {"error", s.message()}});
        }
        (*shared)(s);
      });
}

void Server::UserAdd(const etcdserverpb::AuthUserAddRequest& r,
                     Callback<etcdserverpb::AuthUserAddResponse> done, const Caller& caller) {
  if (r.name().empty()) return done(auth::UserEmpty());
  auto shared = std::make_shared<Callback<etcdserverpb::AuthUserAddResponse>>(std::move(done));
  // Hashed here, on the read pool (tens of milliseconds), so the log never holds the password.
  Status posted = read_pool_->Post([this, r, caller, shared] {
    internal::AuthRequest change;
    auto* add = change.mutable_user_add();
    add->set_name(r.name());
    *add->mutable_options() = r.options();
    if (!r.options().no_password()) {
      auto hashed = auth::HashPassword(r.password(), config_.bcrypt_cost);
      if (!hashed.ok()) return (*shared)(hashed.status());
      add->set_hashedpassword(*hashed);
    }
    ProposeAuth(std::move(change), caller, std::move(*shared));
  });
  if (!posted.ok()) (*shared)(posted);
}

void Server::UserChangePassword(const etcdserverpb::AuthUserChangePasswordRequest& r,
                                Callback<etcdserverpb::AuthUserChangePasswordResponse> done,
                                const Caller& caller) {
  auto shared =
      std::make_shared<Callback<etcdserverpb::AuthUserChangePasswordResponse>>(std::move(done));
  Status posted = read_pool_->Post([this, r, caller, shared] {
    auto hashed = auth::HashPassword(r.password(), config_.bcrypt_cost);
    if (!hashed.ok()) return (*shared)(hashed.status());
    internal::AuthRequest change;
    change.mutable_user_change_password()->set_name(r.name());
    change.mutable_user_change_password()->set_hashedpassword(*hashed);
    ProposeAuth(std::move(change), caller, std::move(*shared));
  });
  if (!posted.ok()) (*shared)(posted);
}

void Server::UserDelete(const etcdserverpb::AuthUserDeleteRequest& r,
                        Callback<etcdserverpb::AuthUserDeleteResponse> done, const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_user_delete() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::UserGrantRole(const etcdserverpb::AuthUserGrantRoleRequest& r,
                           Callback<etcdserverpb::AuthUserGrantRoleResponse> done,
                           const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_user_grant_role() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::UserRevokeRole(const etcdserverpb::AuthUserRevokeRoleRequest& r,
                            Callback<etcdserverpb::AuthUserRevokeRoleResponse> done,
                            const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_user_revoke_role() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::RoleAdd(const etcdserverpb::AuthRoleAddRequest& r,
                     Callback<etcdserverpb::AuthRoleAddResponse> done, const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_role_add() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::RoleDelete(const etcdserverpb::AuthRoleDeleteRequest& r,
                        Callback<etcdserverpb::AuthRoleDeleteResponse> done, const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_role_delete() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::RoleGrantPermission(const etcdserverpb::AuthRoleGrantPermissionRequest& r,
                                 Callback<etcdserverpb::AuthRoleGrantPermissionResponse> done,
                                 const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_role_grant_permission() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

void Server::RoleRevokePermission(const etcdserverpb::AuthRoleRevokePermissionRequest& r,
                                  Callback<etcdserverpb::AuthRoleRevokePermissionResponse> done,
                                  const Caller& caller) {
  internal::AuthRequest change;
  *change.mutable_role_revoke_permission() = r;
  ProposeAuth(std::move(change), caller, std::move(done));
}

// Reads: etcd answers them through the log; a read barrier gives the same linearizable answer
// without a log entry. Who may read is etcd's rule: root, or the user about itself / a user
// about a role it has.
void Server::UserGet(const etcdserverpb::AuthUserGetRequest& r,
                     Callback<etcdserverpb::AuthUserGetResponse> done, const Caller& caller) {
  auto [read, failed] = Answering<etcdserverpb::AuthUserGetResponse>(
      this, std::move(done), [this, r, caller]() -> Result<etcdserverpb::AuthUserGetResponse> {
        if (caller) {
          Status admin = auth_->CheckAdmin(*caller);
          if (!admin.ok() && r.name() != caller->user) return admin;
        }
        return auth_->UserGet(r.name());
      });
  AfterReadBarrier(std::move(read), std::move(failed));
}

void Server::UserList(Callback<etcdserverpb::AuthUserListResponse> done, const Caller& caller) {
  auto [read, failed] = Answering<etcdserverpb::AuthUserListResponse>(
      this, std::move(done), [this, caller]() -> Result<etcdserverpb::AuthUserListResponse> {
        if (caller) RETURN_IF_ERROR(auth_->CheckAdmin(*caller));
        return auth_->UserList();
      });
  AfterReadBarrier(std::move(read), std::move(failed));
}

void Server::RoleGet(const etcdserverpb::AuthRoleGetRequest& r,
                     Callback<etcdserverpb::AuthRoleGetResponse> done, const Caller& caller) {
  auto [read, failed] = Answering<etcdserverpb::AuthRoleGetResponse>(
      this, std::move(done), [this, r, caller]() -> Result<etcdserverpb::AuthRoleGetResponse> {
        if (caller) {
          Status admin = auth_->CheckAdmin(*caller);
          if (!admin.ok() && !auth_->HasRole(caller->user, r.role())) return admin;
        }
        return auth_->RoleGet(r.role());
      });
  AfterReadBarrier(std::move(read), std::move(failed));
}

void Server::RoleList(Callback<etcdserverpb::AuthRoleListResponse> done, const Caller& caller) {
  auto [read, failed] = Answering<etcdserverpb::AuthRoleListResponse>(
      this, std::move(done), [this, caller]() -> Result<etcdserverpb::AuthRoleListResponse> {
        if (caller) RETURN_IF_ERROR(auth_->CheckAdmin(*caller));
        return auth_->RoleList();
      });
  AfterReadBarrier(std::move(read), std::move(failed));
}

}  // namespace dolmen::server
