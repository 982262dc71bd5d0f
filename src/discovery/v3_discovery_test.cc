#include "discovery/v3_discovery.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace dolmen::discovery {
namespace {

// An in-memory registry: a key-value map with etcd's revisions. Puts queued in `later` arrive
// one by one while a watch waits (other members registering meanwhile); `failures` makes the
// next calls fail as an unreachable service would.
class FakeRegistry : public V3Registry {
 public:
  Result<RegistryRange> Get(const std::string& key, bool prefix) override {
    ++gets;
    if (failures > 0) {
      --failures;
      return Unavailable("connection refused");
    }
    RegistryRange out;
    out.revision = revision_;
    for (const auto& [k, kv] : kvs_) {
      if (prefix ? k.rfind(key, 0) == 0 : k == key) out.kvs.push_back(kv);
    }
    return out;
  }
  Status Put(const std::string& key, const std::string& value) override {
    if (put_failures > 0) {
      --put_failures;
      return Unavailable("request timed out");
    }
    Store(key, value);
    return OkStatus();
  }
  Status WatchPuts(const std::string& prefix, int64_t start_revision,
                   const std::function<bool(const RegistryKv&)>& on_put) override {
    ++watches;
    for (const auto& [k, kv] : kvs_) {  // what happened since start_revision
      if (k.rfind(prefix, 0) == 0 && kv.create_revision >= start_revision && !on_put(kv)) {
        return OkStatus();
      }
    }
    while (!later.empty()) {
      auto [key, value] = later.front();
      later.pop_front();
      const RegistryKv& kv = Store(key, value);
      if (key.rfind(prefix, 0) == 0 && !on_put(kv)) return OkStatus();
    }
    return Unavailable("watch stream ended");
  }
  const RegistryKv& Store(const std::string& key, const std::string& value) {
    ++revision_;
    auto it = kvs_.find(key);
    const int64_t created = it == kvs_.end() ? revision_ : it->second.create_revision;
    return kvs_[key] = RegistryKv{key, value, created};
  }
  bool Has(const std::string& key) const { return kvs_.count(key) > 0; }

  std::deque<std::pair<std::string, std::string>> later;
  int failures = 0;
  int put_failures = 0;
  int gets = 0;
  int watches = 0;

