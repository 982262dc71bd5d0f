// The corruption checks' decisions against fake peers: equal hashes, a differing follower, a
// peer at another compact revision, peers that cannot answer; and the monitor's passes with a
// fake hasher (which alarm it raises, and that it raises none when all agree).
#include "server/corruption_check.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace dolmen::server {
namespace {

constexpr MemberId kLeader(0xa1);
constexpr MemberId kB(0xb2);
constexpr MemberId kC(0xc3);

KvHash Hash(uint32_t hash, int64_t compact, int64_t hash_rev, int64_t current) {
  return KvHash{hash, Revision(compact), Revision(hash_rev), Revision(current)};
}

PeerHash Answer(MemberId id, KvHash h) { return PeerHash{id, OkStatus(), h}; }
PeerHash Failed(MemberId id, Status s) { return PeerHash{id, std::move(s), {}}; }

bool Logged(const std::vector<std::string>& log, const std::string& part) {
  for (const auto& line : log) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

class CorruptionCheckTest : public ::testing::Test {
 protected:
  CheckLog Log() {
    return [this](const std::string& line) { log_.push_back(line); };
  }
  std::vector<std::string> log_;
};

// ---------------------------------------------------------------- initial check

TEST_F(CorruptionCheckTest, InitialPassesWhenEveryPeerAgrees) {
  KvHash local = Hash(111, 0, 20, 20);
  Status s = InitialCheckVerdict(
      kC, local, {Answer(kLeader, Hash(111, 0, 20, 25)), Answer(kB, Hash(111, 0, 20, 25))}, Log());
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Logged(log_, "initial corruption checking passed; no corruption"));
}

TEST_F(CorruptionCheckTest, InitialFailsOnADifferentHashAtTheSameCompactRevision) {
  KvHash local = Hash(999, 5, 20, 20);
  Status s = InitialCheckVerdict(
      kC, local, {Answer(kLeader, Hash(111, 5, 20, 25)), Answer(kB, Hash(111, 5, 20, 21))}, Log());
  EXPECT_EQ(s.code(), Code::kCorruption);
  // etcd's wording, with the member id in hex.
  EXPECT_EQ(s.message(), "c3 found data inconsistency with peers");
  // The log names both sides: ids, revisions, hashes.
  EXPECT_TRUE(Logged(log_,
                     "local member c3 revision 20 compact revision 5 hash 999; remote "
                     "peer a1 revision 25 compact revision 5 hash 111"));
}

TEST_F(CorruptionCheckTest, InitialIgnoresAPeerWithAnotherCompactRevision) {
  KvHash local = Hash(999, 5, 20, 20);
  Status s = InitialCheckVerdict(kC, local, {Answer(kLeader, Hash(111, 9, 20, 25))}, Log());
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Logged(log_, "found different compact revision values from remote peer"));
}

TEST_F(CorruptionCheckTest, InitialPassesWhenPeersCannotAnswer) {
  KvHash local = Hash(999, 5, 20, 20);
  Status s = InitialCheckVerdict(
      kC, local,
      {Failed(kLeader, Status(Code::kUnavailable, "connection refused")),
       Failed(kB, Status(Code::kFutureRevision, "mvcc: required revision is a future revision")),
       Failed(MemberId(0xd4),
              Status(Code::kCompacted, "mvcc: required revision has been compacted"))},
      Log());
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Logged(log_, "no hash from peer a1 at revision 20"));
  EXPECT_TRUE(Logged(log_, "cannot fetch the hash of slow peer b2"));
  EXPECT_TRUE(Logged(log_, "it has compacted past it"));
}

TEST_F(CorruptionCheckTest, InitialFailsOnOneMismatchAmongGoodPeers) {
  KvHash local = Hash(5, 0, 7, 7);
  Status s = InitialCheckVerdict(
      kC, local,
      {Failed(kLeader, Status(Code::kUnavailable, "down")), Answer(kB, Hash(6, 0, 7, 7))}, Log());
  EXPECT_EQ(s.code(), Code::kCorruption);
}

