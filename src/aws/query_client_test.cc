#include "aws/query_client.h"

#include <gtest/gtest.h>

#include "aws/test_support.h"

namespace dolmen::aws {
namespace {

constexpr const char* kGroups =
    "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
    "<member><AutoScalingGroupName>g</AutoScalingGroupName><DesiredCapacity>1</DesiredCapacity>"
    "<Instances><member><InstanceId>i-1</InstanceId><LifecycleState>InService</LifecycleState>"
    "</member></Instances></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
    "</DescribeAutoScalingGroupsResponse>";

struct Fixture {
  FakeTransport transport;
  std::vector<std::chrono::milliseconds> sleeps;
  std::vector<std::string> logs;
  QueryClient client{
      QueryClient::Options{
          "http://asg.test", "http://ec2.test", "eu-west-1",
          RetryPolicy{4, std::chrono::milliseconds(100), std::chrono::milliseconds(250)},
          [] {
            return Result<Credentials>(Credentials{"AKID", "secret", "", {}});
          },
          [this](std::chrono::milliseconds d) { sleeps.push_back(d); },
          [this](const std::string& line) { logs.push_back(line); }},
      &transport};
};

TEST(QueryClient, SignedFormPost) {
  Fixture f;
  f.transport.Answer(200, kGroups);
  auto g = f.client.DescribeAutoScalingGroup("g");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->desired_capacity, 1);
  ASSERT_EQ(f.transport.requests.size(), 1u);
  const HttpRequest& r = f.transport.requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "http://asg.test/");
  EXPECT_EQ(r.body,
            "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=g");
  EXPECT_NE(HeaderValue(r, "Authorization").find("/eu-west-1/autoscaling/aws4_request"),
            std::string::npos);
}

TEST(QueryClient, ThrottlingAnd5xxAreRetriedWithBackoff) {
  Fixture f;
  f.transport.Answer(400,
                     "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>"
                     "</Error></ErrorResponse>");
  f.transport.Answer(503, "");
  f.transport.NoAnswer();
  f.transport.Answer(200, kGroups);
  ASSERT_TRUE(f.client.DescribeAutoScalingGroup("g").ok());
  EXPECT_EQ(f.sleeps, (std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(100),
                                                              std::chrono::milliseconds(200),
                                                              std::chrono::milliseconds(250)}));
  ASSERT_EQ(f.logs.size(), 3u);
  EXPECT_NE(f.logs[0].find("Throttling: Rate exceeded"), std::string::npos) << f.logs[0];
}

TEST(QueryClient, GivesUpAfterMaxAttempts) {
  Fixture f;
  for (int i = 0; i < 4; ++i) f.transport.Answer(500, "");
  auto g = f.client.DescribeAutoScalingGroup("g");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kUnavailable);
  EXPECT_NE(g.status().message().find("after 4 attempts"), std::string::npos);
  EXPECT_EQ(f.transport.requests.size(), 4u);
}

TEST(QueryClient, BadSignatureIsNotRetried) {
  Fixture f;
  f.transport.Answer(403,
                     "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request "
                     "signature we calculated does not match</Message></Error></ErrorResponse>");
  auto g = f.client.DescribeAutoScalingGroup("g");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(g.status().message().find("HTTP 403 SignatureDoesNotMatch"), std::string::npos)
      << g.status().message();
  EXPECT_TRUE(f.sleeps.empty());
}

TEST(QueryClient, UnknownGroupIsNotFound) {
  Fixture f;
  f.transport.Answer(200,
                     "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>"
                     "<AutoScalingGroups/></DescribeAutoScalingGroupsResult>"
                     "</DescribeAutoScalingGroupsResponse>");
  EXPECT_EQ(f.client.DescribeAutoScalingGroup("nope").status().code(), Code::kNotFound);
}

TEST(QueryClient, DescribeInstancesFollowsPages) {
  Fixture f;
  f.transport.Answer(200,
                     "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
                     "<instanceId>i-1</instanceId><privateIpAddress>10.0.0.1</privateIpAddress>"
                     "</item></instancesSet></item></reservationSet><nextToken>p2</nextToken>"
                     "</DescribeInstancesResponse>");
  f.transport.Answer(200,
                     "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
                     "<instanceId>i-2</instanceId><privateIpAddress>10.0.0.2</privateIpAddress>"
                     "</item></instancesSet></item></reservationSet></DescribeInstancesResponse>");
  auto v = f.client.DescribeInstances({"i-1", "i-2"});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ(f.transport.requests[0].url, "http://ec2.test/");
  EXPECT_EQ(f.transport.requests[0].body,
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2");
  EXPECT_NE(f.transport.requests[1].body.find("NextToken=p2"), std::string::npos);
}

TEST(QueryClient, FormEncoding) {
  EXPECT_EQ(FormEncode({{"A", "x y"}, {"B.member.1", "a/b"}}), "A=x%20y&B.member.1=a%2Fb");
}

}  // namespace
}  // namespace dolmen::aws
