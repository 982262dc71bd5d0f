// etcd's auth store: users (bcrypt password hash, roles), roles (key permissions), whether auth
// is enabled, and the auth revision that every change raises. It changes only by applying log
// entries (src/server/auth_apply.cc), so every member holds the same; it persists in the
// backend buckets "auth", "authUsers" and "authRoles" with etcd's keys and values
// (docs/auth.md), inside the apply batch's backend txn, and travels in snapshots with the rest
// of the backend.
//
// Threads: mutations on the apply thread only; reads and permission checks on any thread (a
// shared lock; bcrypt runs outside it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "auth/key_permissions.h"
#include "authpb/auth.pb.h"
#include "backend/backend.h"
#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace dolmen::auth {

inline constexpr std::string_view kRootUser = "root";
inline constexpr std::string_view kRootRole = "root";

// Who sends a request: the user its token names and the auth revision when the token was
// checked (etcd's AuthInfo). Empty for a request without a token.
struct AuthInfo {
  std::string user;
  uint64_t revision = 0;
  bool empty() const { return user.empty(); }
};

class AuthStore {
 public:
  static constexpr std::string_view kAuthBucket = "auth";
  static constexpr std::string_view kUsersBucket = "authUsers";
  static constexpr std::string_view kRolesBucket = "authRoles";

  // Replaces what is in memory with the buckets' contents (at start, after a snapshot).
  // kCorruption if a record does not decode.
  Status Load(backend::Backend* backend);

  bool enabled() const;
  uint64_t revision() const;

  // Mutations, as etcd's authStore applies them (same checks, same errors; each change raises
  // the revision). Writes go through `txn`; memory changes only when they succeeded.
  Status Enable(backend::WriteTxn* txn);
  Status Disable(backend::WriteTxn* txn);
  // The request carries the hash in hashedPassword (or options.no_password); `password` is
  // ignored.
  Status UserAdd(const etcdserverpb::AuthUserAddRequest& r, backend::WriteTxn* txn);
  Status UserDelete(const std::string& name, backend::WriteTxn* txn);
  Status UserChangePassword(const std::string& name, const std::string& hashed,
                            backend::WriteTxn* txn);
  Status UserGrantRole(const std::string& user, const std::string& role, backend::WriteTxn* txn);
  Status UserRevokeRole(const std::string& user, const std::string& role, backend::WriteTxn* txn);
  Status RoleAdd(const std::string& name, backend::WriteTxn* txn);
  Status RoleDelete(const std::string& name, backend::WriteTxn* txn);
  Status RoleGrantPermission(const std::string& role, const authpb::Permission& perm,
                             backend::WriteTxn* txn);
  Status RoleRevokePermission(const std::string& role, const std::string& key,
                              const std::string& range_end, backend::WriteTxn* txn);

  // Reads.
  Result<etcdserverpb::AuthUserGetResponse> UserGet(const std::string& name) const;
  etcdserverpb::AuthUserListResponse UserList() const;
  Result<etcdserverpb::AuthRoleGetResponse> RoleGet(const std::string& name) const;
  etcdserverpb::AuthRoleListResponse RoleList() const;
  bool UserExists(const std::string& name) const;
  bool HasRole(const std::string& user, const std::string& role) const;

  // etcd's CheckPassword: the auth revision the password was checked at. kFailedPrecondition
  // (not enabled) or the "authentication failed" error; bcrypt runs outside the lock.
  Result<uint64_t> CheckPassword(const std::string& name, const std::string& password) const;

  // etcd's permission checks. With auth disabled everything is permitted. A request without a
  // user fails "user name is empty"; one checked at an older revision "revision of auth store
  // is old"; root role holders may do anything.
  Status CheckRange(const AuthInfo& who, std::string_view key, std::string_view range_end) const;
  Status CheckPut(const AuthInfo& who, std::string_view key) const;
  Status CheckDeleteRange(const AuthInfo& who, std::string_view key,
                          std::string_view range_end) const;
  // Root role required: "user name is empty", "user name not found", "permission denied".
  Status CheckAdmin(const AuthInfo& who) const;

 private:
  enum class Access { kRead, kWrite };
  Status CheckAccess(const AuthInfo& who, std::string_view key, std::string_view range_end,
                     Access access) const;
  // Writes the user or role record; nullopt deletes it.
  static Status PutUser(const authpb::User& user, backend::WriteTxn* txn);
  static Status PutRole(const authpb::Role& role, backend::WriteTxn* txn);
  // Raises and persists the revision (etcd's commitRevision). Caller holds mu_ exclusively.
  Status CommitRevision(backend::WriteTxn* txn);
  // Rebuilds every user's merged permissions. Caller holds mu_ exclusively.
  void RefreshPermissions();
  static bool HasRootRole(const authpb::User& user);

  mutable std::shared_mutex mu_;
  bool enabled_ = false;                         // guarded by mu_
  uint64_t revision_ = 1;                        // guarded by mu_; etcd starts at 1
  std::map<std::string, authpb::User> users_;    // guarded by mu_
  std::map<std::string, authpb::Role> roles_;    // guarded by mu_
  std::map<std::string, KeyPermissions> perms_;  // per user; guarded by mu_
};

}  // namespace dolmen::auth
