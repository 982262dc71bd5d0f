#include "auth/auth_store.h"

#include <algorithm>
#include <mutex>

#include "auth/errors.h"
#include "auth/password.h"

namespace dolmen::auth {
namespace {

// etcd's keys in the "auth" bucket and their values.
constexpr std::string_view kEnabledKey = "authEnabled";
constexpr std::string_view kRevisionKey = "authRevision";
constexpr char kEnabled = 1;
constexpr char kDisabled = 0;

std::string EncodeRevision(uint64_t revision) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(revision & 0xff);
    revision >>= 8;
  }
  return out;
}

Result<uint64_t> DecodeRevision(std::string_view in) {
  if (in.size() != 8) {
    return Corruption("auth bucket: authRevision holds " + std::to_string(in.size()) +
                      " bytes, not 8");
  }
  uint64_t v = 0;
  for (char c : in) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

template <typename Message>
Status ScanRecords(backend::ReadTxn* txn, std::string_view bucket,
                   std::map<std::string, Message>* out) {
  Status error;
  RETURN_IF_ERROR(txn->Scan(bucket, "", "", [&](std::string_view key, std::string_view value) {
    Message m;
    if (!m.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      error = Corruption(std::string(bucket) + " bucket: the record of \"" + std::string(key) +
                         "\" does not decode");
      return false;
    }
    out->emplace(std::string(key), std::move(m));
    return true;
  }));
  return error;
}

// A failed backend write is no answer to the request but a failure of this member's storage:
// kIoError, which the applier treats as fatal (the same entry must apply on every member).
Status Stored(Status s) {
  if (s.ok()) return s;
  return Status(Code::kIoError, "auth store: " + s.ToString());
}

// Names are backend keys (1..kMaxKeyBytes bytes); a longer one is refused on every member alike.
Status CheckNameLength(const std::string& name, const char* what) {
  if (name.size() <= backend::kMaxKeyBytes) return OkStatus();
  return InvalidArgument(std::string(what) + " name is longer than " +
                         std::to_string(backend::kMaxKeyBytes) + " bytes");
}

}  // namespace

Status AuthStore::Load(backend::Backend* backend) {
  ASSIGN_OR_RETURN(auto txn, backend->BeginRead());
  bool enabled = false;
  uint64_t revision = 1;
  ASSIGN_OR_RETURN(auto flag, txn->Get(kAuthBucket, kEnabledKey));
  if (flag && flag->size() == 1 && (*flag)[0] == kEnabled) enabled = true;
  ASSIGN_OR_RETURN(auto rev, txn->Get(kAuthBucket, kRevisionKey));
  if (rev) {
    ASSIGN_OR_RETURN(revision, DecodeRevision(*rev));
  }
  std::map<std::string, authpb::User> users;
  std::map<std::string, authpb::Role> roles;
  RETURN_IF_ERROR(ScanRecords(txn.get(), kUsersBucket, &users));
  RETURN_IF_ERROR(ScanRecords(txn.get(), kRolesBucket, &roles));
  std::unique_lock lock(mu_);
  enabled_ = enabled;
  revision_ = revision;
  users_ = std::move(users);
  roles_ = std::move(roles);
  RefreshPermissions();
  return OkStatus();
}

bool AuthStore::enabled() const {
  std::shared_lock lock(mu_);
  return enabled_;
}

uint64_t AuthStore::revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

Status AuthStore::PutUser(const authpb::User& user, backend::WriteTxn* txn) {
  return txn->Put(kUsersBucket, user.name(), user.SerializeAsString());
}

Status AuthStore::PutRole(const authpb::Role& role, backend::WriteTxn* txn) {
  return txn->Put(kRolesBucket, role.name(), role.SerializeAsString());
}

Status AuthStore::CommitRevision(backend::WriteTxn* txn) {
  RETURN_IF_ERROR(Stored(txn->Put(kAuthBucket, kRevisionKey, EncodeRevision(revision_ + 1))));
  ++revision_;
  return OkStatus();
}

bool AuthStore::HasRootRole(const authpb::User& user) {
  return std::find(user.roles().begin(), user.roles().end(), kRootRole) != user.roles().end();
}

void AuthStore::RefreshPermissions() {
  perms_.clear();
  for (const auto& [name, user] : users_) {
    KeyPermissions& p = perms_[name];
    for (const auto& role_name : user.roles()) {
      auto role = roles_.find(role_name);
      if (role == roles_.end()) continue;
      for (const auto& perm : role->second.keypermission()) p.Add(perm);
    }
    p.Finish();
  }
}

Status AuthStore::Enable(backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  if (enabled_) return OkStatus();  // etcd: "authentication is already enabled", ignored
  auto root = users_.find(std::string(kRootUser));
  if (root == users_.end()) return RootUserNotExist();
  if (!HasRootRole(root->second)) return RootRoleNotExist();
  RETURN_IF_ERROR(Stored(txn->Put(kAuthBucket, kEnabledKey, std::string(1, kEnabled))));
  enabled_ = true;
  return OkStatus();
}

