// The --discovery-* flags (etcd 3.6's v3 discovery): defaults, checks with etcd 3.6's texts, the
// config file's top-level keys and etcd 3.6's discovery-config block.
#include "embed/v3_bootstrap.h"

#include <gtest/gtest.h>

#include "embed/config_file.h"
#include "embed/config_test_support.h"

namespace dolmen::embed {
namespace {

using ::dolmen::embed::testing::ParseAndValidate;

TEST(V3DiscoveryFlags, DefaultsAreEtcd36s) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({}, &c).ok());
  EXPECT_EQ(c.discovery_dial_timeout_ms, 2000);
  EXPECT_EQ(c.discovery_request_timeout_ms, 5000);
  EXPECT_EQ(c.discovery_keepalive_time_ms, 2000);
  EXPECT_EQ(c.discovery_keepalive_timeout_ms, 6000);
  EXPECT_TRUE(c.discovery_insecure_transport);
  EXPECT_FALSE(c.discovery_insecure_skip_tls_verify);
  EXPECT_FALSE(c.auto_promote_learners);
}

TEST(V3DiscoveryFlags, TokenAndEndpointsGiveATemporaryClusterOfThisMember) {
  Config c;
  ASSERT_TRUE(ParseAndValidate({"--name", "m1", "--initial-advertise-peer-urls",
                                "http://127.0.0.1:2380", "--discovery-token", "t",
                                "--discovery-endpoints", "http://127.0.0.1:2379,127.0.0.2:2379",
                                "--discovery-dial-timeout", "1.5s", "--discovery-user", "root"},
                               &c)
                  .ok());
  EXPECT_EQ(c.initial_cluster, "m1=http://127.0.0.1:2380");
  EXPECT_EQ(c.discovery_dial_timeout_ms, 1500);
  EXPECT_EQ(c.discovery_user, "root");
}

TEST(V3DiscoveryFlags, RefusesWhatEtcd36Refuses) {
  const std::string conflict =
      "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
      "\"discovery-endpoints\" or \"discovery-srv\"";
  struct Case {
    std::vector<const char*> args;
    std::string message;
  };
  for (const Case& k :
       std::vector<Case>{{{"--discovery-token", "t"},
                          "both --discovery-token and --discovery-endpoints must be set"},
                         {{"--discovery-endpoints", "h:1"},
                          "both --discovery-token and --discovery-endpoints must be set"},
                         {{"--discovery-token", "t", "--discovery-endpoints", "h:1,"},
                          "--discovery-endpoints must not contain empty endpoints"},
                         {{"--discovery-token", "t", "--discovery-endpoints", "h:1",
                           "--initial-cluster", "default=http://localhost:2381"},
                          conflict},
                         {{"--discovery-token", "t", "--discovery-endpoints", "h:1",
                           "--discovery-srv", "example.com"},
                          conflict}}) {
    Config c;
    EXPECT_EQ(ParseAndValidate(k.args, &c).message(), k.message) << k.args[0];
  }
  Config c;
  EXPECT_NE(
      ParseAndValidate({"--discovery-request-timeout", "soon"}, &c).message().find("parse error"),
      std::string::npos);
}

Status LoadYaml(const std::string& text, Config* c) {
  FlagSet flags;
  RegisterFlags(&flags, c);
  std::vector<std::string> warnings;
  RETURN_IF_ERROR(LoadConfigText(text, "etcd.conf.yml", &flags, &warnings));
  return Validate(flags, c);
}

TEST(V3DiscoveryFlags, ConfigFileTakesEtcd36sDiscoveryConfigBlock) {
  Config c;
  Status s = LoadYaml(
      "name: m1\n"
      "discovery-config:\n"
      "  token: tok\n"
      "  client:\n"
      "    endpoints: [http://127.0.0.1:2379, http://127.0.0.2:2379]\n"
      "    dial-timeout: 3000000000\n"
      "    request-timeout: 4000000000\n"
      "    secure:\n"
      "      insecure-transport: false\n"
      "      cacert: /etc/ca.pem\n"
      "    auth:\n"
      "      username: root\n"
      "      password: pw\n",
      &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.discovery_token, "tok");
  EXPECT_EQ(c.discovery_endpoints, "http://127.0.0.1:2379,http://127.0.0.2:2379");
  EXPECT_EQ(c.discovery_dial_timeout_ms, 3000);
  EXPECT_EQ(c.discovery_request_timeout_ms, 4000);
  EXPECT_FALSE(c.discovery_insecure_transport);
  EXPECT_EQ(c.discovery_cacert, "/etc/ca.pem");
  EXPECT_EQ(c.discovery_user, "root");
  EXPECT_EQ(c.discovery_password, "pw");

  Config top;
  ASSERT_TRUE(LoadYaml("discovery-token: t\ndiscovery-endpoints: h:1\n"
                       "discovery-keepalive-time: 1000000000\nauto-promote-learners: true\n",
                       &top)
                  .ok());
  EXPECT_EQ(top.discovery_keepalive_time_ms, 1000);
  EXPECT_TRUE(top.auto_promote_learners);

  Config bad;
  EXPECT_NE(LoadYaml("discovery-config:\n  client:\n    auth:\n      token: x\n", &bad)
                .message()
                .find("unknown key \"client.auth.token\" in discovery-config"),
            std::string::npos);
}

}  // namespace
}  // namespace dolmen::embed
