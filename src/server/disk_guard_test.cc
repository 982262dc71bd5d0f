// The disk-space guard against a fake free-space source and a manual clock: when it samples,
// what it admits, what it logs.
#include "server/disk_guard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dolmen::server {
namespace {

using std::chrono::milliseconds;

class DiskGuardTest : public ::testing::Test {
 protected:
  DiskGuardTest() {
    options_.reserve_bytes = 1000;
    options_.resample_interval = milliseconds(1000);
    options_.resample_bytes = 100;
  }
  DiskGuard Make() {
    return DiskGuard(
        options_,
        [this]() -> Result<uint64_t> {
          ++samples_;
          return free_;
        },
        &clock_, [this](const std::string& line) { log_.push_back(line); });
  }

  DiskGuardOptions options_;
  ManualClock clock_;
  Result<uint64_t> free_ = uint64_t{5000};
  int samples_ = 0;
  std::vector<std::string> log_;
};

TEST_F(DiskGuardTest, AdmitsAboveTheReserveAndSamplesOnlyWhenDue) {
  DiskGuard g = Make();
  EXPECT_TRUE(g.Admit(10));  // the first request samples
  EXPECT_EQ(samples_, 1);
  EXPECT_EQ(g.free_bytes(), 5000u);
  free_ = uint64_t{10};  // the disk fills up, unseen until the next sample is due
  EXPECT_TRUE(g.Admit(10));
  EXPECT_TRUE(g.Admit(0));
  EXPECT_EQ(samples_, 1);
  clock_.Advance(milliseconds(1000));  // due by time
  EXPECT_FALSE(g.Admit(10));
  EXPECT_EQ(samples_, 2);
  EXPECT_TRUE(g.low());
  EXPECT_TRUE(g.Admit(0));  // costs nothing (reads, deletes, compaction, alarms): always
}

TEST_F(DiskGuardTest, AdmittedBytesBringTheNextSampleForward) {
  DiskGuard g = Make();
  EXPECT_TRUE(g.Admit(60));
  free_ = uint64_t{999};
  EXPECT_TRUE(g.Admit(60));  // 60 admitted since the sample: not due yet
  EXPECT_EQ(samples_, 1);
  EXPECT_FALSE(g.Admit(1));  // 120 >= 100 admitted: samples although no time passed
  EXPECT_EQ(samples_, 2);
}

TEST_F(DiskGuardTest, BelowTheReserveEveryRequestSamplesSoFreedSpaceCountsAtOnce) {
  free_ = uint64_t{1};
  DiskGuard g = Make();
  g.SampleNow();
  EXPECT_TRUE(g.low());
  EXPECT_FALSE(g.Admit(1));
  EXPECT_FALSE(g.Admit(1));
  EXPECT_EQ(samples_, 3);
  free_ = uint64_t{1000};  // exactly the reserve is enough
  EXPECT_TRUE(g.Admit(1));
  EXPECT_FALSE(g.low());
  EXPECT_EQ(samples_, 4);
}

TEST_F(DiskGuardTest, LogsEachChangeOnceWithTheFreeBytesAndTheReserve) {
  DiskGuard g = Make();
  g.SampleNow();
  EXPECT_TRUE(log_.empty());
  free_ = uint64_t{700};
  for (int i = 0; i < 5; ++i) g.SampleNow();
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_NE(log_[0].find("700 bytes, below the reserve of 1000 bytes"), std::string::npos)
      << log_[0];
  free_ = uint64_t{2000};
  g.SampleNow();
  g.SampleNow();
  ASSERT_EQ(log_.size(), 2u);
  EXPECT_NE(log_[1].find("above the reserve"), std::string::npos) << log_[1];
}

TEST_F(DiskGuardTest, AnUnreadableFileSystemIsNotTakenForAFullOne) {
  free_ = Status(Code::kIoError, "statvfs: broken");
  DiskGuard g = Make();
  EXPECT_TRUE(g.Admit(10));
  g.SampleNow();
  EXPECT_FALSE(g.low());
  ASSERT_EQ(log_.size(), 1u);  // once
  EXPECT_NE(log_[0].find("statvfs: broken"), std::string::npos);
}

TEST_F(DiskGuardTest, AFileSystemWithoutALimitIsNotGuardedSilently) {
  free_ = Status(Code::kUnimplemented, "memory file system");
  DiskGuard g = Make();
  g.SampleNow();
  EXPECT_TRUE(g.Admit(1 << 30));
  EXPECT_TRUE(log_.empty());
}

TEST(DiskReserveTest, TwoSegmentsAndTheBackendMargin) {
  EXPECT_EQ(DiskReserveBytes(64ull << 20), 144ull << 20);
  EXPECT_EQ(DiskReserveBytes(1ull << 20), 18ull << 20);
}

}  // namespace
}  // namespace dolmen::server
