// MemoryStorage, Unstable and RaftLog: the log's bookkeeping, checked directly.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "raft/memory_storage.h"
#include "raft/progress.h"

namespace dolmen::raft {
namespace {

Entry E(uint64_t index, uint64_t term, std::string data = "") {
  return Entry{Term(term), Index(index), EntryType::kNormal, std::move(data)};
}

TEST(MemoryStorage, AppendTruncatesConflictingTail) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 1), E(3, 1)}).ok());
  ASSERT_TRUE(s.Append({E(2, 2)}).ok());
  EXPECT_EQ(s.LastIndex(), Index(2));
  EXPECT_EQ(*s.TermAt(Index(2)), Term(2));
  EXPECT_FALSE(s.Append({E(5, 2)}).ok());  // a gap
}

TEST(MemoryStorage, CompactAndSnapshot) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 1), E(3, 2), E(4, 2)}).ok());
  ConfState cs;
  cs.voters = {MemberId(1)};
  auto snap = s.CreateSnapshot(Index(3), cs, "data");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata.term, Term(2));
  ASSERT_TRUE(s.Compact(Index(3)).ok());
  EXPECT_EQ(s.FirstIndex(), Index(4));
  EXPECT_EQ(*s.TermAt(Index(3)), Term(2));  // the snapshot's index keeps its term
  EXPECT_EQ(s.TermAt(Index(2)).status().code(), Code::kCompacted);
  EXPECT_EQ(s.Entries(Index(2), Index(5), 1000).status().code(), Code::kCompacted);
  EXPECT_EQ(s.Compact(Index(2)).code(), Code::kCompacted);
  // An older snapshot is refused; a newer one replaces the log.
  Snapshot older;
  older.metadata.index = Index(2);
  EXPECT_FALSE(s.ApplySnapshot(older).ok());
  Snapshot newer;
  newer.metadata.index = Index(10);
  newer.metadata.term = Term(3);
  ASSERT_TRUE(s.ApplySnapshot(newer).ok());
  EXPECT_EQ(s.FirstIndex(), Index(11));
  EXPECT_EQ(s.LastIndex(), Index(10));
}

TEST(MemoryStorage, EntriesRespectByteBoundButReturnOne) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1, std::string(100, 'a')), E(2, 1, "b"), E(3, 1, "c")}).ok());
  auto one = s.Entries(Index(1), Index(4), 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  auto all = s.Entries(Index(1), Index(4), 1 << 20);
  EXPECT_EQ(all->size(), 3u);
}

TEST(RaftLog, MaybeAppendMatchesAndTruncates) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 2), E(3, 2)}).ok());
  RaftLog log(&s, 1 << 20);
  // Mismatched previous entry.
  EXPECT_FALSE(log.MaybeAppend(Index(3), Term(3), Index(0), {E(4, 3)}).has_value());
  // Matching; conflicts at 3 replace the tail.
  auto last = log.MaybeAppend(Index(2), Term(2), Index(2), {E(3, 3), E(4, 3)});
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, Index(4));
  EXPECT_EQ(log.ZeroTermOnError(Index(3)), Term(3));
  EXPECT_EQ(log.committed(), Index(2));
  // Already present entries change nothing.
  EXPECT_EQ(*log.MaybeAppend(Index(1), Term(1), Index(4), {E(2, 2)}), Index(2));
  EXPECT_EQ(log.LastIndex(), Index(4));
  EXPECT_EQ(log.committed(), Index(2));  // commit never beyond what this append proved
}

TEST(RaftLog, FindConflictByTermSkipsWholeTerms) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 1), E(3, 4), E(4, 4), E(5, 5), E(6, 5)}).ok());
  RaftLog log(&s, 1 << 20);
  EXPECT_EQ(log.FindConflictByTerm(Index(6), Term(4)).first, Index(4));
  EXPECT_EQ(log.FindConflictByTerm(Index(6), Term(3)).first, Index(2));
  EXPECT_EQ(log.FindConflictByTerm(Index(6), Term(9)).first, Index(6));
  EXPECT_EQ(log.FindConflictByTerm(Index(100), Term(9)).first, Index(6));
}

TEST(RaftLog, UpToDateComparesLastTermThenIndex) {  // §5.4.1
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 3)}).ok());
  RaftLog log(&s, 1 << 20);
  EXPECT_TRUE(log.IsUpToDate(Index(1), Term(4)));
  EXPECT_FALSE(log.IsUpToDate(Index(9), Term(2)));
  EXPECT_TRUE(log.IsUpToDate(Index(2), Term(3)));
  EXPECT_FALSE(log.IsUpToDate(Index(1), Term(3)));
}

TEST(RaftLog, CommitRuleNeedsCurrentTerm) {  // §5.4.2
  MemoryStorage s;
  ASSERT_TRUE(s.Append({E(1, 1), E(2, 2)}).ok());
  RaftLog log(&s, 1 << 20);
  EXPECT_FALSE(log.MaybeCommit(Index(2), Term(3)));
  EXPECT_TRUE(log.MaybeCommit(Index(2), Term(3), /*allow_previous_term=*/true));
  EXPECT_EQ(log.committed(), Index(2));
}

TEST(RaftLog, UnstableEntriesBecomeStable) {
  MemoryStorage s;
  RaftLog log(&s, 1 << 20);
  log.Append({E(1, 1), E(2, 1)});
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  ASSERT_TRUE(s.Append(log.UnstableEntries()).ok());
  log.StableTo(Index(2), Term(2));  // a different term: the entry was replaced meanwhile
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  log.StableTo(Index(2), Term(1));
  EXPECT_TRUE(log.UnstableEntries().empty());
  EXPECT_EQ(log.LastIndex(), Index(2));
}

TEST(Inflights, WindowBoundsCountAndBytes) {
  Inflights in(3, 100);
  in.Add(Index(1), 10);
  in.Add(Index(2), 10);
  EXPECT_FALSE(in.Full());
  in.Add(Index(3), 10);
  EXPECT_TRUE(in.Full());
  in.FreeLE(Index(2));
  EXPECT_EQ(in.count(), 1u);
  in.Add(Index(4), 95);
  EXPECT_TRUE(in.Full());  // bytes
  in.FreeFirstOne();
  EXPECT_FALSE(in.Full());
}

TEST(Progress, ProbeBacksOffToHint) {
  Progress pr(Index(10), 4, 0, false);
  pr.match = Index(2);
  // A stale rejection (not for next - 1) is ignored.
  EXPECT_FALSE(pr.MaybeDecreaseTo(Index(5), Index(3)));
  EXPECT_TRUE(pr.MaybeDecreaseTo(Index(9), Index(4)));
  EXPECT_EQ(pr.next, Index(5));
  // Never below match + 1.
  EXPECT_TRUE(pr.MaybeDecreaseTo(Index(4), Index(0)));
  EXPECT_EQ(pr.next, Index(3));
}

TEST(Progress, ReplicateSendsOptimistically) {
  Progress pr(Index(5), 2, 0, false);
  pr.match = Index(4);
  pr.BecomeReplicate();
  pr.SentEntries(3, Index(7), 30);
  EXPECT_EQ(pr.next, Index(8));
  pr.SentEntries(1, Index(8), 10);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_TRUE(pr.MaybeUpdate(Index(7)));
  pr.inflights.FreeLE(Index(7));
  EXPECT_FALSE(pr.IsPaused());
  // A rejection above match sends it back to match + 1.
  EXPECT_TRUE(pr.MaybeDecreaseTo(Index(8), Index(7)));
  EXPECT_EQ(pr.next, Index(8));
}

}  // namespace
}  // namespace dolmen::raft