// ---------------------------------------------------------------- periodic check

TEST_F(CorruptionCheckTest, PeriodicNamesNobodyWhenAllAgree) {
  KvHash before = Hash(50, 3, 30, 30);
  KvHash after = Hash(60, 3, 31, 31);  // a write came in between: a new hash is fine
  auto named = PeriodicCheckVerdict(
      kLeader, before, after, {Answer(kB, Hash(50, 3, 30, 31)), Answer(kC, Hash(50, 3, 30, 30))},
      Log());
  EXPECT_FALSE(named.has_value());
  EXPECT_TRUE(Logged(log_, "2 of 2 peers checked at revision 30, no mismatch"));
}

TEST_F(CorruptionCheckTest, PeriodicNamesTheFollowerWithAnotherHash) {
  KvHash before = Hash(50, 3, 30, 30);
  auto named = PeriodicCheckVerdict(
      kLeader, before, before, {Answer(kB, Hash(50, 3, 30, 30)), Answer(kC, Hash(77, 3, 30, 30))},
      Log());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(*named, kC);
  EXPECT_TRUE(Logged(log_,
                     "same compact revision then hashes must match: at revision 30 "
                     "compact revision 3 leader a1 hash 50, follower c3 hash 77"));
}

TEST_F(CorruptionCheckTest, PeriodicSkipsAFollowerAtAnOlderCompactRevision) {
  // The follower has not applied the latest compaction yet: its hash is not comparable.
  KvHash before = Hash(50, 3, 30, 30);
  auto named =
      PeriodicCheckVerdict(kLeader, before, before, {Answer(kB, Hash(77, 2, 30, 30))}, Log());
  EXPECT_FALSE(named.has_value());
}

TEST_F(CorruptionCheckTest, PeriodicNamesAFollowerAheadOfTheLeader) {
  KvHash before = Hash(50, 3, 30, 30);
  auto named =
      PeriodicCheckVerdict(kLeader, before, before, {Answer(kB, Hash(50, 3, 30, 31))}, Log());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(*named, kB);
  EXPECT_TRUE(Logged(log_, "revision from follower must be less than or equal to leader's"));
}

TEST_F(CorruptionCheckTest, PeriodicNamesAFollowerCompactedPastTheLeader) {
  KvHash before = Hash(50, 3, 30, 30);
  auto named =
      PeriodicCheckVerdict(kLeader, before, before, {Answer(kB, Hash(50, 4, 30, 30))}, Log());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(*named, kB);
}

TEST_F(CorruptionCheckTest, PeriodicNamesTheLeaderWhoseOwnHashChangedInPlace) {
  KvHash before = Hash(50, 3, 30, 30);
  KvHash after = Hash(51, 3, 30, 30);
  auto named = PeriodicCheckVerdict(kLeader, before, after, {}, Log());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(*named, kLeader);
}

TEST_F(CorruptionCheckTest, PeriodicNamesOnlyTheFirstMismatch) {
  KvHash before = Hash(50, 3, 30, 30);
  auto named = PeriodicCheckVerdict(
      kLeader, before, before,
      {Failed(kB, Status(Code::kUnavailable, "down")), Answer(kC, Hash(70, 3, 30, 30)),
       Answer(MemberId(0xd4), Hash(71, 3, 30, 30))},
      Log());
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(*named, kC);
  EXPECT_TRUE(Logged(log_, "2 of 3 peers checked"));
}

// ---------------------------------------------------------------- compaction hash check

TEST_F(CorruptionCheckTest, CompactAllAgree) {
  KvHash mine = Hash(9, 10, 20, 40);
  auto v = CompactHashVerdict(
      kLeader, mine, {Answer(kB, Hash(9, 10, 20, 40)), Answer(kC, Hash(9, 10, 20, 39))}, Log());
  EXPECT_TRUE(v.settled);
  EXPECT_TRUE(v.all_agreed);
  EXPECT_TRUE(v.corrupt.empty());
}

