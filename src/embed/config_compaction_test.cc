// --auto-compaction-mode, --auto-compaction-retention and --force-new-cluster: parsed as etcd
// parses them (embed/etcd.go parseCompactionRetention, embed/config.go Validate).
#include <gtest/gtest.h>

#include "embed/config.h"
#include "embed/config_test_support.h"

namespace dolmen::embed {
namespace {

using server::AutoCompactionMode;

using ::dolmen::embed::testing::ParseAndValidate;

TEST(AutoCompactionConfigTest, OffByDefault) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({}, &c).ok());
  EXPECT_FALSE(c.auto_compaction.enabled());
  EXPECT_EQ(c.auto_compaction.mode, AutoCompactionMode::kPeriodic);
  EXPECT_FALSE(ToServerConfig(c).auto_compaction.enabled());
  EXPECT_FALSE(ToServerConfig(c).force_new_cluster);
}

TEST(AutoCompactionConfigTest, BareNumberIsHoursInPeriodicMode) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({"--auto-compaction-retention", "72"}, &c).ok());
  EXPECT_EQ(c.auto_compaction.retention_time, std::chrono::hours(72));
  EXPECT_TRUE(ToServerConfig(c).auto_compaction.enabled());
}

TEST(AutoCompactionConfigTest, GoDurationInPeriodicMode) {
  Config c;
  ASSERT_TRUE(
      ParseAndValidate({"--auto-compaction-retention=1h30m", "--auto-compaction-mode=periodic"}, &c)
          .ok());
  EXPECT_EQ(c.auto_compaction.retention_time, std::chrono::minutes(90));
  Config d;
  ASSERT_TRUE(ParseAndValidate({"--auto-compaction-retention=2s"}, &d).ok());
  EXPECT_EQ(d.auto_compaction.retention_time, std::chrono::seconds(2));
}

TEST(AutoCompactionConfigTest, RevisionModeCountsRevisions) {
  Config c;
  ASSERT_TRUE(ParseAndValidate(
                  {"--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"}, &c)
                  .ok());
  EXPECT_EQ(c.auto_compaction.mode, AutoCompactionMode::kRevision);
  EXPECT_EQ(c.auto_compaction.retention_revisions, 1000);
  EXPECT_EQ(ToServerConfig(c).auto_compaction.revision_check_interval, std::chrono::minutes(5));
  // etcd reads a duration in revision mode as its nanoseconds.
  Config d;
  ASSERT_TRUE(ParseAndValidate(
                  {"--auto-compaction-mode", "revision", "--auto-compaction-retention", "1ms"}, &d)
                  .ok());
  EXPECT_EQ(d.auto_compaction.retention_revisions, 1000000);
}

TEST(AutoCompactionConfigTest, ZeroIsOffInBothModes) {
  Config c;
  ASSERT_TRUE(ParseAndValidate(
                  {"--auto-compaction-mode", "revision", "--auto-compaction-retention", "0"}, &c)
                  .ok());
  EXPECT_FALSE(c.auto_compaction.enabled());
  Config d;
  ASSERT_TRUE(ParseAndValidate({"--auto-compaction-retention", "0s"}, &d).ok());
  EXPECT_FALSE(d.auto_compaction.enabled());
}

TEST(AutoCompactionConfigTest, BadValuesAreRefusedClearly) {
  Config a;
  EXPECT_EQ(ParseAndValidate({"--auto-compaction-mode", "hourly"}, &a).message(),
            "unknown auto-compaction-mode \"hourly\"");
  Config b;
  EXPECT_EQ(ParseAndValidate({"--auto-compaction-retention", "abc"}, &b).message(),
            "error parsing CompactionRetention: time: invalid duration \"abc\"");
  Config c;
  EXPECT_EQ(ParseAndValidate({"--auto-compaction-retention", "-1h"}, &c).message(),
            "--auto-compaction-retention -1h is negative");
  Config d;
  EXPECT_EQ(ParseAndValidate({"--auto-compaction-retention", "99999999999"}, &d).message(),
            "--auto-compaction-retention 99999999999 is too long");
}

TEST(ForceNewClusterConfigTest, FlagReachesTheServer) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({"--force-new-cluster"}, &c).ok());
  EXPECT_TRUE(ToServerConfig(c).force_new_cluster);
}

}  // namespace
}  // namespace dolmen::embed
