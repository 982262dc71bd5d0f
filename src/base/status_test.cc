#include "base/status.h"

#include <gtest/gtest.h>

namespace dolmen {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return OkStatus();
}

TEST(StatusTest, OkAndError) {
  EXPECT_TRUE(OkStatus().ok());
  Status s = Corruption("segment 3 offset 40");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.ToString(), "Corruption: segment 3 offset 40");
}

TEST(StatusTest, ResultPropagates) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

TEST(StatusDeathTest, ValueOfErrorDies) {
  Result<int> r = NotFound("x");
  EXPECT_DEATH((void)r.value(), "CHECK failed");
}

}  // namespace
}  // namespace dolmen
