// The merged key ranges against etcd's conventions: single keys, [key, range_end), "from key"
// ("\0"), and ranges covered only by several permissions together.
#include "auth/key_permissions.h"

#include <gtest/gtest.h>

#include <string>

namespace dolmen::auth {
namespace {

const std::string kFromKey("\0", 1);

authpb::Permission Perm(authpb::Permission::Type type, std::string key, std::string end = "") {
  authpb::Permission p;
  p.set_permtype(type);
  p.set_key(std::move(key));
  p.set_range_end(std::move(end));
  return p;
}

TEST(KeyPermissionsTest, SingleKeyGrantsOnlyThatKey) {
  KeyPermissions p;
  p.Add(Perm(authpb::Permission::READ, "foo"));
  p.Finish();
  EXPECT_TRUE(p.CanRead("foo", ""));
  EXPECT_FALSE(p.CanRead("foo0", ""));
  EXPECT_FALSE(p.CanRead("fo", ""));
  EXPECT_FALSE(p.CanWrite("foo", ""));
  // A range starting at the key is more than the key.
  EXPECT_FALSE(p.CanRead("foo", "fop"));
  EXPECT_TRUE(p.CanRead("foo", std::string("foo\0", 4)));
}

TEST(KeyPermissionsTest, PrefixRangeAndFromKey) {
  KeyPermissions p;
  p.Add(Perm(authpb::Permission::READWRITE, "dir/", "dir0"));  // etcdctl --prefix dir/
  p.Add(Perm(authpb::Permission::WRITE, "z", kFromKey));       // etcdctl --from-key z
  p.Finish();
  EXPECT_TRUE(p.CanRead("dir/a", ""));
  EXPECT_TRUE(p.CanWrite("dir/a", ""));
  EXPECT_TRUE(p.CanRead("dir/", "dir0"));
  EXPECT_FALSE(p.CanRead("dir/", "dir1"));
  EXPECT_FALSE(p.CanRead("dir", ""));
  EXPECT_TRUE(p.CanWrite("zzz", ""));
  EXPECT_TRUE(p.CanWrite("z", kFromKey));
  EXPECT_FALSE(p.CanWrite("y", kFromKey));
  EXPECT_FALSE(p.CanRead("zzz", ""));
}

TEST(KeyPermissionsTest, AdjacentRangesCoverTogetherButAGapDoesNot) {
  KeyPermissions p;
  p.Add(Perm(authpb::Permission::READ, "a", "c"));
  p.Add(Perm(authpb::Permission::READWRITE, "c", "e"));
  p.Add(Perm(authpb::Permission::READ, "f", "g"));
  p.Finish();
  EXPECT_TRUE(p.CanRead("a", "e"));
  EXPECT_TRUE(p.CanRead("b", "d"));
  EXPECT_FALSE(p.CanRead("a", "f"));  // [e, f) is not granted
  EXPECT_FALSE(p.CanRead("d", "g"));
  EXPECT_TRUE(p.CanWrite("c", "e"));
  EXPECT_FALSE(p.CanWrite("b", "d"));
}

TEST(KeyPermissionsTest, NothingGrantedGrantsNothing) {
  KeyPermissions p;
  p.Finish();
  EXPECT_FALSE(p.CanRead("a", ""));
  EXPECT_FALSE(p.CanWrite("", kFromKey));
}

}  // namespace
}  // namespace dolmen::auth
