#include "lease/lessor.h"

#include <gtest/gtest.h>

#include "backend/memory_backend.h"
#include "base/clock.h"

namespace dolmen::lease {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class LeaseLessorTest : public ::testing::Test {
 protected:
  LeaseLessorTest() : backend_(backend::NewMemoryBackend()), lessor_(LessorOptions{}) {}

  Result<int64_t> Grant(Lessor& lessor, int64_t id, int64_t ttl) {
    auto txn = backend_->BeginWrite();
    EXPECT_TRUE(txn.ok());
    auto granted = lessor.Grant(LeaseId(id), ttl, clock_.Now(), txn->get());
    EXPECT_TRUE((*txn)->Commit().ok());
    return granted;
  }
  Status Revoke(Lessor& lessor, int64_t id) {
    auto txn = backend_->BeginWrite();
    EXPECT_TRUE(txn.ok());
    Status s = lessor.Revoke(LeaseId(id), txn->get());
    EXPECT_TRUE((*txn)->Commit().ok());
    return s;
  }

  std::unique_ptr<backend::Backend> backend_;
  ManualClock clock_;
  Lessor lessor_;
};

TEST_F(LeaseLessorTest, GrantRaisesShortTtlsToTheMinimum) {
  EXPECT_EQ(*Grant(lessor_, 1, 1), 2);
  EXPECT_EQ(*Grant(lessor_, 2, -5), 2);
  EXPECT_EQ(*Grant(lessor_, 3, 60), 60);
  auto info = lessor_.TimeToLive(LeaseId(1), false, clock_.Now());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->granted_ttl_seconds, 2);
}

TEST_F(LeaseLessorTest, GrantRefusesWhatEtcdRefuses) {
  EXPECT_EQ(Grant(lessor_, 0, 10).status().code(), Code::kLeaseNotFound);
  EXPECT_EQ(Grant(lessor_, 1, kMaxTtlSeconds + 1).status().code(), Code::kLeaseTtlTooLarge);
  EXPECT_EQ(*Grant(lessor_, 1, kMaxTtlSeconds), kMaxTtlSeconds);
  EXPECT_EQ(Grant(lessor_, 1, 10).status().code(), Code::kLeaseExists);
  EXPECT_EQ(lessor_.size(), 1u);
}

TEST_F(LeaseLessorTest, NothingExpiresBeforePromotion) {
  ASSERT_TRUE(Grant(lessor_, 1, 5).ok());
  clock_.Advance(seconds(100));
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  EXPECT_EQ(lessor_.Renew(LeaseId(1), clock_.Now()).status().code(), Code::kNotLeader);
}

TEST_F(LeaseLessorTest, ExpiresInExpiryOrderBoundedPerRound) {
  lessor_.Promote(seconds(0), clock_.Now());
  ASSERT_TRUE(Grant(lessor_, 30, 30).ok());
  ASSERT_TRUE(Grant(lessor_, 10, 10).ok());
  ASSERT_TRUE(Grant(lessor_, 20, 20).ok());
  clock_.Advance(milliseconds(9999));
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  clock_.Advance(seconds(15));  // 24.999 s: leases 10 and 20 expired
  EXPECT_EQ(lessor_.TakeExpired(clock_.Now(), 1), std::vector<LeaseId>{LeaseId(10)});
  EXPECT_EQ(lessor_.TakeExpired(clock_.Now(), 10), std::vector<LeaseId>{LeaseId(20)});
  // Handed out once; again only after the retry interval if the revoke never landed.
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  clock_.Advance(seconds(3));
  EXPECT_EQ(lessor_.TakeExpired(clock_.Now(), 10),
            (std::vector<LeaseId>{LeaseId(10), LeaseId(20)}));
  ASSERT_TRUE(Revoke(lessor_, 10).ok());
  clock_.Advance(seconds(3));  // 30.999 s: lease 30 too
  EXPECT_EQ(lessor_.TakeExpired(clock_.Now(), 10),
            (std::vector<LeaseId>{LeaseId(30), LeaseId(20)}));  // 20 is due again at 30.999
}

