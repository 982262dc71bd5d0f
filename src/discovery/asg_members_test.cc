#include "discovery/asg_members.h"

#include <gtest/gtest.h>

namespace dolmen::discovery {
namespace {

aws::AutoScalingGroup Group(std::vector<std::pair<std::string, std::string>> states) {
  aws::AutoScalingGroup g{"etcd-asg", 3, {}};
  for (const auto& [id, state] : states) g.instances.push_back({id, "", state, "HEALTHY"});
  return g;
}

std::vector<aws::Ec2Instance> Ec2(std::vector<std::vector<std::string>> rows) {
  std::vector<aws::Ec2Instance> out;
  for (const auto& r : rows) out.push_back({r[0], r[1], r[2]});
  return out;
}

ClusterMemberView Member(uint64_t id, std::string name, std::string ip) {
  return {id, std::move(name), {"http://" + ip + ":2380"}};
}

TEST(AsgMembers, TerminatedAndVanishedInstancesAreGone) {
  const auto group =
      Group({{"i-0a", "InService"}, {"i-0b", "Terminating:Wait"}, {"i-0d", "InService"}});
  const auto ec2 = Ec2({{"i-0a", "10.0.0.1", "running"},
                        {"i-0b", "10.0.0.2", "shutting-down"},
                        {"i-0d", "10.0.0.4", "running"}});
  auto gone = MembersGoneFromGroup({Member(1, "i-0a", "10.0.0.1"), Member(2, "i-0b", "10.0.0.2"),
                                    Member(3, "i-0c", "10.0.0.3"), Member(4, "", "10.0.0.4")},
                                   group, ec2, "i-0a");
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  ASSERT_EQ(gone->size(), 2u);
  EXPECT_EQ(gone->at(2), "instance i-0b is Terminating:Wait in auto scaling group etcd-asg");
  EXPECT_EQ(gone->at(3),
            "no instance of auto scaling group etcd-asg is named i-0c or has its peer address");
  // Member 4 has not started (no name) but its peer address is i-0d's: it stays.
}

TEST(AsgMembers, Ec2StateCountsWhenTheGroupStillListsTheInstance) {
  auto gone = MembersGoneFromGroup(
      {Member(1, "i-0a", "10.0.0.1"), Member(2, "i-0b", "10.0.0.2")},
      Group({{"i-0a", "InService"}, {"i-0b", "InService"}}),
      Ec2({{"i-0a", "10.0.0.1", "running"}, {"i-0b", "10.0.0.2", "terminated"}}), "i-0a");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->at(2), "instance i-0b is terminated (EC2)");
}

TEST(AsgMembers, AnAnswerWithoutThisInstanceRemovesNothing) {
  auto gone = MembersGoneFromGroup({Member(1, "i-0a", "10.0.0.1")}, Group({}), {}, "i-0a");
  EXPECT_EQ(gone.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(gone.status().message().find("does not list this instance i-0a"), std::string::npos);
}

TEST(AsgMembers, PeerUrlHost) {
  EXPECT_EQ(PeerUrlHost("http://10.0.0.1:2380"), "10.0.0.1");
  EXPECT_EQ(PeerUrlHost("https://[fd00::1]:2380"), "fd00::1");
  EXPECT_EQ(PeerUrlHost("http://host"), "host");
  EXPECT_EQ(PeerUrlHost("https://[broken"), "");
}

}  // namespace
}  // namespace dolmen::discovery
