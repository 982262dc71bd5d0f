// The auth store against etcd's rules: enabling needs root with the root role, each change
// raises the revision, permission checks (no user, stale revision, root, per range), admin
// checks, and that a reload from the backend gives back the same store.
#include "auth/auth_store.h"

#include <gtest/gtest.h>

#include "auth/password.h"
#include "backend/memory_backend.h"

namespace dolmen::auth {
namespace {

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Load(backend_.get()).ok()); }

  // Runs one mutation in its own committed backend txn.
  template <typename F>
  Status Write(F f) {
    auto txn = backend_->BeginWrite();
    EXPECT_TRUE(txn.ok());
    Status s = f(txn->get());
    EXPECT_TRUE((*txn)->Commit().ok());
    return s;
  }
  Status AddUser(const std::string& name, const std::string& password) {
    etcdserverpb::AuthUserAddRequest r;
    r.set_name(name);
    r.set_hashedpassword(*HashPassword(password, kMinBcryptCost));
    return Write([&](backend::WriteTxn* t) { return store_.UserAdd(r, t); });
  }
  Status Grant(const std::string& role, authpb::Permission::Type type, const std::string& key,
               const std::string& end) {
    authpb::Permission p;
    p.set_permtype(type);
    p.set_key(key);
    p.set_range_end(end);
    return Write([&](backend::WriteTxn* t) { return store_.RoleGrantPermission(role, p, t); });
  }
  // root (root role) and alice (role "r": read/write over the prefix "a/").
  void SetUpUsers() {
    ASSERT_TRUE(AddUser("root", "rootpw").ok());
    ASSERT_TRUE(Write([&](auto* t) { return store_.UserGrantRole("root", "root", t); }).ok());
    ASSERT_TRUE(AddUser("alice", "alicepw").ok());
    ASSERT_TRUE(Write([&](auto* t) { return store_.RoleAdd("r", t); }).ok());
    ASSERT_TRUE(Grant("r", authpb::Permission::READWRITE, "a/", "a0").ok());
    ASSERT_TRUE(Write([&](auto* t) { return store_.UserGrantRole("alice", "r", t); }).ok());
  }

  std::unique_ptr<backend::Backend> backend_ = backend::NewMemoryBackend();
  AuthStore store_;
};

TEST_F(AuthStoreTest, EnableNeedsRootWithRootRole) {
  EXPECT_EQ(store_.revision(), 1u);
  Status s = Write([&](auto* t) { return store_.Enable(t); });
  EXPECT_EQ(s.message(), "root user does not exist");
  ASSERT_TRUE(AddUser("root", "pw").ok());
  s = Write([&](auto* t) { return store_.Enable(t); });
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "root user does not have root role");
  // The root role may be granted before it exists, as in etcd.
  ASSERT_TRUE(Write([&](auto* t) { return store_.UserGrantRole("root", "root", t); }).ok());
  EXPECT_EQ(store_.revision(), 3u);
  EXPECT_TRUE(Write([&](auto* t) { return store_.Enable(t); }).ok());
  EXPECT_TRUE(store_.enabled());
  EXPECT_EQ(store_.revision(), 3u);  // enabling changes no revision
  // With auth on, root can be neither deleted nor lose its role.
  EXPECT_EQ(Write([&](auto* t) { return store_.UserDelete("root", t); }).message(),
            "invalid auth management");
  EXPECT_EQ(Write([&](auto* t) { return store_.UserRevokeRole("root", "root", t); }).message(),
            "invalid auth management");
  EXPECT_TRUE(Write([&](auto* t) { return store_.Disable(t); }).ok());
  EXPECT_FALSE(store_.enabled());
  EXPECT_EQ(store_.revision(), 4u);
}

TEST_F(AuthStoreTest, UserAndRoleErrorsAreEtcds) {
  EXPECT_EQ(AddUser("", "x").message(), "user name is empty");
  ASSERT_TRUE(AddUser("bob", "x").ok());
  EXPECT_EQ(AddUser("bob", "y").message(), "user name already exists");
  EXPECT_EQ(Write([&](auto* t) { return store_.RoleAdd("", t); }).message(), "role name is empty");
  ASSERT_TRUE(Write([&](auto* t) { return store_.RoleAdd("r", t); }).ok());
  EXPECT_EQ(Write([&](auto* t) { return store_.RoleAdd("r", t); }).message(),
            "role name already exists");
  EXPECT_EQ(Write([&](auto* t) { return store_.UserGrantRole("nobody", "r", t); }).message(),
            "user name not found");
  EXPECT_EQ(Write([&](auto* t) { return store_.UserGrantRole("bob", "nope", t); }).message(),
            "role name not found");
  EXPECT_EQ(Write([&](auto* t) { return store_.UserRevokeRole("bob", "r", t); }).message(),
            "role is not granted to the user");
  EXPECT_EQ(Write([&](auto* t) { return store_.RoleRevokePermission("r", "k", "", t); }).message(),
            "permission is not granted to the role");
  EXPECT_EQ(store_.UserGet("nobody").status().message(), "user name not found");
  EXPECT_EQ(store_.RoleGet("nope").status().message(), "role name not found");
  EXPECT_EQ(AddUser(std::string(600, 'u'), "x").code(), Code::kInvalidArgument);
}

