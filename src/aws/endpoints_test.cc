#include "aws/endpoints.h"

#include <gtest/gtest.h>

#include "aws/test_support.h"

namespace dolmen::aws {
namespace {

TEST(Endpoints, AwsDefaults) {
  const Endpoints e = ResolveEndpoints(EnvOf({}), "eu-west-1");
  EXPECT_EQ(e.imds, "http://169.254.169.254");
  EXPECT_EQ(e.autoscaling, "https://autoscaling.eu-west-1.amazonaws.com");
  EXPECT_EQ(e.ec2, "https://ec2.eu-west-1.amazonaws.com");
  EXPECT_EQ(e.region, "eu-west-1");
}

TEST(Endpoints, GeneralThenServiceSpecificOverrides) {
  const Endpoints e =
      ResolveEndpoints(EnvOf({{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"},
                              {"AWS_ENDPOINT_URL_EC2", "http://127.0.0.2:9001"},
                              {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.3:9002/"}}),
                       "us-east-1");
  EXPECT_EQ(e.autoscaling, "http://127.0.0.1:9000");
  EXPECT_EQ(e.ec2, "http://127.0.0.2:9001");
  EXPECT_EQ(e.imds, "http://127.0.0.3:9002");
  const Endpoints only_asg =
      ResolveEndpoints(EnvOf({{"AWS_ENDPOINT_URL_AUTO_SCALING", "http://127.0.0.4:1"}}), "r");
  EXPECT_EQ(only_asg.autoscaling, "http://127.0.0.4:1");
  EXPECT_EQ(only_asg.ec2, "https://ec2.r.amazonaws.com");
}

TEST(Endpoints, RegionVariables) {
  EXPECT_FALSE(RegionFromEnv(EnvOf({})).has_value());
  EXPECT_EQ(RegionFromEnv(EnvOf({{"AWS_DEFAULT_REGION", "b"}})), "b");
  EXPECT_EQ(RegionFromEnv(EnvOf({{"AWS_REGION", "a"}, {"AWS_DEFAULT_REGION", "b"}})), "a");
}

}  // namespace
}  // namespace dolmen::aws
