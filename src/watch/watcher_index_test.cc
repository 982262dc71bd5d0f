// The index against a brute-force model: every watcher whose range contains the key, once.
#include "watch/watcher_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>

namespace dolmen::watch {
namespace {

std::string RandomKey(std::mt19937& rng) {
  std::string k;
  int len = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < len; ++i) k.push_back(static_cast<char>('a' + rng() % 4));
  return k;
}

TEST(WatchWatcherIndexTest, MatchesBruteForce) {
  std::mt19937 rng(7);
  std::vector<std::unique_ptr<Watcher>> all;
  WatcherIndex index;
  for (int i = 0; i < 400; ++i) {
    auto w = std::make_unique<Watcher>();
    w->id = i;
    std::string a = RandomKey(rng), b = RandomKey(rng);
    if (a > b) std::swap(a, b);
    switch (rng() % 3) {
      case 0:
        w->range = MakeKeyRange(a, "").value();
        break;
      case 1:
        w->range = MakeKeyRange(a, std::string(1, '\0')).value();
        break;
      default:
        if (a == b) b += "a";
        w->range = MakeKeyRange(a, b).value();
    }
    index.Add(w.get());
    all.push_back(std::move(w));
    if (i % 5 == 4) {  // remove some, so the tree is rebuilt between queries
      size_t victim = rng() % all.size();
      index.Remove(all[victim].get());
      all.erase(all.begin() + static_cast<long>(victim));
    }
    for (int q = 0; q < 5; ++q) {
      std::string key = RandomKey(rng);
      std::vector<Watcher*> got;
      index.Match(key, &got);
      std::vector<Watcher*> want;
      for (auto& x : all) {
        if (x->range.Contains(key)) want.push_back(x.get());
      }
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
      ASSERT_EQ(got, want) << "key " << key;
    }
  }
  EXPECT_EQ(index.size(), all.size());
}

}  // namespace
}  // namespace dolmen::watch