TEST_F(AuthStoreTest, GrantUpdatesSameRangeAndKeepsKeyOrder) {
  ASSERT_TRUE(Write([&](auto* t) { return store_.RoleAdd("r", t); }).ok());
  ASSERT_TRUE(Grant("r", authpb::Permission::READ, "b", "").ok());
  ASSERT_TRUE(Grant("r", authpb::Permission::READ, "a", "").ok());
  ASSERT_TRUE(Grant("r", authpb::Permission::WRITE, "b", "").ok());
  auto role = store_.RoleGet("r");
  ASSERT_TRUE(role.ok());
  ASSERT_EQ(role->perm_size(), 2);
  EXPECT_EQ(role->perm(0).key(), "a");
  EXPECT_EQ(role->perm(1).key(), "b");
  EXPECT_EQ(role->perm(1).permtype(), authpb::Permission::WRITE);
}

TEST_F(AuthStoreTest, PermissionChecks) {
  SetUpUsers();
  // Disabled: anything goes, even without a user.
  EXPECT_TRUE(store_.CheckPut(AuthInfo{}, "x").ok());
  ASSERT_TRUE(Write([&](auto* t) { return store_.Enable(t); }).ok());
  const uint64_t rev = store_.revision();
  AuthInfo alice{"alice", rev}, root{"root", rev};
  EXPECT_EQ(store_.CheckPut(AuthInfo{}, "a/1").message(), "user name is empty");
  EXPECT_TRUE(store_.CheckPut(alice, "a/1").ok());
  EXPECT_TRUE(store_.CheckRange(alice, "a/", "a0").ok());
  EXPECT_EQ(store_.CheckPut(alice, "b").code(), Code::kPermissionDenied);
  EXPECT_EQ(store_.CheckRange(alice, "a/", std::string("\0", 1)).code(), Code::kPermissionDenied);
  EXPECT_EQ(store_.CheckDeleteRange(alice, "a", "b").code(), Code::kPermissionDenied);
  EXPECT_TRUE(store_.CheckDeleteRange(root, "", std::string("\0", 1)).ok());
  EXPECT_EQ(store_.CheckPut(AuthInfo{"ghost", rev}, "a/1").code(), Code::kPermissionDenied);
  // Admin.
  EXPECT_TRUE(store_.CheckAdmin(root).ok());
  EXPECT_EQ(store_.CheckAdmin(alice).message(), "permission denied");
  EXPECT_EQ(store_.CheckAdmin(AuthInfo{}).message(), "user name is empty");
  EXPECT_EQ(store_.CheckAdmin(AuthInfo{"ghost", rev}).message(), "user name not found");
  // A change of the store makes requests checked before it stale.
  ASSERT_TRUE(Write([&](auto* t) { return store_.RoleAdd("other", t); }).ok());
  EXPECT_EQ(store_.CheckPut(alice, "a/1").code(), Code::kAuthOldRevision);
  EXPECT_TRUE(store_.CheckPut(AuthInfo{"alice", store_.revision()}, "a/1").ok());
  // Deleting the role takes the permission away.
  ASSERT_TRUE(Write([&](auto* t) { return store_.RoleDelete("r", t); }).ok());
  EXPECT_EQ(store_.CheckPut(AuthInfo{"alice", store_.revision()}, "a/1").code(),
            Code::kPermissionDenied);
  EXPECT_TRUE(store_.UserGet("alice")->roles().empty());
}

TEST_F(AuthStoreTest, PasswordsAreCheckedOnlyWhileEnabled) {
  SetUpUsers();
  EXPECT_EQ(store_.CheckPassword("alice", "alicepw").status().message(),
            "authentication is not enabled");
  ASSERT_TRUE(Write([&](auto* t) { return store_.Enable(t); }).ok());
  EXPECT_EQ(store_.CheckPassword("alice", "alicepw").value(), store_.revision());
  EXPECT_EQ(store_.CheckPassword("alice", "wrong").status().message(),
            "authentication failed, invalid user ID or password");
  EXPECT_EQ(store_.CheckPassword("ghost", "x").status().message(),
            "authentication failed, invalid user ID or password");
  ASSERT_TRUE(Write([&](auto* t) {
                return store_.UserChangePassword("alice", *HashPassword("new", 4), t);
              }).ok());
  EXPECT_FALSE(store_.CheckPassword("alice", "alicepw").ok());
  EXPECT_TRUE(store_.CheckPassword("alice", "new").ok());
}

TEST_F(AuthStoreTest, ReloadGivesTheSameStore) {
  SetUpUsers();
  ASSERT_TRUE(Write([&](auto* t) { return store_.Enable(t); }).ok());
  AuthStore reloaded;
  ASSERT_TRUE(reloaded.Load(backend_.get()).ok());
  EXPECT_TRUE(reloaded.enabled());
  EXPECT_EQ(reloaded.revision(), store_.revision());
  EXPECT_EQ(reloaded.UserList().SerializeAsString(), store_.UserList().SerializeAsString());
  EXPECT_EQ(reloaded.RoleGet("r")->SerializeAsString(), store_.RoleGet("r")->SerializeAsString());
  EXPECT_TRUE(reloaded.CheckPut(AuthInfo{"alice", reloaded.revision()}, "a/x").ok());
  EXPECT_TRUE(reloaded.CheckPassword("root", "rootpw").ok());
}

TEST_F(AuthStoreTest, CorruptRecordIsReported) {
  ASSERT_TRUE(Write([&](backend::WriteTxn* t) {
                return t->Put(AuthStore::kUsersBucket, "bad", "\xff\xff\xff");
              }).ok());
  AuthStore reloaded;
  Status s = reloaded.Load(backend_.get());
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("bad"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dolmen::auth
