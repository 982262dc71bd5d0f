#include "embed/config.h"

#include <gtest/gtest.h>

#include "embed/answered_flags.h"
#include "embed/config_test_support.h"

namespace dolmen::embed {
namespace {

using ::dolmen::embed::testing::ParseAndValidate;

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

// docs/auth.md: simple tokens only; etcd's fallbacks for a bad bcrypt cost and a TTL of 0.
TEST(ConfigTest, AuthFlags) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({"--bcrypt-cost", "4", "--auth-token-ttl", "7"}, &c).ok());
  server::ServerConfig s = ToServerConfig(c);
  EXPECT_EQ(s.bcrypt_cost, 4);
  EXPECT_EQ(s.auth_token_ttl, std::chrono::seconds(7));
  Config fallback;
  ASSERT_TRUE(
      ParseAndValidate(
          {"--bcrypt-cost", "40", "--auth-token-ttl", "0", "--auth-token", "simple,x=y"}, &fallback)
          .ok());
  s = ToServerConfig(fallback);
  EXPECT_EQ(s.bcrypt_cost, 10);
  EXPECT_EQ(s.auth_token_ttl, std::chrono::seconds(300));
  for (const char* refused : {"jwt,pub-key=a,priv-key=b,sign-method=RS256", "foo", "simple,x"}) {
    Config bad;
    Status st = ParseAndValidate({"--auth-token", refused}, &bad);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << refused;
    EXPECT_EQ(st.message().rfind("auth: invalid auth options", 0), 0u) << st.message();
  }
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
  Config d;
  EXPECT_FALSE(ParseAndValidate({"--initial-cluster-state", "old"}, &d).ok());
  Config e;
  EXPECT_FALSE(ParseAndValidate({"--max-txn-ops", "0"}, &e).ok());
}