TEST_F(LeaseLessorTest, RenewPushesExpiryAndRefusesExpiredLeases) {
  lessor_.Promote(seconds(0), clock_.Now());
  ASSERT_TRUE(Grant(lessor_, 1, 10).ok());
  clock_.Advance(seconds(8));
  EXPECT_EQ(lessor_.TimeToLive(LeaseId(1), false, clock_.Now())->remaining_seconds, 2);
  EXPECT_EQ(*lessor_.Renew(LeaseId(1), clock_.Now()), 10);
  EXPECT_EQ(lessor_.TimeToLive(LeaseId(1), false, clock_.Now())->remaining_seconds, 10);
  clock_.Advance(seconds(9));
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  clock_.Advance(seconds(1));
  EXPECT_EQ(lessor_.Renew(LeaseId(1), clock_.Now()).status().code(), Code::kLeaseNotFound);
  EXPECT_EQ(lessor_.Renew(LeaseId(2), clock_.Now()).status().code(), Code::kLeaseNotFound);
}

TEST_F(LeaseLessorTest, PromoteExtendsEveryLeaseByTheFullTtl) {
  lessor_.Promote(seconds(0), clock_.Now());
  ASSERT_TRUE(Grant(lessor_, 1, 10).ok());
  clock_.Advance(seconds(9));
  lessor_.Demote();
  EXPECT_FALSE(lessor_.primary());
  clock_.Advance(seconds(30));
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  // A new leader: now + extension + TTL, whatever the old leader had left.
  lessor_.Promote(seconds(1), clock_.Now());
  clock_.Advance(milliseconds(10999));
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(lessor_.TakeExpired(clock_.Now(), 10), std::vector<LeaseId>{LeaseId(1)});
}

TEST_F(LeaseLessorTest, PromoteSpreadsPiledUpExpiries) {
  LessorOptions options;
  options.max_expiries_per_second = 2;
  Lessor lessor(options);
  for (int id = 1; id <= 5; ++id) ASSERT_TRUE(Grant(lessor, id, 10).ok());
  lessor.Promote(seconds(0), clock_.Now());
  clock_.Advance(seconds(10));
  EXPECT_EQ(lessor.TakeExpired(clock_.Now(), 10).size(), 2u);
  clock_.Advance(seconds(1));
  EXPECT_EQ(lessor.TakeExpired(clock_.Now(), 10).size(), 2u);
  clock_.Advance(seconds(1));
  EXPECT_EQ(lessor.TakeExpired(clock_.Now(), 10).size(), 1u);
}

TEST_F(LeaseLessorTest, AttachAndDetach) {
  ASSERT_TRUE(Grant(lessor_, 1, 10).ok());
  EXPECT_EQ(lessor_.Attach(LeaseId(2), "a").code(), Code::kLeaseNotFound);
  ASSERT_TRUE(lessor_.Attach(LeaseId(1), "b").ok());
  ASSERT_TRUE(lessor_.Attach(LeaseId(1), "a").ok());
  ASSERT_TRUE(lessor_.Attach(LeaseId(1), "a").ok());
  EXPECT_EQ(*lessor_.Keys(LeaseId(1)), (std::vector<std::string>{"a", "b"}));
  lessor_.Detach(LeaseId(1), "b");
  lessor_.Detach(LeaseId(1), "missing");
  lessor_.Detach(LeaseId(9), "a");
  auto info = lessor_.TimeToLive(LeaseId(1), true, clock_.Now());
  EXPECT_EQ(info->keys, std::vector<std::string>{"a"});
  EXPECT_TRUE(lessor_.TimeToLive(LeaseId(1), false, clock_.Now())->keys.empty());
  EXPECT_EQ(lessor_.Keys(LeaseId(9)).status().code(), Code::kLeaseNotFound);
  // The reverse map follows: "a" on 1, "b" on none (a detach by another lease leaves it).
  EXPECT_EQ(lessor_.LeaseOf("a"), LeaseId(1));
  EXPECT_EQ(lessor_.LeaseOf("b"), LeaseId(0));
}

