#include "embed/config_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "embed/config.h"

namespace dolmen::embed {
namespace {

// Every key and value of etcd v3.4's etcd.conf.yml.sample, in its order and with its empty
// values, quoting and flow list (the comments are left out): tests/data/etcd-3.4.conf.yml, which
// tests/integration/config_file_test.py starts etcd and dolmen from as well.
std::string EtcdSample() {
  std::ifstream in(DOLMEN_ETCD_SAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Status Load(const std::string& text, Config* c, std::vector<std::string>* warnings = nullptr) {
  FlagSet flags;
  RegisterFlags(&flags, c);
  std::vector<std::string> ignored;
  RETURN_IF_ERROR(LoadConfigText(text, "etcd.conf.yml", &flags, warnings ? warnings : &ignored));
  return Validate(flags, c);
}

TEST(ConfigFileTest, LogKeys) {
  Config c;
  ASSERT_TRUE(Load("logger: zap\nlog-level: warn\nlog-outputs: [stdout, /tmp/m.log]\n", &c).ok());
  EXPECT_EQ(c.logger, "zap");
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.log_outputs, "stdout,/tmp/m.log");  // as --log-outputs=stdout,/tmp/m.log
  Config bad;
  EXPECT_EQ(Load("name: x\nlog-level: loud\n", &bad).message(),
            "invalid value \"loud\" for key \"log-level\" (etcd.conf.yml:2): unrecognized level: "
            "\"loud\"");
}

TEST(ConfigFileTest, EtcdSampleLoads) {
  Config c;
  std::vector<std::string> warnings;
  const std::string sample = EtcdSample();
  ASSERT_FALSE(sample.empty()) << "cannot read " << DOLMEN_ETCD_SAMPLE_CONFIG;
  Status s = Load(sample, &c, &warnings);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.name, "default");
  EXPECT_EQ(c.data_dir, "default.dolmen");  // empty keeps the default, as etcd's null does
  EXPECT_EQ(c.snapshot_count, 10000u);
  EXPECT_EQ(c.initial_cluster, "default=http://localhost:2380");
  EXPECT_FALSE(c.strict_reconfig_check);
  EXPECT_EQ(c.log_outputs, "stderr");
  ASSERT_EQ(c.listen_client.size(), 1u);
  EXPECT_EQ(c.listen_client[0].ListenAddress(), "localhost:2379");
  // auto-compaction-retention: "1" in periodic mode is one hour.
  EXPECT_EQ(c.auto_compaction.mode, server::AutoCompactionMode::kPeriodic);
  EXPECT_EQ(c.auto_compaction.retention_time, std::chrono::hours(1));
  EXPECT_FALSE(c.force_new_cluster);
  // enable-pprof differs from etcd's default: a flag accepted with no effect, said so at start.
  EXPECT_TRUE(warnings.empty());
  EXPECT_TRUE(
      std::any_of(c.startup_warnings.begin(), c.startup_warnings.end(), [](const std::string& w) {
        return w.rfind("--enable-pprof is accepted with no effect: ", 0) == 0;
      }));
}

TEST(ConfigFileTest, KeysSetWhatTheFlagsSet) {
  Config c;
  Status s = Load(R"(name: infra1
listen-client-urls: http://127.0.0.1:2379,http://127.0.0.1:22379
Heartbeat-Interval: 50
election-timeout: 500
experimental-watch-progress-notify-interval: 2000000000
initial-cluster: infra1=http://127.0.0.1:2380
experimental-initial-corrupt-check: true
experimental-corrupt-check-time: 3000000000
experimental-compact-hash-check-enabled: true
experimental-compact-hash-check-time: 500000000
)",
                  &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.name, "infra1");
  EXPECT_EQ(c.listen_client.size(), 2u);
  EXPECT_EQ(c.heartbeat_interval_ms, 50u);  // keys match case-insensitively, as in etcd
  EXPECT_EQ(c.watch_progress_notify_interval_ms, 2000);  // nanoseconds, as etcd's JSON
  EXPECT_TRUE(c.experimental_initial_corrupt_check);
  EXPECT_EQ(c.experimental_corrupt_check_time_ms, 3000);
  EXPECT_TRUE(c.experimental_compact_hash_check_enabled);
  EXPECT_EQ(c.experimental_compact_hash_check_time_ms, 500);
}

TEST(ConfigFileTest, UnknownKeyIsRefusedWithItsLine) {
  Config c;
  EXPECT_EQ(Load("name: a\n\nlisten-clients-urls: http://127.0.0.1:2379\n", &c).message(),
            "etcd.conf.yml:3: unknown key \"listen-clients-urls\"");
  Config d;
  EXPECT_EQ(Load("client-transport-security:\n  cert: x\n", &d).message(),
            "etcd.conf.yml:2: unknown key \"cert\" in client-transport-security");
}

TEST(ConfigFileTest, BadValuesGetTheFlagsMessage) {
  Config c;
  EXPECT_EQ(Load("name: a\nlisten-client-urls: bad\n", &c).message(),
            "invalid value \"bad\" for key \"listen-client-urls\" (etcd.conf.yml:2): URL scheme "
            "must be http, https, unix, or unixs: bad");
  Config d;
  EXPECT_EQ(Load("snapshot-count: lots\n", &d).message(),
            "invalid value \"lots\" for key \"snapshot-count\" (etcd.conf.yml:1): parse error");
  Config e;
  EXPECT_EQ(Load("name: [a, b]\n", &e).message(),
            "etcd.conf.yml:1: key \"name\": expected a single value, got a list");
  Config f;
  EXPECT_EQ(Load("log-outputs: stderr\n", &f).message(),
            "etcd.conf.yml:1: key \"log-outputs\": expected a list, as etcd takes it, got a "
            "value");
  Config g;
  EXPECT_EQ(Load("name: [a\n", &g).message().rfind("etcd.conf.yml:", 0), 0u);
}

TEST(ConfigFileTest, TlsBlocksSetTheTlsFlags) {
  Config c;
  ASSERT_TRUE(Load("client-transport-security:\n  cert-file: /s.pem\n  key-file: /s.key\n"
                   "  trusted-ca-file: /ca.pem\n  client-cert-auth: true\n"
                   "cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
                   &c)
                  .ok());
  EXPECT_EQ(c.cert_file, "/s.pem");
  EXPECT_EQ(c.key_file, "/s.key");
  EXPECT_EQ(c.trusted_ca_file, "/ca.pem");
  EXPECT_TRUE(c.client_cert_auth);
  // The peer block sets the --peer-* flags.
  Config d;
  ASSERT_TRUE(Load("peer-transport-security:\n  cert-file: /p.pem\n  key-file: /p.key\n"
                   "  trusted-ca-file: /pca.pem\n  client-cert-auth: true\n  auto-tls: true\n",
                   &d)
                  .ok());
  EXPECT_EQ(d.peer_cert_file, "/p.pem");
  EXPECT_EQ(d.peer_key_file, "/p.key");
  EXPECT_EQ(d.peer_trusted_ca_file, "/pca.pem");
  EXPECT_TRUE(d.peer_client_cert_auth);
  EXPECT_TRUE(d.peer_auto_tls);
  EXPECT_EQ(c.cipher_suites, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  // etcd 3.5's dialing pair, in either block.
  Config g;
  ASSERT_TRUE(Load("client-transport-security:\n  client-cert-file: /c.pem\n"
                   "  client-key-file: /c.key\n"
                   "peer-transport-security:\n  client-cert-file: /pc.pem\n"
                   "  client-key-file: /pc.key\n",
                   &g)
                  .ok());
  EXPECT_EQ(g.client_cert_file, "/c.pem");
  EXPECT_EQ(g.client_key_file, "/c.key");
  EXPECT_EQ(g.peer_client_cert_file, "/pc.pem");
  EXPECT_EQ(g.peer_client_key_file, "/pc.key");
  Config e;
  EXPECT_EQ(Load("client-transport-security:\n  client-cert-auth: maybe\n", &e).message(),
            "invalid value \"maybe\" for key \"client-transport-security.client-cert-auth\" "
            "(etcd.conf.yml:2): parse error");
  Config f;
  EXPECT_EQ(Load("client-transport-security:\n  crl-file: /x\n", &f).message(),
            "etcd.conf.yml:2: unknown key \"crl-file\" in client-transport-security");
}

TEST(ConfigFileTest, EtcdOnlyKeysThatMatterAreRefused) {
  Config c;
  // A key of a flag dolmen refuses gets the flag's refusal (docs/flags.md).
  EXPECT_EQ(Load("name: a\nproxy: on\n", &c).message(),
            "--proxy is not supported by dolmen: the v2 proxy is not provided (etcd 3.6 removed "
            "it); instead, point clients at the members, or run etcd's grpc-proxy");
  Config d;
  EXPECT_TRUE(Load("force-new-cluster: false\nproxy: off\n", &d).ok());
}

TEST(ConfigFileTest, FileThatCannotBeReadIsNamed) {
  Config c;
  FlagSet flags;
  RegisterFlags(&flags, &c);
  std::vector<std::string> warnings;
  EXPECT_EQ(LoadConfigFile("/nonexistent/etcd.conf.yml", &flags, &warnings).message(),
            "cannot read config file /nonexistent/etcd.conf.yml");
}

}  // namespace
}  // namespace dolmen::embed