TEST(ConfigTest, TlsFlagsAreCheckedWithEtcdsMessages) {
  Config a;
  EXPECT_EQ(ParseAndValidate({"--listen-client-urls", "https://127.0.0.1:2379"}, &a).message(),
            "TLS key/cert (--cert-file, --key-file) must be provided for client url "
            "https://127.0.0.1:2379 with HTTPS scheme");
  Config b;
  EXPECT_EQ(ParseAndValidate({"--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"}, &b)
                .message(),
            "min version (TLS1.3) is greater than max version (TLS1.2)");
  Config c;
  EXPECT_EQ(ParseAndValidate({"--tls-min-version", "TLS1.1"}, &c).message(),
            "unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)");
  Config d;
  EXPECT_EQ(ParseAndValidate({"--cipher-suites", "TLS_FAST"}, &d).message(),
            "unexpected TLS cipher suite \"TLS_FAST\"");
  Config e;
  EXPECT_EQ(ParseAndValidate({"--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                              "--tls-min-version", "TLS1.3"},
                             &e)
                .message(),
            "cipher suites cannot be configured when only TLS1.3 is enabled");
  Config f;
  EXPECT_EQ(ParseAndValidate({"--cert-file", "/s.pem"}, &f).message(),
            "KeyFile and CertFile must both be present[key: , cert: /s.pem]");
  Config g;
  ASSERT_TRUE(ParseAndValidate({"--listen-client-urls", "https://127.0.0.1:2379", "--cert-file",
                                "/s.pem", "--key-file", "/s.key", "--client-cert-auth"},
                               &g)
                  .ok());
  // Peer TLS: etcd's listener message for an https peer URL without a certificate, the
  // mutually exclusive allowed identities, and the pair rule.
  Config h;
  EXPECT_EQ(ParseAndValidate({"--listen-peer-urls", "https://127.0.0.1:2380"}, &h).message(),
            "cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented "
            "(give --peer-cert-file and --peer-key-file, or --peer-auto-tls)");
  Config i;
  EXPECT_EQ(
      ParseAndValidate({"--peer-cert-allowed-cn", "a", "--peer-cert-allowed-hostname", "b"}, &i)
          .message(),
      "AllowedCN and AllowedHostname are mutually exclusive (cn=\"a\", hostname=\"b\")");
  Config j;
  EXPECT_EQ(ParseAndValidate({"--peer-key-file", "/p.key"}, &j).message(),
            "KeyFile and CertFile must both be present[key: /p.key, cert: ]");
  Config k;
  EXPECT_TRUE(
      ParseAndValidate({"--listen-peer-urls", "https://127.0.0.1:2380",
                        "--initial-advertise-peer-urls", "https://127.0.0.1:2380",
                        "--peer-auto-tls", "--experimental-peer-skip-client-san-verification"},
                       &k)
          .ok());
  EXPECT_TRUE(k.peer_skip_client_san_verification);
  // Auto-TLS certificate validity: etcd's message for 0, and a typo-sized value refused before
  // any certificate is written.
  Config l;
  EXPECT_EQ(ParseAndValidate({"--auto-tls", "--self-signed-cert-validity", "0"}, &l).message(),
            "selfSignedCertValidity is invalid,it should be greater than 0");
  Config m;
  EXPECT_EQ(ParseAndValidate({"--peer-auto-tls", "--self-signed-cert-validity", "10000000000"}, &m)
                .message(),
            "selfSignedCertValidity 10000000000 is too large: at most 100 (years)");
}

// etcd serves an https --listen-metrics-urls URL with the client TLS flags (embed/etcd.go
// serveMetrics): without a certificate its listener refuses, and --auto-tls provides one.
TEST(ConfigTest, HttpsMetricsUrlsNeedTheClientCertificate) {
  Config a;
  EXPECT_EQ(ParseAndValidate({"--listen-metrics-urls", "https://127.0.0.1:2381"}, &a).message(),
            "cannot listen on TLS for 127.0.0.1:2381: KeyFile and CertFile are not presented "
            "(give --cert-file and --key-file, or --auto-tls)");
  Config b;
  ASSERT_TRUE(ParseAndValidate({"--listen-metrics-urls", "https://127.0.0.1:2381,http://[::1]:2382",
                                "--cert-file", "/s.pem", "--key-file", "/s.key"},
                               &b)
                  .ok());
  ASSERT_EQ(b.listen_metrics.size(), 2u);
  EXPECT_TRUE(b.listen_metrics[0].secure());
  EXPECT_FALSE(b.listen_metrics[1].secure());
  Config c;
  EXPECT_TRUE(
      ParseAndValidate({"--listen-metrics-urls", "https://127.0.0.1:2381", "--auto-tls"}, &c).ok());
  Config d;
  EXPECT_EQ(ParseAndValidate({"--listen-metrics-urls", "unix:///tmp/m.sock"}, &d).message(),
            "--listen-metrics-urls: unix:///tmp/m.sock: only http and https URLs are served for "
            "metrics");
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

TEST(ConfigTest, DiscoverySrvReplacesTheInitialClusterAndRefusesBoth) {
  Config c;
  ASSERT_TRUE(
      ParseAndValidate({"--discovery-srv", "example.com", "--discovery-srv-name", "prod"}, &c)
          .ok());
  EXPECT_EQ(c.discovery_srv, "example.com");
  EXPECT_EQ(c.discovery_srv_name, "prod");
  EXPECT_EQ(c.discovery_srv_wait_ms, 60000);
  EXPECT_TRUE(c.initial_cluster.empty());  // filled from DNS at start (srv_bootstrap.h)
  EXPECT_TRUE(c.initial_members.empty());
  Config both;
  EXPECT_EQ(
      ParseAndValidate(
          {"--discovery-srv", "example.com", "--initial-cluster", "a=http://10.0.0.1:2380"}, &both)
          .message(),
      "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
      "\"discovery\" or \"discovery-srv\"");
  Config name_only;
  EXPECT_FALSE(ParseAndValidate({"--discovery-srv-name", "prod"}, &name_only).ok());
  Config wait;
  ASSERT_TRUE(ParseAndValidate(
                  {"--discovery-srv", "x.test", "--experimental-discovery-srv-wait", "0s"}, &wait)
                  .ok());
  EXPECT_EQ(wait.discovery_srv_wait_ms, 0);
  Config bad_wait;
  EXPECT_FALSE(ParseAndValidate({"--experimental-discovery-srv-wait", "-1s"}, &bad_wait).ok());
}

TEST(ConfigTest, TuningFlagDefaultsAreEtcds) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({}, &c).ok());
  EXPECT_EQ(c.max_concurrent_streams, 4294967295u);
  EXPECT_EQ(c.grpc_keepalive_min_time_ms, 5000);
  EXPECT_FALSE(c.grpc_keepalive_min_time_explicit);
  EXPECT_EQ(c.grpc_keepalive_interval_ms, 7200000);
  EXPECT_EQ(c.grpc_keepalive_timeout_ms, 20000);
  EXPECT_EQ(c.warning_apply_duration_ns, 100000000);
  EXPECT_EQ(c.warning_unary_request_duration_ns, 300000000);
  server::ServerConfig s = ToServerConfig(c);
  EXPECT_TRUE(s.pre_vote);
  EXPECT_TRUE(s.driver.initial_election_tick_advance);
  EXPECT_EQ(s.max_learners, 1);
  EXPECT_EQ(s.driver.catch_up_entries, 5000u);
  EXPECT_FALSE(s.backend_no_sync);
  EXPECT_EQ(s.wal_dir, "");
  EXPECT_TRUE(c.startup_warnings.empty());
}