TEST_F(CorruptionCheckTest, CompactNamesTheMinority) {
  KvHash mine = Hash(9, 10, 20, 40);
  auto v = CompactHashVerdict(
      kLeader, mine, {Answer(kB, Hash(9, 10, 20, 40)), Answer(kC, Hash(8, 10, 20, 40))}, Log());
  EXPECT_TRUE(v.settled);
  EXPECT_FALSE(v.all_agreed);
  EXPECT_EQ(v.corrupt, std::vector<MemberId>{kC});
}

TEST_F(CorruptionCheckTest, CompactNamesTheLeaderWhenTheFollowersOutvoteIt) {
  KvHash mine = Hash(1, 10, 20, 40);
  auto v = CompactHashVerdict(
      kLeader, mine, {Answer(kB, Hash(9, 10, 20, 40)), Answer(kC, Hash(9, 10, 20, 40))}, Log());
  EXPECT_EQ(v.corrupt, std::vector<MemberId>{kLeader});
}

TEST_F(CorruptionCheckTest, CompactWithoutMajorityNamesMemberZero) {
  KvHash mine = Hash(1, 10, 20, 40);
  auto v = CompactHashVerdict(
      kLeader, mine, {Answer(kB, Hash(2, 10, 20, 40)), Answer(kC, Hash(3, 10, 20, 40))}, Log());
  EXPECT_TRUE(v.settled);
  EXPECT_EQ(v.corrupt, std::vector<MemberId>{MemberId(0)});
  EXPECT_TRUE(Logged(log_, "no majority agrees"));
}

TEST_F(CorruptionCheckTest, CompactUnsettledWhenAPeerCannotBeCompared) {
  KvHash mine = Hash(9, 10, 20, 40);
  auto v = CompactHashVerdict(kLeader, mine,
                              {Answer(kB, Hash(9, 10, 20, 40)), Answer(kC, Hash(9, 12, 20, 40)),
                               Failed(MemberId(0xd4), Status(Code::kCompacted, "compacted"))},
                              Log());
  EXPECT_FALSE(v.settled);
  EXPECT_FALSE(v.all_agreed);
  EXPECT_TRUE(v.corrupt.empty());
}

TEST(CompactionHashesTest, KeepsTheNewestTen) {
  CompactionHashes hashes;
  for (int64_t rev = 1; rev <= 12; ++rev) hashes.Record(Hash(100 + rev, rev - 1, rev, rev));
  EXPECT_FALSE(hashes.At(Revision(2)).has_value());
  ASSERT_TRUE(hashes.At(Revision(3)).has_value());
  EXPECT_EQ(hashes.At(Revision(3))->hash, 103u);
  auto newest = hashes.NewestFirst();
  ASSERT_EQ(newest.size(), CompactionHashes::kMaxRecorded);
  EXPECT_EQ(newest.front().hash_revision, Revision(12));
  EXPECT_EQ(newest.back().hash_revision, Revision(3));
}

// ---------------------------------------------------------------- the monitor's passes

class FakeHasher : public PeerHasher {
 public:
  Result<KvHash> PeerHashKv(MemberId peer, Revision revision,
                            std::chrono::steady_clock::time_point) override {
    asked.push_back({peer, revision});
    auto it = answers.find(peer);
    if (it == answers.end()) return Status(Code::kUnavailable, "no such peer");
    return it->second;
  }
  std::map<MemberId, Result<KvHash>> answers;
  std::vector<std::pair<MemberId, Revision>> asked;
};

