#include "aws/imds.h"

#include <gtest/gtest.h>

#include "aws/test_support.h"

namespace dolmen::aws {
namespace {

TEST(Imds, TokenThenIdentity) {
  FakeTransport t;
  t.Answer(200, "TOKEN");
  t.Answer(200, "i-0abc");
  t.Answer(200, "10.0.1.7\n");
  t.Answer(200, "eu-west-1");
  ImdsClient imds("http://127.0.0.5:1234/", &t);
  auto id = imds.Identity();
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->instance_id, "i-0abc");
  EXPECT_EQ(id->local_ipv4, "10.0.1.7");
  EXPECT_EQ(id->region, "eu-west-1");
  ASSERT_EQ(t.requests.size(), 4u);
  EXPECT_EQ(t.requests[0].method, "PUT");
  EXPECT_EQ(t.requests[0].url, "http://127.0.0.5:1234/latest/api/token");
  EXPECT_EQ(HeaderValue(t.requests[0], "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_EQ(t.requests[1].url, "http://127.0.0.5:1234/latest/meta-data/instance-id");
  EXPECT_EQ(HeaderValue(t.requests[1], "X-aws-ec2-metadata-token"), "TOKEN");
  EXPECT_EQ(t.requests[3].url, "http://127.0.0.5:1234/latest/meta-data/placement/region");
}

TEST(Imds, RefusedTokenIsRenewedOnce) {
  FakeTransport t;
  t.Answer(200, "OLD");
  t.Answer(401, "");
  t.Answer(200, "NEW");
  t.Answer(200, "i-1");
  ImdsClient imds("http://x", &t);
  auto v = imds.Get("instance-id");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "i-1");
  EXPECT_EQ(HeaderValue(t.requests[3], "X-aws-ec2-metadata-token"), "NEW");
}

TEST(Imds, UnreachableIsUnavailable) {
  FakeTransport t;
  t.NoAnswer();
  ImdsClient imds("http://x", &t);
  EXPECT_EQ(imds.Get("instance-id").status().code(), Code::kUnavailable);
}

TEST(Imds, RoleCredentials) {
  FakeTransport t;
  t.Answer(200, "TOKEN");
  t.Answer(200, "dolmen-role\n");
  t.Answer(200, R"({"Code":"Success","AccessKeyId":"ASIA","SecretAccessKey":"s","Token":"t",)"
                R"("Expiration":"2026-12-06T22:00:00Z"})");
  ImdsClient imds("http://x", &t);
  auto c = imds.RoleCredentials();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIA");
  EXPECT_EQ(t.requests[2].url, "http://x/latest/meta-data/iam/security-credentials/dolmen-role");
}

TEST(Imds, NoRoleSaysSo) {
  FakeTransport t;
  t.Answer(200, "TOKEN");
  t.Answer(404, "");
  ImdsClient imds("http://x", &t);
  auto c = imds.RoleCredentials();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no IAM role"), std::string::npos);
}

}  // namespace
}  // namespace dolmen::aws
