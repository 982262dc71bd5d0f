#include "embed/config.h"

#include <gtest/gtest.h>

namespace dolmen::embed {
namespace {

Status ParseAndValidate(std::vector<const char*> args, Config* c) {
  FlagSet flags;
  RegisterFlags(&flags, c);
  args.insert(args.begin(), "dolmen");
  std::vector<std::string> warnings;
  RETURN_IF_ERROR(flags.Parse(static_cast<int>(args.size()), args.data(), {}, &warnings));
  return Validate(flags, c);
}

TEST(ConfigTest, Defaults) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({}, &c).ok());
  EXPECT_EQ(c.data_dir, "default.dolmen");
  EXPECT_EQ(c.initial_cluster, "default=http://localhost:2380");
  ASSERT_EQ(c.listen_client.size(), 1u);
  EXPECT_EQ(c.listen_client[0].ListenAddress(), "localhost:2379");
  server::ServerConfig s = ToServerConfig(c);
  EXPECT_EQ(s.max_txn_ops, 128);
  EXPECT_EQ(s.max_request_bytes, 1572864u);
}

TEST(ConfigTest, LogFlags) {
  Config c;
  ASSERT_TRUE(
      ParseAndValidate(
          {"--log-level", "warn", "--log-outputs", "stdout,/tmp/x.log", "--logger", "zap"}, &c)
          .ok());
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.log_outputs, "stdout,/tmp/x.log");
  EXPECT_EQ(c.logger, "zap");
  Config bad;
  EXPECT_EQ(ParseAndValidate({"--log-level", "loud"}, &bad).message(),
            "invalid value \"loud\" for flag -log-level: unrecognized level: \"loud\"");
}

TEST(ConfigTest, DataDirFollowsName) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({"--name", "infra1"}, &c).ok());
  EXPECT_EQ(c.data_dir, "infra1.dolmen");
}

TEST(ConfigTest, BadUrlNamesTheFlag) {
  Config c;
  Status s = ParseAndValidate({"--listen-client-urls", "bad"}, &c);
  EXPECT_EQ(s.message(),
            "invalid value \"bad\" for flag -listen-client-urls: URL scheme must be http, "
            "https, unix, or unixs: bad");
}

TEST(ConfigTest, RefusesWhatItCannotHonour) {
  Config c;
  EXPECT_FALSE(ParseAndValidate({"--auto-tls"}, &c).ok());
  Config d;
  EXPECT_FALSE(ParseAndValidate({"--initial-cluster-state", "old"}, &d).ok());
  Config e;
  EXPECT_FALSE(ParseAndValidate({"--max-txn-ops", "0"}, &e).ok());
}

TEST(ConfigTest, WalSegmentBytesSetsTheSegmentAndTheDiskReserve) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({}, &c).ok());
  EXPECT_EQ(ToServerConfig(c).wal.segment_bytes, 64u << 20);
  Config d;
  ASSERT_TRUE(ParseAndValidate({"--experimental-wal-segment-bytes", "1048576"}, &d).ok());
  server::ServerConfig s = ToServerConfig(d);
  EXPECT_EQ(s.wal.segment_bytes, 1u << 20);
  EXPECT_EQ(s.disk_guard.reserve_bytes, 0u);  // the server derives it from the segment size
  Config e;
  EXPECT_FALSE(ParseAndValidate({"--experimental-wal-segment-bytes", "4096"}, &e).ok());
}

TEST(ConfigTest, WatchProgressNotifyIntervalIsAGoDurationAdjustedAsEtcd) {
  struct Case {
    const char* value;
    int64_t ms;
  };
  for (const Case& tc :
       {Case{"10m0s", 600000}, Case{"1.5s", 1500}, Case{"1h2m", 3720000}, Case{"250ms", 250},
        Case{"50ms", 100}, Case{"0", 600000}, Case{"-5s", 600000}, Case{"1000us", 100}}) {
    Config c;
    ASSERT_TRUE(
        ParseAndValidate({"--experimental-watch-progress-notify-interval", tc.value}, &c).ok())
        << tc.value;
    EXPECT_EQ(c.watch_progress_notify_interval_ms, tc.ms) << tc.value;
  }
  for (const char* bad : {"10", "5x", "", "1..2s", "s"}) {
    Config c;
    Status s = ParseAndValidate({"--experimental-watch-progress-notify-interval", bad}, &c);
    EXPECT_EQ(s.message(), std::string("invalid value \"") + bad +
                               "\" for flag -experimental-watch-progress-notify-interval: "
                               "parse error")
        << bad;
  }
}