Status AuthStore::Disable(backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  if (!enabled_) return OkStatus();
  RETURN_IF_ERROR(Stored(txn->Put(kAuthBucket, kEnabledKey, std::string(1, kDisabled))));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  enabled_ = false;
  return OkStatus();
}

Status AuthStore::UserAdd(const etcdserverpb::AuthUserAddRequest& r, backend::WriteTxn* txn) {
  if (r.name().empty()) return UserEmpty();
  RETURN_IF_ERROR(CheckNameLength(r.name(), "user"));
  std::unique_lock lock(mu_);
  if (users_.contains(r.name())) return UserAlreadyExist();
  authpb::User user;
  user.set_name(r.name());
  if (!r.options().no_password()) user.set_password(r.hashedpassword());
  *user.mutable_options() = r.options();
  RETURN_IF_ERROR(Stored(PutUser(user, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  users_.emplace(r.name(), std::move(user));
  RefreshPermissions();
  return OkStatus();
}

Status AuthStore::UserDelete(const std::string& name, backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  if (enabled_ && name == kRootUser) return InvalidAuthMgmt();
  if (!users_.contains(name)) return UserNotFound();
  RETURN_IF_ERROR(Stored(txn->Delete(kUsersBucket, name)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  users_.erase(name);
  RefreshPermissions();
  return OkStatus();
}

Status AuthStore::UserChangePassword(const std::string& name, const std::string& hashed,
                                     backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return UserNotFound();
  authpb::User user = it->second;
  user.set_password(hashed);
  RETURN_IF_ERROR(Stored(PutUser(user, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  it->second = std::move(user);
  return OkStatus();
}

Status AuthStore::UserGrantRole(const std::string& user_name, const std::string& role,
                                backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  auto it = users_.find(user_name);
  if (it == users_.end()) return UserNotFound();
  // etcd lets the root role be granted before it was added.
  if (role != kRootRole && !roles_.contains(role)) return RoleNotFound();
  authpb::User user = it->second;
  auto& roles = *user.mutable_roles();
  if (std::find(roles.begin(), roles.end(), role) != roles.end()) return OkStatus();
  *user.add_roles() = role;
  std::sort(roles.begin(), roles.end());
  RETURN_IF_ERROR(Stored(PutUser(user, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  it->second = std::move(user);
  RefreshPermissions();
  return OkStatus();
}

Status AuthStore::UserRevokeRole(const std::string& user_name, const std::string& role,
                                 backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  if (enabled_ && user_name == kRootUser && role == kRootRole) return InvalidAuthMgmt();
  auto it = users_.find(user_name);
  if (it == users_.end()) return UserNotFound();
  authpb::User user = it->second;
  auto& roles = *user.mutable_roles();
  auto end = std::remove(roles.begin(), roles.end(), role);
  if (end == roles.end()) return RoleNotGranted();
  roles.erase(end, roles.end());
  RETURN_IF_ERROR(Stored(PutUser(user, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  it->second = std::move(user);
  RefreshPermissions();
  return OkStatus();
}

Status AuthStore::RoleAdd(const std::string& name, backend::WriteTxn* txn) {
  if (name.empty()) return RoleEmpty();
  RETURN_IF_ERROR(CheckNameLength(name, "role"));
  std::unique_lock lock(mu_);
  if (roles_.contains(name)) return RoleAlreadyExist();
  authpb::Role role;
  role.set_name(name);
  RETURN_IF_ERROR(Stored(PutRole(role, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  roles_.emplace(name, std::move(role));
  return OkStatus();
}

Status AuthStore::RoleDelete(const std::string& name, backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  if (enabled_ && name == kRootRole) return InvalidAuthMgmt();
  if (!roles_.contains(name)) return RoleNotFound();
  RETURN_IF_ERROR(Stored(txn->Delete(kRolesBucket, name)));
  // The role leaves every user that had it.
  std::map<std::string, authpb::User> changed;
  for (const auto& [user_name, user] : users_) {
    auto& roles = user.roles();
    if (std::find(roles.begin(), roles.end(), name) == roles.end()) continue;
    authpb::User updated = user;
    auto* r = updated.mutable_roles();
    r->erase(std::remove(r->begin(), r->end(), name), r->end());
    RETURN_IF_ERROR(Stored(PutUser(updated, txn)));
    changed.emplace(user_name, std::move(updated));
  }
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  roles_.erase(name);
  for (auto& [user_name, user] : changed) users_[user_name] = std::move(user);
  RefreshPermissions();
  return OkStatus();
}

Status AuthStore::RoleGrantPermission(const std::string& role_name, const authpb::Permission& perm,
                                      backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  auto it = roles_.find(role_name);
  if (it == roles_.end()) return RoleNotFound();
  authpb::Role role = it->second;
  auto* perms = role.mutable_keypermission();
  auto same = std::find_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
    return p.key() == perm.key() && p.range_end() == perm.range_end();
  });
  if (same != perms->end()) {
    same->set_permtype(perm.permtype());  // etcd updates the type of the same range
  } else {
    authpb::Permission* added = perms->Add();
    added->set_key(perm.key());
    added->set_range_end(perm.range_end());
    added->set_permtype(perm.permtype());
    // Kept ordered by key, as etcd's.
    std::stable_sort(
        perms->begin(), perms->end(),
        [](const authpb::Permission& a, const authpb::Permission& b) { return a.key() < b.key(); });
  }
  RETURN_IF_ERROR(Stored(PutRole(role, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  it->second = std::move(role);
  RefreshPermissions();
  return OkStatus();
}

Status AuthStore::RoleRevokePermission(const std::string& role_name, const std::string& key,
                                       const std::string& range_end, backend::WriteTxn* txn) {
  std::unique_lock lock(mu_);
  auto it = roles_.find(role_name);
  if (it == roles_.end()) return RoleNotFound();
  authpb::Role role = it->second;
  auto* perms = role.mutable_keypermission();
  auto end = std::remove_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
    return p.key() == key && p.range_end() == range_end;
  });
  if (end == perms->end()) return PermissionNotGranted();
  perms->erase(end, perms->end());
  RETURN_IF_ERROR(Stored(PutRole(role, txn)));
  RETURN_IF_ERROR(Stored(CommitRevision(txn)));
  it->second = std::move(role);
  RefreshPermissions();
  return OkStatus();
}

Result<etcdserverpb::AuthUserGetResponse> AuthStore::UserGet(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return UserNotFound();
  etcdserverpb::AuthUserGetResponse out;
  for (const auto& role : it->second.roles()) out.add_roles(role);
  return out;
}

etcdserverpb::AuthUserListResponse AuthStore::UserList() const {
  std::shared_lock lock(mu_);
  etcdserverpb::AuthUserListResponse out;
  for (const auto& [name, user] : users_) out.add_users(name);
  return out;
}

Result<etcdserverpb::AuthRoleGetResponse> AuthStore::RoleGet(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return RoleNotFound();
  etcdserverpb::AuthRoleGetResponse out;
  for (const auto& perm : it->second.keypermission()) *out.add_perm() = perm;
  return out;
}

etcdserverpb::AuthRoleListResponse AuthStore::RoleList() const {
  std::shared_lock lock(mu_);
  etcdserverpb::AuthRoleListResponse out;
  for (const auto& [name, role] : roles_) out.add_roles(name);
  return out;
}

bool AuthStore::UserExists(const std::string& name) const {
  std::shared_lock lock(mu_);
  return users_.contains(name);
}

bool AuthStore::HasRole(const std::string& user, const std::string& role) const {
  std::shared_lock lock(mu_);
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  const auto& roles = it->second.roles();
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

Result<uint64_t> AuthStore::CheckPassword(const std::string& name,
                                          const std::string& password) const {
  std::string hash;
  uint64_t revision = 0;
  {
    std::shared_lock lock(mu_);
    if (!enabled_) return AuthNotEnabled();
    auto it = users_.find(name);
    if (it == users_.end()) return AuthFailed();
    if (it->second.options().no_password()) return AuthFailed();
    hash = it->second.password();
    revision = revision_;
  }
  if (!PasswordMatches(hash, password)) return AuthFailed();
  return revision;
}

Status AuthStore::CheckAccess(const AuthInfo& who, std::string_view key, std::string_view range_end,
                              Access access) const {
  std::shared_lock lock(mu_);
  if (!enabled_) return OkStatus();
  // etcd: only a request without a user has revision 0.
  if (who.revision == 0) return UserEmpty();
  if (who.revision < revision_) return AuthOldRevision();
  auto user = users_.find(who.user);
  if (user == users_.end()) return PermissionDenied();
  if (HasRootRole(user->second)) return OkStatus();
  auto perms = perms_.find(who.user);
  if (perms == perms_.end()) return PermissionDenied();
  const bool ok = access == Access::kRead ? perms->second.CanRead(key, range_end)
                                          : perms->second.CanWrite(key, range_end);
  return ok ? OkStatus() : PermissionDenied();
}

Status AuthStore::CheckRange(const AuthInfo& who, std::string_view key,
                             std::string_view range_end) const {
  return CheckAccess(who, key, range_end, Access::kRead);
}

Status AuthStore::CheckPut(const AuthInfo& who, std::string_view key) const {
  return CheckAccess(who, key, "", Access::kWrite);
}

Status AuthStore::CheckDeleteRange(const AuthInfo& who, std::string_view key,
                                   std::string_view range_end) const {
  return CheckAccess(who, key, range_end, Access::kWrite);
}

Status AuthStore::CheckAdmin(const AuthInfo& who) const {
  std::shared_lock lock(mu_);
  if (!enabled_) return OkStatus();
  if (who.user.empty()) return UserEmpty();
  auto user = users_.find(who.user);
  if (user == users_.end()) return UserNotFound();
  if (!HasRootRole(user->second)) return PermissionDenied();
  return OkStatus();
}

}  // namespace dolmen::auth