TEST(ConfigTest, TuningFlagsReachTheServer) {
  Config c;
  Status st = ParseAndValidate({"--pre-vote=false",
                                "--initial-election-tick-advance=false",
                                "--max-learners",
                                "3",
                                "--snapshot-catchup-entries",
                                "77",
                                "--experimental-warning-apply-duration",
                                "1ns",
                                "--warning-unary-request-duration",
                                "1.5ms",
                                "--grpc-keepalive-min-time",
                                "10s",
                                "--grpc-keepalive-interval",
                                "200ms",
                                "--grpc-keepalive-timeout",
                                "1m",
                                "--max-concurrent-streams",
                                "2",
                                "--wal-dir",
                                "/tmp/w",
                                "--unsafe-no-fsync"},
                               &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  server::ServerConfig s = ToServerConfig(c);
  EXPECT_FALSE(s.pre_vote);
  EXPECT_FALSE(s.driver.initial_election_tick_advance);
  EXPECT_EQ(s.max_learners, 3);
  EXPECT_EQ(s.driver.catch_up_entries, 77u);
  EXPECT_EQ(s.driver.warning_apply_duration.count(), 1);
  EXPECT_EQ(c.warning_unary_request_duration_ns, 1500000);
  EXPECT_EQ(c.grpc_keepalive_min_time_ms, 10000);
  EXPECT_TRUE(c.grpc_keepalive_min_time_explicit);
  EXPECT_EQ(c.grpc_keepalive_interval_ms, 200);
  EXPECT_EQ(c.grpc_keepalive_timeout_ms, 60000);
  EXPECT_EQ(c.max_concurrent_streams, 2u);
  EXPECT_EQ(s.wal_dir, "/tmp/w");
  EXPECT_TRUE(s.backend_no_sync);
  ASSERT_EQ(c.startup_warnings.size(), 1u);
  EXPECT_NE(c.startup_warnings[0].find("--unsafe-no-fsync"), std::string::npos);
}

TEST(ConfigTest, Etcd35NamesSetTheSameValuesAndBothAtOnceAreRefused) {
  Config c;
  ASSERT_TRUE(ParseAndValidate(
                  {"--experimental-max-learners", "2", "--experimental-snapshot-catchup-entries",
                   "9", "--experimental-warning-unary-request-duration", "2s"},
                  &c)
                  .ok());
  EXPECT_EQ(ToServerConfig(c).max_learners, 2);
  EXPECT_EQ(ToServerConfig(c).driver.catch_up_entries, 9u);
  EXPECT_EQ(c.warning_unary_request_duration_ns, 2000000000);
  Config d;
  EXPECT_EQ(
      ParseAndValidate({"--experimental-max-learners", "2", "--max-learners", "3"}, &d).message(),
      "both --experimental-max-learners and --max-learners flags are set. Use only "
      "--max-learners");
}

TEST(ConfigTest, TuningFlagsRefuseBadValues) {
  struct Case {
    std::vector<const char*> args;
    const char* message;
  };
  for (const Case& tc : {
           Case{{"--max-learners", "0"}, "--max-learners must be at least 1"},
           Case{{"--max-concurrent-streams", "0"}, "--max-concurrent-streams must be positive"},
           Case{{"--snapshot-catchup-entries", "0"}, "--snapshot-catchup-entries must be positive"},
           Case{{"--grpc-keepalive-timeout", "-1s"},
                "invalid value \"-1s\" for flag -grpc-keepalive-timeout: must not be negative"},
           Case{{"--grpc-keepalive-interval", "5"},
                "invalid value \"5\" for flag -grpc-keepalive-interval: parse error"},
           Case{{"--pre-vote=maybe"}, "invalid value \"maybe\" for flag -pre-vote: parse error"},
       }) {
    Config c;
    EXPECT_EQ(ParseAndValidate(tc.args, &c).message(), tc.message) << tc.args[0];
  }
}

TEST(ConfigTest, GoDurationsToTheNanosecond) {
  EXPECT_EQ(*ParseGoDurationNs("1ns"), 1);
  EXPECT_EQ(*ParseGoDurationNs("2h45m"), (2 * 3600 + 45 * 60) * 1000000000ll);
  EXPECT_EQ(*ParseGoDurationNs("1.5us"), 1500);
  EXPECT_EQ(*ParseGoDurationMs("10m0s"), 600000);
  EXPECT_FALSE(ParseGoDurationNs("3 s").ok());
}

// Every flag dolmen answers without implementing it: a no-effect flag starts (with a note), a
// refused flag is refused with its one line unless it is given its harmless value.
TEST(ConfigTest, AnsweredFlagsAreAcceptedOrRefused) {
  auto sample = [](const AnsweredFlag& f) -> std::string {
    switch (f.kind) {
      case AnsweredFlag::Kind::kBool:
        return f.default_text == "true" ? "false" : "true";
      case AnsweredFlag::Kind::kUint:
      case AnsweredFlag::Kind::kInt:
        return "7";
      case AnsweredFlag::Kind::kDuration:
        return "3s";
      case AnsweredFlag::Kind::kText:
        // The last of the values etcd accepts (any text when etcd takes any).
        return f.valid_values.empty() ? "something"
                                      : f.valid_values.substr(f.valid_values.rfind(',') + 1);
      case AnsweredFlag::Kind::kIgnored:
        return "x";
    }
    return "";
  };
  for (const AnsweredFlag& f : AnsweredFlags()) {
    const std::string arg = "--" + f.name + "=" + sample(f);
    Config c;
    Status s = ParseAndValidate({arg.c_str()}, &c);
    if (f.refused) {
      EXPECT_EQ(s.message(), RefusalMessage(f)) << arg;
      EXPECT_EQ(s.message().rfind("--" + f.name + " is not supported by dolmen: ", 0), 0u);
      const std::string harmless = "--" + f.name + "=" + f.harmless;
      Config d;
      EXPECT_TRUE(ParseAndValidate({harmless.c_str()}, &d).ok()) << harmless;
    } else {
      ASSERT_TRUE(s.ok()) << arg << ": " << s.ToString();
      ASSERT_EQ(c.startup_warnings.size(), 1u) << arg;
      EXPECT_EQ(c.startup_warnings[0], "--" + f.name + " is accepted with no effect: " + f.reason);
    }
  }
  Config bad_number;
  EXPECT_EQ(ParseAndValidate({"--max-wals", "many"}, &bad_number).message(),
            "invalid value \"many\" for flag -max-wals: parse error");
  Config bad_phase;
  EXPECT_EQ(ParseAndValidate({"--v2-deprecation", "soon"}, &bad_phase).message(),
            "invalid value \"soon\" for flag -v2-deprecation: valid values include "
            "not-yet,write-only,write-only-drop-data,gone");
  Config legacy;  // etcd's ignored flags take no value
  EXPECT_TRUE(ParseAndValidate({"--snapshot", "--v"}, &legacy).ok());
}

}  // namespace
}  // namespace dolmen::embed
