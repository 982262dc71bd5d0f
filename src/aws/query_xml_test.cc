// The answers below have the shapes of AWS's documented examples (AutoScaling API reference,
// EC2 API reference) with our own values.
#include "aws/query_xml.h"

#include <gtest/gtest.h>

namespace dolmen::aws {
namespace {

TEST(QueryXml, AutoScalingInstances) {
  auto v = ParseAutoScalingInstances(R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingInstancesResult>
    <AutoScalingInstances>
      <member>
        <HealthStatus>HEALTHY</HealthStatus>
        <AutoScalingGroupName>etcd-asg</AutoScalingGroupName>
        <AvailabilityZone>eu-west-1a</AvailabilityZone>
        <InstanceId>i-0aaa</InstanceId>
        <LifecycleState>InService</LifecycleState>
        <ProtectedFromScaleIn>false</ProtectedFromScaleIn>
      </member>
    </AutoScalingInstances>
  </DescribeAutoScalingInstancesResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</DescribeAutoScalingInstancesResponse>)");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 1u);
  EXPECT_EQ((*v)[0].group_name, "etcd-asg");
  EXPECT_EQ((*v)[0].instance_id, "i-0aaa");
  EXPECT_EQ((*v)[0].lifecycle_state, "InService");
}

TEST(QueryXml, AutoScalingGroups) {
  Page page;
  auto v = ParseAutoScalingGroups(
      R"(<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>etcd-asg</AutoScalingGroupName>
        <MinSize>3</MinSize><MaxSize>5</MaxSize>
        <DesiredCapacity>3</DesiredCapacity>
        <Instances>
          <member><InstanceId>i-1</InstanceId><LifecycleState>InService</LifecycleState><HealthStatus>HEALTHY</HealthStatus></member>
          <member><InstanceId>i-2</InstanceId><LifecycleState>Pending</LifecycleState><HealthStatus>HEALTHY</HealthStatus></member>
        </Instances>
      </member>
    </AutoScalingGroups>
    <NextToken>tok</NextToken>
  </DescribeAutoScalingGroupsResult>
</DescribeAutoScalingGroupsResponse>)",
      &page);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 1u);
  EXPECT_EQ((*v)[0].name, "etcd-asg");
  EXPECT_EQ((*v)[0].desired_capacity, 3);
  ASSERT_EQ((*v)[0].instances.size(), 2u);
  EXPECT_EQ((*v)[0].instances[1].instance_id, "i-2");
  EXPECT_EQ((*v)[0].instances[1].lifecycle_state, "Pending");
  EXPECT_EQ(page.next_token, "tok");
}

TEST(QueryXml, BadDesiredCapacity) {
  Page page;
  auto v = ParseAutoScalingGroups(
      "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>"
      "<member><AutoScalingGroupName>g</AutoScalingGroupName><DesiredCapacity>three"
      "</DesiredCapacity></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
      "</DescribeAutoScalingGroupsResponse>",
      &page);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("DesiredCapacity"), std::string::npos);
}

TEST(QueryXml, Instances) {
  Page page;
  auto v =
      ParseInstances(R"(<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <reservationSet>
    <item><reservationId>r-1</reservationId><instancesSet>
      <item><instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState>
        <privateIpAddress>10.0.0.1</privateIpAddress></item>
      <item><instanceId>i-2</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item>
    </instancesSet></item>
    <item><reservationId>r-2</reservationId><instancesSet>
      <item><instanceId>i-3</instanceId><privateIpAddress>10.0.0.3</privateIpAddress></item>
    </instancesSet></item>
  </reservationSet>
</DescribeInstancesResponse>)",
                     &page);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[0].private_ip, "10.0.0.1");
  EXPECT_EQ((*v)[0].state, "running");
  EXPECT_EQ((*v)[1].private_ip, "");
  EXPECT_EQ((*v)[2].instance_id, "i-3");
  EXPECT_EQ(page.next_token, "");
}

TEST(QueryXml, Errors) {
  const QueryError asg = ParseQueryError(
      R"(<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type>)"
      R"(<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>)");
  EXPECT_EQ(asg.code, "Throttling");
  EXPECT_EQ(asg.message, "Rate exceeded");
  const QueryError ec2 = ParseQueryError(
      "<Response><Errors><Error><Code>AuthFailure</Code><Message>no</Message></Error></Errors>"
      "<RequestID>x</RequestID></Response>");
  EXPECT_EQ(ec2.code, "AuthFailure");
  EXPECT_EQ(ParseQueryError("<html>bad gateway</html>").code, "");
  EXPECT_EQ(ParseQueryError("").code, "");
}

TEST(QueryXml, NotXmlOrWrongDocument) {
  Page page;
  EXPECT_EQ(ParseAutoScalingInstances("{}").status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(ParseInstances("<DescribeAutoScalingGroupsResponse/>", &page).ok());
  EXPECT_FALSE(ParseAutoScalingInstances("<DescribeAutoScalingInstancesResponse/>").ok());
  EXPECT_FALSE(ParseAutoScalingGroups(std::string(1000, '<'), &page).ok());
}

}  // namespace
}  // namespace dolmen::aws
