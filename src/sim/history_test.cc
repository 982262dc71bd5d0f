// The linearizability checker on small hand-written histories: each rule it enforces is shown
// failing once, and the cases it must accept (concurrency, writes that failed but took effect)
// pass.
#include "sim/history.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dolmen::sim {
namespace {

using Kind = ClientOp::Kind;
using Outcome = ClientOp::Outcome;

ClientOp Write(uint64_t id, const std::string& value, uint64_t from, uint64_t to,
               int64_t revision) {
  ClientOp op;
  op.id = id;
  op.kind = Kind::kPut;
  op.key = "k";
  op.value = value;
  op.invoked_ms = from;
  op.completed_ms = to;
  op.outcome = Outcome::kOk;
  op.revision = revision;
  op.wrote = true;
  return op;
}

ClientOp Read(uint64_t id, uint64_t from, uint64_t to, int64_t revision, const std::string& value,
              int64_t mod_revision) {
  ClientOp op;
  op.id = id;
  op.kind = Kind::kRead;
  op.key = "k";
  op.invoked_ms = from;
  op.completed_ms = to;
  op.outcome = Outcome::kOk;
  op.revision = revision;
  op.observed = true;
  op.found = !value.empty();
  op.read_value = value;
  op.mod_revision = mod_revision;
  return op;
}

ClientOp WithLease(ClientOp op, int64_t lease) {
  op.lease = lease;
  return op;
}

// A revoke of `lease`: succeeded at `revision` (the revision its deletes made), or failed
// (revision 0: it may or may not have taken effect).
ClientOp Revoke(uint64_t id, int64_t lease, uint64_t from, uint64_t to, int64_t revision) {
  ClientOp op;
  op.id = id;
  op.kind = Kind::kRevoke;
  op.lease = lease;
  op.invoked_ms = from;
  op.completed_ms = to;
  op.outcome = revision > 0 ? Outcome::kOk : Outcome::kFailed;
  op.revision = revision;
  return op;
}

std::optional<std::string> CheckOf(const std::vector<ClientOp>& ops) {
  return HistoryChecker(ops).Check();
}

TEST(HistoryChecker, AcceptsASequentialHistory) {
  EXPECT_EQ(CheckOf({Write(1, "a", 0, 10, 2), Read(2, 11, 12, 2, "a", 2), Write(3, "b", 13, 20, 3),
                     Read(4, 21, 22, 3, "b", 3)}),
            std::nullopt);
}

TEST(HistoryChecker, RefusesAStaleRead) {
  auto failure =
      CheckOf({Write(1, "a", 0, 10, 2), Write(2, "b", 11, 20, 3), Read(3, 21, 22, 3, "a", 2)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("stale"), std::string::npos) << *failure;
}

TEST(HistoryChecker, RefusesARevisionThatGoesBackInRealTime) {
  // The read began after the write completed but read below the write's revision.
  auto failure = CheckOf({Write(1, "a", 0, 10, 5), Read(2, 11, 12, 4, "", 0)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("real time"), std::string::npos) << *failure;
}

TEST(HistoryChecker, AcceptsConcurrentOperationsInEitherOrder) {
  // The read overlaps the write: it may see the value before it.
  EXPECT_EQ(
      CheckOf({Write(1, "a", 0, 10, 2), Write(2, "b", 11, 30, 3), Read(3, 15, 25, 2, "a", 2)}),
      std::nullopt);
}

TEST(HistoryChecker, LearnsAFailedWriteFromTheReadThatSawIt) {
  ClientOp failed = Write(1, "a", 0, 10, 0);
  failed.outcome = Outcome::kFailed;
  failed.wrote = false;
  EXPECT_EQ(CheckOf({failed, Read(2, 20, 21, 7, "a", 7)}), std::nullopt);
  // Once learned, the revision must agree with every other read of it.
  auto failure = CheckOf({failed, Read(2, 20, 21, 7, "a", 7), Read(3, 22, 23, 8, "a", 6)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("reports revision"), std::string::npos) << *failure;
}

TEST(HistoryChecker, RefusesAValueNoWriteWrote) {
  auto failure = CheckOf({Read(1, 0, 1, 3, "ghost", 3)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("no write"), std::string::npos) << *failure;
}

TEST(HistoryChecker, RefusesTwoWritesAtOneRevision) {
  auto failure = CheckOf({Write(1, "a", 0, 10, 2), Write(2, "b", 0, 10, 2)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("two writes"), std::string::npos) << *failure;
}

TEST(HistoryChecker, RefusesALostWriteSeenAsAbsent) {
  auto failure = CheckOf({Write(1, "a", 0, 10, 2), Read(2, 11, 12, 2, "", 0)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("found nothing"), std::string::npos) << *failure;
}

// A revoke deletes the keys whose latest put carried its lease, at the revoke's revision.
TEST(HistoryChecker, AcceptsAKeyGoneWithItsLease) {
  EXPECT_EQ(CheckOf({WithLease(Write(1, "a", 0, 10, 2), 7), Revoke(2, 7, 11, 20, 3),
                     Read(3, 21, 22, 3, "", 0)}),
            std::nullopt);
}

TEST(HistoryChecker, RefusesAKeyReadAfterItsLeaseWasRevoked) {
  auto failure = CheckOf(
      {WithLease(Write(1, "a", 0, 10, 2), 7), Revoke(2, 7, 11, 20, 3), Read(3, 21, 22, 3, "a", 2)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("lease's revoke had deleted"), std::string::npos) << *failure;
}

// Without a revoke of its lease (or of the lease of a later put that failed), a leased key
// cannot vanish.
TEST(HistoryChecker, RefusesALeasedKeyGoneWithoutItsRevoke) {
  auto failure = CheckOf(
      {WithLease(Write(1, "a", 0, 10, 2), 7), Revoke(2, 8, 11, 20, 3), Read(3, 21, 22, 3, "", 0)});
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("found nothing"), std::string::npos) << *failure;
}

// A revoke that failed may have taken effect: the key may be gone after it began.
TEST(HistoryChecker, AcceptsAKeyGoneAfterARevokeThatFailed) {
  EXPECT_EQ(CheckOf({WithLease(Write(1, "a", 0, 10, 2), 7), Revoke(2, 7, 11, 1000, 0),
                     Read(3, 21, 22, 3, "", 0)}),
            std::nullopt);
}

}  // namespace
}  // namespace dolmen::sim