TEST_F(LeaseLessorTest, LeaseOfFollowsMovesAndRevokes) {
  ASSERT_TRUE(Grant(lessor_, 1, 10).ok());
  ASSERT_TRUE(Grant(lessor_, 2, 10).ok());
  ASSERT_TRUE(lessor_.Attach(LeaseId(1), "k").ok());
  // A put moving the key to lease 2: detach from the old, attach to the new.
  lessor_.Detach(LeaseId(1), "k");
  ASSERT_TRUE(lessor_.Attach(LeaseId(2), "k").ok());
  EXPECT_EQ(lessor_.LeaseOf("k"), LeaseId(2));
  lessor_.Detach(LeaseId(1), "k");  // a stale detach does not unhook it from lease 2
  EXPECT_EQ(lessor_.LeaseOf("k"), LeaseId(2));
  auto txn = backend_->BeginWrite();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(lessor_.Revoke(LeaseId(2), txn->get()).ok());
  EXPECT_EQ(lessor_.LeaseOf("k"), LeaseId(0));
}

TEST_F(LeaseLessorTest, PersistenceRoundTrip) {
  ASSERT_TRUE(Grant(lessor_, 7, 70).ok());
  ASSERT_TRUE(Grant(lessor_, -3, 30).ok());  // etcd accepts any non-zero id a client picks
  ASSERT_TRUE(Grant(lessor_, 5, 1).ok());
  ASSERT_TRUE(Revoke(lessor_, 7).ok());
  EXPECT_EQ(Revoke(lessor_, 7).code(), Code::kLeaseNotFound);

  Lessor reopened(LessorOptions{});
  auto txn = backend_->BeginRead();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(reopened.Load(txn->get()).ok());
  EXPECT_EQ(reopened.size(), 2u);
  EXPECT_FALSE(reopened.Exists(LeaseId(7)));
  EXPECT_EQ(reopened.TimeToLive(LeaseId(-3), false, clock_.Now())->granted_ttl_seconds, 30);
  EXPECT_EQ(reopened.TimeToLive(LeaseId(5), false, clock_.Now())->granted_ttl_seconds, 2);
  EXPECT_FALSE(reopened.primary());
}

TEST_F(LeaseLessorTest, LoadRefusesACorruptRecord) {
  auto txn = backend_->BeginWrite();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE((*txn)->Put(kBucket, Lessor::EncodeKey(LeaseId(1)), "x").ok());
  ASSERT_TRUE((*txn)->Commit().ok());
  auto read = backend_->BeginRead();
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(lessor_.Load(read->get()).code(), Code::kCorruption);
}

TEST_F(LeaseLessorTest, LeasesListsSoonestExpiryFirst) {
  lessor_.Promote(seconds(0), clock_.Now());
  ASSERT_TRUE(Grant(lessor_, 1, 50).ok());
  ASSERT_TRUE(Grant(lessor_, 2, 10).ok());
  ASSERT_TRUE(Grant(lessor_, 3, 30).ok());
  EXPECT_EQ(lessor_.Leases(), (std::vector<LeaseId>{LeaseId(2), LeaseId(3), LeaseId(1)}));
}

TEST_F(LeaseLessorTest, HugeTtlDoesNotOverflow) {
  lessor_.Promote(seconds(5), clock_.Now());
  ASSERT_TRUE(Grant(lessor_, 1, kMaxTtlSeconds).ok());
  clock_.Advance(seconds(1000));
  EXPECT_TRUE(lessor_.TakeExpired(clock_.Now(), 10).empty());
  EXPECT_GT(lessor_.TimeToLive(LeaseId(1), false, clock_.Now())->remaining_seconds, 8'000'000'000);
}

}  // namespace
}  // namespace dolmen::lease
