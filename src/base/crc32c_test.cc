#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace dolmen {
namespace {

TEST(Crc32cTest, KnownVectors) {
  // Standard check value for CRC-32C over "123456789".
  EXPECT_EQ(crc32c::Value("123456789"), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c::Value(zeros), 0x8A9136AAu);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string a = "hello ", b = "world";
  EXPECT_EQ(crc32c::Extend(crc32c::Value(a), b.data(), b.size()), crc32c::Value(a + b));
}

}  // namespace
}  // namespace dolmen