class MonitorTest : public ::testing::Test {
 protected:
  CorruptionMonitor Make() {
    CorruptionMonitor::Hooks hooks;
    hooks.self = kLeader;
    hooks.is_leader = [] { return true; };
    hooks.peers = [] { return std::vector<MemberId>{kB, kC}; };
    hooks.hasher = &hasher_;
    hooks.local_hash = [this]() -> Result<KvHash> { return local_; };
    hooks.read_barrier = [this](std::chrono::milliseconds) { return barrier_; };
    hooks.compaction_hashes = &recorded_;
    hooks.raise_alarm = [this](MemberId id) { alarms_.push_back(id); };
    hooks.log = [](const std::string&) {};
    return CorruptionMonitor(CorruptionMonitorOptions{}, std::move(hooks));
  }
  FakeHasher hasher_;
  KvHash local_ = Hash(50, 0, 30, 30);
  Status barrier_;
  CompactionHashes recorded_;
  std::vector<MemberId> alarms_;
};

TEST_F(MonitorTest, PeriodicPassAsksAtTheLeadersRevisionAndRaisesForTheOddFollower) {
  hasher_.answers.emplace(kB, Hash(50, 0, 30, 30));
  hasher_.answers.emplace(kC, Hash(51, 0, 30, 30));
  CorruptionMonitor monitor = Make();
  EXPECT_TRUE(monitor.PeriodicCheck().ok());
  ASSERT_EQ(hasher_.asked.size(), 2u);
  EXPECT_EQ(hasher_.asked[0].second, Revision(30));
  EXPECT_EQ(alarms_, std::vector<MemberId>{kC});
}

TEST_F(MonitorTest, PeriodicPassWithAnUnreachablePeerRaisesNothing) {
  hasher_.answers.emplace(kB, Hash(50, 0, 30, 30));  // kC: unavailable
  CorruptionMonitor monitor = Make();
  EXPECT_TRUE(monitor.PeriodicCheck().ok());
  EXPECT_TRUE(alarms_.empty());
}

TEST_F(MonitorTest, PeriodicPassFailsWhenTheReadBarrierFails) {
  hasher_.answers.emplace(kB, Hash(99, 0, 30, 30));
  barrier_ = Status(Code::kTimeout, "read barrier timed out");
  CorruptionMonitor monitor = Make();
  EXPECT_EQ(monitor.PeriodicCheck().code(), Code::kTimeout);
  EXPECT_TRUE(alarms_.empty());  // no verdict without the barrier
}

TEST_F(MonitorTest, CompactPassFallsBackToAnOlderRevisionEveryoneHas) {
  recorded_.Record(Hash(7, 0, 10, 10));
  recorded_.Record(Hash(8, 10, 20, 20));
  // kC has not recorded revision 20 (it answers with its compact revision 10 at that
  // revision: not comparable), so the check goes on to revision 10 where kB differs.
  hasher_.answers.emplace(kB, Hash(6, 0, 10, 25));
  hasher_.answers.emplace(kC, Hash(7, 0, 10, 25));
  CorruptionMonitor monitor = Make();
  monitor.CompactHashCheck();
  ASSERT_EQ(hasher_.asked.size(), 4u);
  EXPECT_EQ(hasher_.asked[0].second, Revision(20));
  EXPECT_EQ(hasher_.asked[2].second, Revision(10));
  EXPECT_EQ(alarms_, std::vector<MemberId>{kB});
}

TEST_F(MonitorTest, CompactPassDoesNotRecheckAnAgreedRevision) {
  recorded_.Record(Hash(8, 10, 20, 20));
  hasher_.answers.emplace(kB, Hash(8, 10, 20, 25));
  hasher_.answers.emplace(kC, Hash(8, 10, 20, 25));
  CorruptionMonitor monitor = Make();
  monitor.CompactHashCheck();
  EXPECT_EQ(hasher_.asked.size(), 2u);
  monitor.CompactHashCheck();
  EXPECT_EQ(hasher_.asked.size(), 2u);  // revision 20 was checked: nothing new to ask
  EXPECT_TRUE(alarms_.empty());
}

}  // namespace
}  // namespace dolmen::server
