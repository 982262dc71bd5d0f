#include "discovery/asg_cluster.h"

#include <gtest/gtest.h>

#include <map>

namespace dolmen::discovery {
namespace {

// A group held in memory: states and IPs per instance id, and a desired capacity.
class FakeAsgApi final : public AsgApi {
 public:
  struct Instance {
    std::string state;
    std::string ip;
  };
  std::string group = "etcd-asg";
  int desired = 3;
  std::map<std::string, Instance> instances;

  Result<std::vector<aws::AsgInstance>> DescribeAutoScalingInstances(
      const std::vector<std::string>& ids) override {
    std::vector<aws::AsgInstance> out;
    for (const auto& id : ids) {
      if (instances.count(id)) out.push_back({id, group, instances[id].state, "HEALTHY"});
    }
    return out;
  }
  Result<aws::AutoScalingGroup> DescribeAutoScalingGroup(const std::string& name) override {
    if (name != group) return NotFound("auto scaling group " + name + " not found");
    aws::AutoScalingGroup g{group, desired, {}};
    for (const auto& [id, i] : instances) g.instances.push_back({id, group, i.state, "HEALTHY"});
    return g;
  }
  Result<std::vector<aws::Ec2Instance>> DescribeInstances(
      const std::vector<std::string>& ids) override {
    std::vector<aws::Ec2Instance> out;
    for (const auto& id : ids) out.push_back({id, instances[id].ip, "running"});
    return out;
  }
};

FakeAsgApi ThreeInService() {
  FakeAsgApi api;
  api.instances = {{"i-0c", {"InService", "10.0.0.3"}},
                   {"i-0a", {"InService", "10.0.0.1"}},
                   {"i-0b", {"InService", "10.0.0.2"}}};
  return api;
}

TEST(AsgCluster, AutoFindsTheGroupOfThisInstance) {
  FakeAsgApi api = ThreeInService();
  auto name = ResolveGroupName(AsgQuery{"auto", "i-0b"}, api);
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, "etcd-asg");
  EXPECT_EQ(*ResolveGroupName(AsgQuery{"other", "i-0b"}, api), "other");
  auto none = ResolveGroupName(AsgQuery{"auto", "i-0z"}, api);
  EXPECT_EQ(none.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("belongs to no auto scaling group"), std::string::npos);
}

TEST(AsgCluster, CompleteGroupGivesSortedEntries) {
  FakeAsgApi api = ThreeInService();
  auto cluster = DiscoverAsgCluster("etcd-asg", AsgQuery{"auto", "i-0b"}, api);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  EXPECT_EQ(InitialClusterEntries(*cluster, "http", "2380"),
            (std::vector<std::string>{"i-0a=http://10.0.0.1:2380", "i-0b=http://10.0.0.2:2380",
                                      "i-0c=http://10.0.0.3:2380"}));
}

TEST(AsgCluster, PendingInstanceMeansWait) {
  FakeAsgApi api = ThreeInService();
  api.instances["i-0c"].state = "Pending";
  auto cluster = DiscoverAsgCluster("etcd-asg", AsgQuery{"auto", "i-0a"}, api);
  ASSERT_EQ(cluster.status().code(), Code::kUnavailable);
  EXPECT_EQ(cluster.status().message(),
            "auto scaling group etcd-asg: 2 of 3 instances InService; waiting for i-0c Pending");
}

TEST(AsgCluster, FewerInstancesThanDesiredMeansWait) {
  FakeAsgApi api = ThreeInService();
  api.desired = 5;
  EXPECT_EQ(DiscoverAsgCluster("etcd-asg", AsgQuery{"auto", "i-0a"}, api).status().code(),
            Code::kUnavailable);
}

TEST(AsgCluster, ThisInstanceMissingMeansWait) {
  FakeAsgApi api = ThreeInService();
  auto cluster = DiscoverAsgCluster("etcd-asg", AsgQuery{"auto", "i-0q"}, api);
  ASSERT_EQ(cluster.status().code(), Code::kUnavailable);
  EXPECT_NE(cluster.status().message().find("i-0q is not among"), std::string::npos);
}

TEST(AsgCluster, MissingPrivateIpMeansWait) {
  FakeAsgApi api = ThreeInService();
  api.instances["i-0b"].ip = "";
  EXPECT_EQ(DiscoverAsgCluster("etcd-asg", AsgQuery{"auto", "i-0a"}, api).status().code(),
            Code::kUnavailable);
}

TEST(AsgCluster, UnknownGroupFailsAtOnce) {
  FakeAsgApi api = ThreeInService();
  EXPECT_EQ(DiscoverAsgCluster("nope", AsgQuery{"nope", "i-0a"}, api).status().code(),
            Code::kFailedPrecondition);
}

TEST(AsgCluster, Ipv6UrlsHaveBrackets) {
  EXPECT_EQ(UrlOf("https", "fd00::1", "2380"), "https://[fd00::1]:2380");
}

}  // namespace
}  // namespace dolmen::discovery
