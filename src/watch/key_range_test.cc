#include "watch/key_range.h"

#include <gtest/gtest.h>

namespace dolmen::watch {
namespace {

TEST(WatchKeyRangeTest, EtcdRangeEndRules) {
  auto one = MakeKeyRange("a", "");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one.value().Contains("a"));
  EXPECT_FALSE(one.value().Contains("ab"));

  auto from = MakeKeyRange("b", std::string(1, '\0'));
  ASSERT_TRUE(from.ok());
  EXPECT_FALSE(from.value().Contains("a"));
  EXPECT_TRUE(from.value().Contains("b"));
  EXPECT_TRUE(from.value().Contains("\xff\xff"));

  auto span = MakeKeyRange("b", "d");
  ASSERT_TRUE(span.ok());
  EXPECT_TRUE(span.value().Contains("c\xff"));
  EXPECT_FALSE(span.value().Contains("d"));

  // An empty key is "\0", the smallest key: with "\0" as range_end, every key.
  auto all = MakeKeyRange("", std::string(1, '\0'));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all.value().Contains(std::string(1, '\0')));
  EXPECT_TRUE(all.value().Contains("zzz"));
  auto zero = MakeKeyRange("", "");
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero.value().Contains(std::string(1, '\0')));
  EXPECT_FALSE(zero.value().Contains("a"));
}

TEST(WatchKeyRangeTest, EmptyRangeRefusedWithEtcdMessage) {
  for (auto [key, end] : {std::pair<std::string, std::string>{"b", "a"}, {"b", "b"}}) {
    auto r = MakeKeyRange(key, end);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), "mvcc: watcher range is empty");
  }
}

}  // namespace
}  // namespace dolmen::watch