TEST(ConfigTest, BackendBatchFlagsSetTheDriversBackendCommits) {
  Config defaults;
  ASSERT_TRUE(ParseAndValidate({}, &defaults).ok());
  server::ServerConfig d = ToServerConfig(defaults);
  EXPECT_EQ(d.driver.backend_commit_interval, std::chrono::milliseconds(100));
  EXPECT_EQ(d.driver.backend_commit_entries, 10000u);

  Config c;
  ASSERT_TRUE(
      ParseAndValidate({"--backend-batch-interval", "25ms", "--backend-batch-limit", "500"}, &c)
          .ok());
  server::ServerConfig s = ToServerConfig(c);
  EXPECT_EQ(s.driver.backend_commit_interval, std::chrono::milliseconds(25));
  EXPECT_EQ(s.driver.backend_commit_entries, 500u);

  Config bad;
  EXPECT_FALSE(ParseAndValidate({"--backend-batch-interval", "-1s"}, &bad).ok());
  Config bad_limit;
  Status s2 = ParseAndValidate({"--backend-batch-limit", "-3"}, &bad_limit);
  EXPECT_EQ(s2.message(), "--backend-batch-limit must not be negative");
}

// etcd's corruption-check flags (docs/corruption.md), their defaults and ETCD_* variables.
TEST(ConfigTest, CorruptCheckFlagsAsEtcd) {
  {
    Config c;
    ASSERT_TRUE(ParseAndValidate({}, &c).ok());
    server::ServerConfig s = ToServerConfig(c);
    EXPECT_FALSE(s.initial_corrupt_check);
    EXPECT_EQ(s.corrupt_check_interval.count(), 0);  // off
    EXPECT_FALSE(s.compact_hash_check_enabled);
    EXPECT_EQ(s.compact_hash_check_interval.count(), 60000);
  }
  {
    Config c;
    ASSERT_TRUE(ParseAndValidate(
                    {"--experimental-initial-corrupt-check", "--experimental-corrupt-check-time",
                     "2m30s", "--experimental-compact-hash-check-enabled=true",
                     "--experimental-compact-hash-check-time", "1.5s"},
                    &c)
                    .ok());
    server::ServerConfig s = ToServerConfig(c);
    EXPECT_TRUE(s.initial_corrupt_check);
    EXPECT_EQ(s.corrupt_check_interval.count(), 150000);
    EXPECT_TRUE(s.compact_hash_check_enabled);
    EXPECT_EQ(s.compact_hash_check_interval.count(), 1500);
  }
  {
    Config c;
    FlagSet flags;
    RegisterFlags(&flags, &c);
    const char* argv[] = {"dolmen"};
    std::vector<std::string> warnings;
    ASSERT_TRUE(flags
                    .Parse(1, argv,
                           {"ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true",
                            "ETCD_EXPERIMENTAL_CORRUPT_CHECK_TIME=5s"},
                           &warnings)
                    .ok());
    EXPECT_TRUE(c.experimental_initial_corrupt_check);
    EXPECT_EQ(c.experimental_corrupt_check_time_ms, 5000);
    EXPECT_TRUE(warnings.empty());
  }
  Config c;
  EXPECT_EQ(ParseAndValidate({"--experimental-corrupt-check-time", "-1s"}, &c).message(),
            "invalid value \"-1s\" for flag -experimental-corrupt-check-time: must not be "
            "negative");
  EXPECT_EQ(ParseAndValidate({"--experimental-compact-hash-check-time", "0s"}, &c).message(),
            "invalid value \"0s\" for flag -experimental-compact-hash-check-time: must be "
            "positive");
}

TEST(ConfigTest, UnixPeerUrlsAsEtcdTakesThem) {
  Config c;
  Status s = ParseAndValidate(
      {"--name", "m1", "--listen-peer-urls", "unix://m1:2380", "--initial-advertise-peer-urls",
       "unix://m1:2380", "--initial-cluster", "m1=unix://m1:2380,m2=unix://m2:2380"},
      &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.listen_peer[0].ListenAddress(), "unix:m1:2380");
  EXPECT_EQ(ToServerConfig(c).peer_urls, std::vector<std::string>{"unix://m1:2380"});
  ASSERT_EQ(c.initial_members.size(), 2u);
  EXPECT_EQ(c.initial_members[1].peer_urls, std::vector<std::string>{"unix://m2:2380"});

  Config d;
  EXPECT_EQ(ParseAndValidate({"--listen-peer-urls", "unix:///tmp/m1"}, &d).message(),
            "invalid value \"unix:///tmp/m1\" for flag -listen-peer-urls: URL address does not "
            "have the form \"host:port\": unix:///tmp/m1");
  Config e;
  EXPECT_EQ(ParseAndValidate({"--initial-advertise-peer-urls", "unix://m1:1/x"}, &e).message(),
            "invalid value \"unix://m1:1/x\" for flag -initial-advertise-peer-urls: URL must not "
            "contain a path: unix://m1:1/x");
  Config f;
  EXPECT_EQ(ParseAndValidate({"--initial-cluster", "m1=unix:///tmp/m1"}, &f).message(),
            "URL address does not have the form \"host:port\": unix:///tmp/m1");
  Config g;  // a client URL may still name a path
  EXPECT_TRUE(ParseAndValidate({"--listen-client-urls", "unix:///tmp/c"}, &g).ok());
}

}  // namespace
}  // namespace dolmen::embed