 private:
  int64_t revision_ = 1;
  std::map<std::string, RegistryKv> kvs_;
};

class V3DiscoveryTest : public ::testing::Test {
 protected:
  Result<std::string> Join(uint64_t id, const std::string& self) {
    V3JoinRequest request{"tok", id, self};
    return JoinV3Cluster(
        request, &registry_, policy_,
        [this](std::chrono::milliseconds d) { sleeps_.push_back(d.count()); },
        [this](const std::string& line) { logged_.push_back(line); });
  }
  FakeRegistry registry_;
  V3RetryPolicy policy_;
  std::vector<int64_t> sleeps_;
  std::vector<std::string> logged_;
};

TEST(V3Keys, FollowEtcdsLayoutWithTheIdInLowercaseHexWithoutPadding) {
  EXPECT_EQ(V3SizeKey("abc"), "/_etcd/registry/abc/_config/size");
  EXPECT_EQ(V3MembersPrefix("abc"), "/_etcd/registry/abc/members");
  EXPECT_EQ(V3MemberKey("abc", 0x0a1b2c3d4e5f6071ull),
            "/_etcd/registry/abc/members/a1b2c3d4e5f6071");
}

TEST_F(V3DiscoveryTest, MissingSizeIsEtcdsErrorAtOnceWithoutRegistering) {
  auto joined = Join(0xa1, "m1=http://127.0.0.1:2380");
  EXPECT_EQ(joined.status().message(), kV3SizeNotFound);
  EXPECT_FALSE(registry_.Has(V3MemberKey("tok", 0xa1)));
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(V3DiscoveryTest, SizeThatIsNotAPositiveNumberIsBad) {
  for (const char* bad : {"0", "-3", "three", "3 ", ""}) {
    FakeRegistry fresh;
    fresh.Store(V3SizeKey("tok"), bad);
    registry_ = fresh;
    EXPECT_EQ(Join(0xa1, "m1=http://h:1").status().message(), kV3BadSizeKey) << bad;
  }
}

TEST_F(V3DiscoveryTest, LastMemberToRegisterGetsTheClusterInRegistrationOrder) {
  registry_.Store(V3SizeKey("tok"), "3");
  registry_.Store(V3MemberKey("tok", 0xb2), "m2=http://h:2");
  registry_.Store(V3MemberKey("tok", 0xc3), "m3=http://h:3");
  auto joined = Join(0xa1, "m1=http://h:1");
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(*joined, "m2=http://h:2,m3=http://h:3,m1=http://h:1");
  EXPECT_EQ(registry_.watches, 0);
}

TEST_F(V3DiscoveryTest, EarlyMemberWaitsForTheOthersThroughTheWatch) {
  registry_.Store(V3SizeKey("tok"), "3");
  registry_.later = {{V3MemberKey("tok", 0xb2), "m2=http://h:2"},
                     {"/_etcd/registry/other/members/1", "x=http://h:9"},
                     {V3MemberKey("tok", 0xc3), "m3=http://h:3"}};
  auto joined = Join(0xa1, "m1=http://h:1");
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(*joined, "m1=http://h:1,m2=http://h:2,m3=http://h:3");
  EXPECT_EQ(registry_.watches, 1);
}

TEST_F(V3DiscoveryTest, FullRegistryRefusesANewMemberWithoutRegisteringIt) {
  registry_.Store(V3SizeKey("tok"), "2");
  registry_.Store(V3MemberKey("tok", 0xb2), "m2=http://h:2");
  registry_.Store(V3MemberKey("tok", 0xc3), "m3=http://h:3");
  EXPECT_EQ(Join(0xa1, "m1=http://h:1").status().message(), kV3FullCluster);
  EXPECT_FALSE(registry_.Has(V3MemberKey("tok", 0xa1)));
}

TEST_F(V3DiscoveryTest, RestartedMemberFindsItsOwnRegistrationAndKeepsItsPlace) {
  registry_.Store(V3SizeKey("tok"), "2");
  registry_.Store(V3MemberKey("tok", 0xa1), "m1=http://h:1");
  registry_.Store(V3MemberKey("tok", 0xb2), "m2=http://h:2");
  auto joined = Join(0xa1, "m1=http://h:1");
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(*joined, "m1=http://h:1,m2=http://h:2");
}

TEST_F(V3DiscoveryTest, MemberThatRegisteredBeyondTheSizeInARaceIsRefused) {
  registry_.Store(V3SizeKey("tok"), "2");
  registry_.Store(V3MemberKey("tok", 0xb2), "m2=http://h:2");
  // m3 registers between this member's check and its own registration.
  registry_.later = {};
  FakeRegistry* r = &registry_;
  struct RacingRegistry : V3Registry {
    FakeRegistry* inner;
    bool raced = false;
    Result<RegistryRange> Get(const std::string& k, bool p) override { return inner->Get(k, p); }
    Status Put(const std::string& k, const std::string& v) override {
      if (!raced) inner->Store(V3MemberKey("tok", 0xc3), "m3=http://h:3");
      raced = true;
      return inner->Put(k, v);
    }
    Status WatchPuts(const std::string& p, int64_t s,
                     const std::function<bool(const RegistryKv&)>& f) override {
      return inner->WatchPuts(p, s, f);
    }
  } racing;
  racing.inner = r;
  V3JoinRequest request{"tok", 0xa1, "m1=http://h:1"};
  auto joined = JoinV3Cluster(
      request, &racing, policy_, [](std::chrono::milliseconds) {}, [](const std::string&) {});
  EXPECT_EQ(joined.status().message(), kV3FullCluster);
}

TEST_F(V3DiscoveryTest, UnreachableServiceIsRetriedWithEtcdsDoublingBackoff) {
  registry_.Store(V3SizeKey("tok"), "1");
  registry_.failures = 3;
  registry_.put_failures = 1;
  auto joined = Join(0xa1, "m1=http://h:1");
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(*joined, "m1=http://h:1");
  // Three failed reads in a row (2, 4, 8 s), then the count restarts for the put.
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{2000, 4000, 8000, 2000}));
  bool logged = false;
  for (const auto& line : logged_) {
    logged |= line.find("failed: connection refused; retrying in 2000 ms") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

TEST_F(V3DiscoveryTest, BackoffIsCappedAndRetriesAreBounded) {
  registry_.Store(V3SizeKey("tok"), "1");
  registry_.failures = 100;
  policy_.max_retries = 10;
  auto joined = Join(0xa1, "m1=http://h:1");
  EXPECT_EQ(joined.status().code(), Code::kUnavailable);
  EXPECT_NE(joined.status().message().find("discovery: too many retries"), std::string::npos);
  ASSERT_EQ(sleeps_.size(), 10u);
  EXPECT_EQ(sleeps_.back(), 256000);
}

TEST_F(V3DiscoveryTest, MalformedAndForeignRegistrationsAreSkipped) {
  registry_.Store(V3SizeKey("tok"), "2");
  registry_.Store(V3MemberKey("tok", 0xb2), "no equals sign");
  registry_.later = {{V3MemberKey("tok", 0xc3), " m3=http://h:3 "}};
  auto joined = Join(0xa1, "m1=http://h:1");
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ(*joined, "m1=http://h:1,m3=http://h:3");
}

TEST(V3Registrations, OrdersByCreateRevisionAndRefusesDuplicates) {
  V3Registrations r("tok");
  ASSERT_TRUE(r.Add({V3MemberKey("tok", 2), "b=u", 9}).ok());
  ASSERT_TRUE(r.Add({V3MemberKey("tok", 1), "a=u", 4}).ok());
  EXPECT_EQ(r.Add({V3MemberKey("tok", 1), "a=u", 4}).message(),
            "found duplicate peer from discovery service");
  EXPECT_EQ(r.InitialCluster(5), "a=u,b=u");
  EXPECT_EQ(r.InitialCluster(1), "a=u");
  EXPECT_TRUE(r.AmongFirst(V3MemberKey("tok", 1), 1));
  EXPECT_FALSE(r.AmongFirst(V3MemberKey("tok", 2), 1));
}

}  // namespace
}  // namespace dolmen::discovery
