// --discovery-aws-asg's flags, and the pieces of the learner-first join that need no cluster.
#include <gtest/gtest.h>

#include "embed/asg_join.h"
#include "embed/config.h"
#include "embed/config_test_support.h"
#include "embed/removed_member.h"

namespace dolmen::embed {
namespace {

using testing::ParseAndValidate;

TEST(AsgConfigTest, GroupReplacesTheInitialClusterAndNotesExplicitFlags) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({"--discovery-aws-asg", "auto", "--name", "n1",
                                "--experimental-discovery-aws-asg-wait", "30s"},
                               &c)
                  .ok());
  EXPECT_EQ(c.discovery_aws_asg, "auto");
  EXPECT_EQ(c.discovery_aws_asg_wait_ms, 30000);
  EXPECT_TRUE(c.initial_cluster.empty());
  EXPECT_TRUE(c.initial_members.empty());
  EXPECT_TRUE(c.explicit_flags.name);
  EXPECT_FALSE(c.explicit_flags.advertise_peer);
  EXPECT_FALSE(c.explicit_flags.token);
  EXPECT_FALSE(c.explicit_flags.data_dir);
}

TEST(AsgConfigTest, RefusedWithInitialClusterSrvOrV3Discovery) {
  Config both;
  Status s = ParseAndValidate(
      {"--discovery-aws-asg", "g", "--initial-cluster", "a=http://10.0.0.1:2380"}, &both);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "--discovery-aws-asg and --initial-cluster are both set: choose one (the auto scaling "
            "group gives the initial cluster)");
  Config srv;
  EXPECT_FALSE(
      ParseAndValidate({"--discovery-aws-asg", "g", "--discovery-srv", "example.com"}, &srv).ok());
  Config v3;
  Status v3_status = ParseAndValidate({"--discovery-aws-asg", "g", "--discovery-token", "t",
                                       "--discovery-endpoints", "http://127.0.0.1:2379"},
                                      &v3);
  ASSERT_FALSE(v3_status.ok());
  EXPECT_EQ(v3_status.message(),
            "--discovery-aws-asg and --discovery-token/--discovery-endpoints are both set: "
            "choose one");
  Config bad_wait;
  EXPECT_FALSE(ParseAndValidate({"--experimental-discovery-aws-asg-wait", "-1s"}, &bad_wait).ok());
}

TEST(AsgJoinTest, ExistingInitialClusterNamesEveryMember) {
  const std::vector<ClusterMember> members = {
      {0x1a, "i-01", {"http://10.0.0.1:2380"}, false},
      {0x2b, "", {"http://10.0.0.9:2380"}, true},  // added, not started yet
      {0x3c, "", {"http://10.0.0.4:2380"}, true},  // this member, just added
  };
  EXPECT_EQ(ExistingInitialCluster(members, {"http://10.0.0.4:2380"}, "i-04"),
            "i-01=http://10.0.0.1:2380,2b=http://10.0.0.9:2380,"
            "i-04=http://10.0.0.4:2380");
  EXPECT_TRUE(ListsPeerUrls(members, {"http://10.0.0.9:2380"}));
  EXPECT_FALSE(ListsPeerUrls(members, {"http://10.0.0.5:2380"}));
}

}  // namespace
}  // namespace dolmen::embed

// Dead-member removal's flags (docs/flags.md) and the removed member's data dir name.
namespace dolmen::embed {
namespace {

TEST(AsgRemovalConfigTest, GraceAndUnreachableFlagsReachTheServer) {
  Config defaults;
  ASSERT_TRUE(testing::ParseAndValidate({}, &defaults).ok());
  server::ServerConfig off = ToServerConfig(defaults);
  EXPECT_EQ(off.remove_unreachable_after.count(), 0);
  EXPECT_FALSE(off.find_dead_members);
  EXPECT_FALSE(off.auto_promote_learners);
  EXPECT_EQ(off.member_removal.grace, std::chrono::minutes(5));

  Config asg;
  ASSERT_TRUE(testing::ParseAndValidate(
                  {"--discovery-aws-asg", "auto", "--discovery-aws-asg-removal-grace", "2s"}, &asg)
                  .ok());
  server::ServerConfig s = ToServerConfig(asg);
  EXPECT_EQ(s.member_removal.grace, std::chrono::seconds(2));
  EXPECT_EQ(s.member_removal.interval, std::chrono::milliseconds(500));
  EXPECT_TRUE(s.auto_promote_learners) << "a replacement's learner is promoted by the leader";

  Config fixed;
  ASSERT_TRUE(testing::ParseAndValidate({"--auto-remove-unreachable-after", "10m"}, &fixed).ok());
  EXPECT_EQ(ToServerConfig(fixed).remove_unreachable_after, std::chrono::minutes(10));
  Config bad;
  EXPECT_FALSE(testing::ParseAndValidate({"--auto-remove-unreachable-after", "-1s"}, &bad).ok());
}

TEST(AsgRemovalConfigTest, ARemovedMembersDataDirIsRenamedWithTheTime) {
  EXPECT_EQ(RemovedDataDirName("/var/lib/etcd/", 1796604312),
            "/var/lib/etcd.removed-20261207T004512Z");
}

}  // namespace
}  // namespace dolmen::embed
