#include "base/coding.h"

#include <gtest/gtest.h>

namespace dolmen {
namespace {

TEST(CodingTest, FixedRoundTrip) {
  std::string s;
  coding::PutFixed32(&s, 0xDEADBEEF);
  coding::PutFixed64(&s, 0x0123456789ABCDEFull);
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(coding::DecodeFixed32(s.data()), 0xDEADBEEFu);
  EXPECT_EQ(coding::DecodeFixed64(s.data() + 4), 0x0123456789ABCDEFull);
}

TEST(CodingTest, BigEndianSortsNumerically) {
  std::string a, b;
  coding::PutBigEndian64(&a, 255);
  coding::PutBigEndian64(&b, 256);
  EXPECT_LT(a, b);
  EXPECT_EQ(coding::DecodeBigEndian64(b.data()), 256u);
}

TEST(CodingTest, VarintRoundTripAndTruncation) {
  std::string s;
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, ~0ull}) coding::PutVarint64(&s, v);
  std::string_view in = s;
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, ~0ull}) {
    auto got = coding::GetVarint64(&in);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, v);
  }
  EXPECT_TRUE(in.empty());
  std::string_view truncated("\x80\x80", 2);
  EXPECT_FALSE(coding::GetVarint64(&truncated).has_value());
}

TEST(CodingTest, LengthPrefixedRejectsShortInput) {
  std::string s;
  coding::PutLengthPrefixed(&s, "abc");
  std::string_view in = s;
  EXPECT_EQ(*coding::GetLengthPrefixed(&in), "abc");
  std::string_view bad(
      "\x05"
      "ab",
      3);
  EXPECT_FALSE(coding::GetLengthPrefixed(&bad).has_value());
}

}  // namespace
}  // namespace dolmen
