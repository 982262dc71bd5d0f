#include "mvcc/key_index.h"

#include <gtest/gtest.h>

namespace dolmen::mvcc {
namespace {

RevisionPair R(int64_t main, int64_t sub = 0) { return {main, sub}; }

// History used below: put 2, put 4, delete 6, put 8, put 10.
KeyIndex Sample() {
  KeyIndex ki;
  ki.Put(R(2));
  ki.Put(R(4));
  ki.Tombstone(R(6));
  ki.Put(R(8));
  ki.Put(R(10, 1));
  return ki;
}

TEST(MvccKeyIndexTest, GetFollowsGenerations) {
  KeyIndex ki = Sample();
  EXPECT_FALSE(ki.Get(1).has_value());
  auto at3 = ki.Get(3);
  ASSERT_TRUE(at3.has_value());
  EXPECT_EQ(at3->rev, R(2));
  EXPECT_EQ(at3->created, Revision(2));
  EXPECT_EQ(at3->version, 1);
  EXPECT_EQ(ki.Get(5)->version, 2);
  EXPECT_FALSE(ki.Get(6).has_value());
  EXPECT_FALSE(ki.Get(7).has_value());
  auto at9 = ki.Get(9);
  EXPECT_EQ(at9->created, Revision(8));
  EXPECT_EQ(at9->version, 1);
  EXPECT_EQ(ki.Get(100)->rev, R(10, 1));
  EXPECT_EQ(ki.Get(100)->version, 2);
}

TEST(MvccKeyIndexTest, CompactKeepsVisibleVersion) {
  KeyIndex ki = Sample();
  std::set<RevisionPair> keep;
  EXPECT_FALSE(ki.Compact(5, &keep));
  EXPECT_EQ(keep, (std::set<RevisionPair>{R(4)}));
  EXPECT_EQ(ki.Get(5)->version, 2);  // versions survive trimming
  keep.clear();
  EXPECT_FALSE(ki.Compact(6, &keep));  // deleted at 6: the first generation goes
  EXPECT_TRUE(keep.empty());
  EXPECT_FALSE(ki.Get(7).has_value());
  EXPECT_EQ(ki.Get(10)->version, 2);
  keep.clear();
  EXPECT_FALSE(ki.Compact(10, &keep));
  EXPECT_EQ(keep, (std::set<RevisionPair>{R(10, 1)}));
}

TEST(MvccKeyIndexTest, CompactAfterDeleteEmptiesKey) {
  KeyIndex ki;
  ki.Put(R(2));
  ki.Tombstone(R(3));
  std::set<RevisionPair> keep, would;
  ki.Keep(3, &would);
  EXPECT_TRUE(would.empty());
  EXPECT_FALSE(ki.Compact(2, &keep));
  EXPECT_TRUE(ki.Compact(3, &keep));
  EXPECT_EQ(keep, (std::set<RevisionPair>{R(2)}));
}

TEST(MvccKeyIndexTest, RestoreUsesStoredCreateAndVersion) {
  KeyIndex ki;
  ki.RestorePut(R(7), Revision(3), 4);  // versions before 7 were compacted
  ki.Put(R(9));
  EXPECT_EQ(ki.Get(8)->created, Revision(3));
  EXPECT_EQ(ki.Get(8)->version, 4);
  EXPECT_EQ(ki.Get(9)->version, 5);
  EXPECT_TRUE(ki.RestoreTombstone(R(11)));
  EXPECT_FALSE(ki.RestoreTombstone(R(10)));
  EXPECT_FALSE(ki.Get(12).has_value());
}

}  // namespace
}  // namespace dolmen::mvcc
