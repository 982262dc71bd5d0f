// Simple tokens on a manual clock: format, TTL extended by use, expiry, invalidation.
#include "auth/simple_tokens.h"

#include <gtest/gtest.h>

namespace dolmen::auth {
namespace {

TEST(SimpleTokensTest, PrefixIsSixteenLetters) {
  auto a = SimpleTokens::NewPrefix();
  auto b = SimpleTokens::NewPrefix();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 16u);
  for (char c : *a) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) << *a;
  EXPECT_NE(*a, *b);
}

TEST(SimpleTokensTest, UseExtendsAndIdleExpires) {
  ManualClock clock;
  SimpleTokens tokens(&clock, std::chrono::seconds(10));
  std::string t = tokens.Assign("abcdefghijklmnop", 42, "alice");
  EXPECT_EQ(t, "abcdefghijklmnop.42");
  EXPECT_EQ(SimpleTokenIndex(t), 42u);
  clock.Advance(std::chrono::seconds(9));
  EXPECT_EQ(tokens.UserOf(t), "alice");  // extended to 9 + 10
  clock.Advance(std::chrono::seconds(9));
  EXPECT_EQ(tokens.UserOf(t), "alice");
  clock.Advance(std::chrono::seconds(10));
  EXPECT_EQ(tokens.UserOf(t), std::nullopt);
  EXPECT_EQ(tokens.size(), 0u);
}

TEST(SimpleTokensTest, IssuingSweepsExpiredTokens) {
  ManualClock clock;
  SimpleTokens tokens(&clock, std::chrono::seconds(5));
  for (uint64_t i = 0; i < 10; ++i) tokens.Assign("p", i, "u");
  EXPECT_EQ(tokens.size(), 10u);
  clock.Advance(std::chrono::seconds(6));
  tokens.Assign("p", 100, "u");
  EXPECT_EQ(tokens.size(), 1u);
}

TEST(SimpleTokensTest, InvalidateUserAndAll) {
  ManualClock clock;
  SimpleTokens tokens(&clock, std::chrono::seconds(300));
  std::string a = tokens.Assign("a", 1, "alice");
  std::string b = tokens.Assign("b", 2, "bob");
  tokens.InvalidateUser("alice");
  EXPECT_EQ(tokens.UserOf(a), std::nullopt);
  EXPECT_EQ(tokens.UserOf(b), "bob");
  tokens.InvalidateAll();
  EXPECT_EQ(tokens.UserOf(b), std::nullopt);
}

TEST(SimpleTokensTest, IndexOfMalformedTokens) {
  EXPECT_EQ(SimpleTokenIndex("abc"), std::nullopt);
  EXPECT_EQ(SimpleTokenIndex("abc."), std::nullopt);
  EXPECT_EQ(SimpleTokenIndex("abc.x1"), std::nullopt);
  EXPECT_EQ(SimpleTokenIndex("a.b.1"), std::nullopt);
  EXPECT_EQ(SimpleTokenIndex("abc.-1"), std::nullopt);
  EXPECT_EQ(SimpleTokenIndex("abc.99999999999999999999999"), std::nullopt);
  EXPECT_EQ(SimpleTokenIndex("abc.7"), 7u);
}

}  // namespace
}  // namespace dolmen::auth
