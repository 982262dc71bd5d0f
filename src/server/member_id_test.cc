#include "server/member_id.h"

#include <gtest/gtest.h>

namespace dolmen::server {
namespace {

// etcd's documented single-member defaults: name "default", peer URL http://localhost:2380,
// token "etcd-cluster" give member 8e9e05c52164694d in cluster cdf818194e3a8c32.
TEST(MemberIdTest, MatchesEtcdDefaults) {
  MemberId m = ComputeMemberId({"http://localhost:2380"}, "etcd-cluster");
  EXPECT_EQ(m.value(), 0x8e9e05c52164694dull);
  EXPECT_EQ(ComputeClusterId({m}).value(), 0xcdf818194e3a8c32ull);
}

TEST(MemberIdTest, TokenAndUrlOrderMatter) {
  MemberId a = ComputeMemberId({"http://a:2380", "http://b:2380"}, "t");
  EXPECT_EQ(a, ComputeMemberId({"http://b:2380", "http://a:2380"}, "t"));  // sorted
  EXPECT_NE(a, ComputeMemberId({"http://a:2380", "http://b:2380"}, "other"));
  EXPECT_EQ(ComputeClusterId({MemberId(1), MemberId(2)}),
            ComputeClusterId({MemberId(2), MemberId(1)}));
}

}  // namespace
}  // namespace dolmen::server
