#include "wal/decode_fuzz.h"

#include <gtest/gtest.h>

#include <random>

namespace dolmen::wal {
namespace {

TEST(WalDecodeFuzzTest, ValidSegmentDecodes) {
  EXPECT_TRUE(FuzzDecodeSegment(ExampleSegment()).ok());
}

TEST(WalDecodeFuzzTest, RandomBytesOnlyReturnStatus) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    FuzzDecodeSegment(bytes).IgnoreError();
  }
}

TEST(WalDecodeFuzzTest, MutatedSegmentsOnlyReturnStatus) {
  const std::string base = ExampleSegment();
  std::mt19937_64 rng(2);
  int failures = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = base;
    int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 4) {
        case 0:
          bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
          break;
        case 1:
          bytes[rng() % bytes.size()] = static_cast<char>(rng());
          break;
        case 2:
          bytes.resize(rng() % (bytes.size() + 1));
          if (bytes.empty()) bytes.push_back(0x01);
          break;
        case 3: {
          size_t pos = rng() % bytes.size();
          std::string junk(rng() % 16, static_cast<char>(rng()));
          bytes = bytes.substr(0, pos) + junk + bytes.substr(pos);
          break;
        }
      }
    }
    Status s = FuzzDecodeSegment(bytes);
    if (!s.ok()) {
      ++failures;
      EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    }
  }
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace dolmen::wal
