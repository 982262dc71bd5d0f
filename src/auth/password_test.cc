// bcrypt through libxcrypt: etcd's "$2b$" form, verification, and refusals. Cost 4 (the
// minimum) keeps the test fast.
#include "auth/password.h"

#include <gtest/gtest.h>

namespace dolmen::auth {
namespace {

TEST(PasswordTest, HashVerifiesOnlyItsPassword) {
  auto hash = HashPassword("s3cret", kMinBcryptCost);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(hash->rfind("$2b$04$", 0), 0u) << *hash;
  EXPECT_EQ(hash->size(), 60u);
  EXPECT_TRUE(PasswordMatches(*hash, "s3cret"));
  EXPECT_FALSE(PasswordMatches(*hash, "s3creT"));
  EXPECT_FALSE(PasswordMatches(*hash, ""));
  // Two hashes of one password differ by their salt.
  auto again = HashPassword("s3cret", kMinBcryptCost);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*hash, *again);
}

TEST(PasswordTest, ReadsGoBcryptHashes) {
  // golang.org/x/crypto/bcrypt's own test vector (what etcd 3.4 stores): "allmine", cost 10.
  const char* go_hash = "$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga";
  EXPECT_TRUE(PasswordMatches(go_hash, "allmine"));
  EXPECT_FALSE(PasswordMatches(go_hash, "allmin"));
}

TEST(PasswordTest, BadInputIsRefusedNotCrashed) {
  EXPECT_EQ(HashPassword("x", 3).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HashPassword("x", 32).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HashPassword(std::string("a\0b", 3), 4).status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(PasswordMatches("", ""));
  EXPECT_FALSE(PasswordMatches("not a hash", "x"));
  EXPECT_FALSE(PasswordMatches("$2b$04$short", "x"));
}

}  // namespace
}  // namespace dolmen::auth
