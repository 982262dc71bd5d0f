#include "aws/credentials.h"

#include <gtest/gtest.h>

#include "aws/test_support.h"

namespace dolmen::aws {
namespace {

TEST(Credentials, FromEnvironment) {
  auto c = CredentialsFromEnv(EnvOf({{"AWS_ACCESS_KEY_ID", "AKID"},
                                     {"AWS_SECRET_ACCESS_KEY", "secret"},
                                     {"AWS_SESSION_TOKEN", "tok"}}));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->access_key_id, "AKID");
  EXPECT_EQ((*c)->secret_access_key, "secret");
  EXPECT_EQ((*c)->session_token, "tok");
  EXPECT_FALSE((*c)->expiration.has_value());
}

TEST(Credentials, NoneInEnvironment) {
  auto c = CredentialsFromEnv(EnvOf({}));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST(Credentials, HalfSetEnvironmentIsAnError) {
  auto c = CredentialsFromEnv(EnvOf({{"AWS_ACCESS_KEY_ID", "AKID"}}));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST(Credentials, RoleDocument) {
  auto c = ParseRoleCredentials(
      R"({"Code":"Success","LastUpdated":"2026-12-06T20:00:00Z","Type":"AWS-HMAC",)"
      R"("AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2026-12-06T22:00:00Z"})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIA1");
  EXPECT_EQ(c->session_token, "t");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*c->expiration), 1796594400);
}

TEST(Credentials, BadRoleDocuments) {
  EXPECT_FALSE(ParseRoleCredentials("not json").ok());
  EXPECT_FALSE(ParseRoleCredentials(R"({"Code":"Success"})").ok());
  EXPECT_FALSE(ParseRoleCredentials(R"({"Code":"AssumeRoleUnauthorizedAccess"})").ok());
  EXPECT_FALSE(
      ParseRoleCredentials(R"({"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"tomorrow"})")
          .ok());
}

TEST(Credentials, UtcTimes) {
  auto t = ParseUtcTime("2026-12-06T22:00:00.123Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1796594400);
  EXPECT_FALSE(ParseUtcTime("2026-12-06T22:00:00+02:00").ok());
}

TEST(Credentials, CacheFetchesAgainNearExpiration) {
  auto now = std::chrono::system_clock::from_time_t(1796590000);
  int fetches = 0;
  CredentialsCache cache(
      [&]() -> Result<Credentials> {
        ++fetches;
        Credentials c{"id" + std::to_string(fetches), "s", "t", now + std::chrono::minutes(15)};
        return c;
      },
      [&] { return now; });
  ASSERT_TRUE(cache.Get().ok());
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(fetches, 1);
  now += std::chrono::minutes(9);  // 6 minutes left: still good
  EXPECT_EQ(cache.Get()->access_key_id, "id1");
  now += std::chrono::minutes(2);  // 4 minutes left: inside the 5-minute margin
  EXPECT_EQ(cache.Get()->access_key_id, "id2");
  EXPECT_EQ(fetches, 2);
}

TEST(Credentials, CacheKeepsNothingWhenFetchFails) {
  int fetches = 0;
  CredentialsCache cache(
      [&]() -> Result<Credentials> {
        ++fetches;
        return Unavailable("IMDS down");
      },
      [] { return std::chrono::system_clock::now(); });
  EXPECT_FALSE(cache.Get().ok());
  EXPECT_FALSE(cache.Get().ok());
  EXPECT_EQ(fetches, 2);
}

}  // namespace
}  // namespace dolmen::aws
