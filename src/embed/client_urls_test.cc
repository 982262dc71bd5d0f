// etcd 3.5's --listen-client-http-urls: parsing, etcd's refusals, and which URL carries what.
#include "embed/client_urls.h"

#include <gtest/gtest.h>

#include "embed/config.h"
#include "embed/config_file.h"
#include "embed/config_test_support.h"

namespace dolmen::embed {
namespace {

using ::dolmen::embed::testing::ParseAndValidate;
using transport::ClientTraffic;

TEST(ClientUrlsTest, WithoutHttpOnlyUrlsEveryClientUrlCarriesBoth) {
  Config c;
  ASSERT_TRUE(
      ParseAndValidate({"--listen-client-urls", "http://127.0.0.1:2379,unix:///tmp/c"}, &c).ok());
  EXPECT_TRUE(c.listen_client_http.empty());
  const auto urls = ClientListenerUrls(c.listen_client, c.listen_client_http);
  ASSERT_EQ(urls.size(), 2u);
  for (const auto& u : urls) {
    EXPECT_EQ(u.traffic, ClientTraffic::kGrpcAndHttp) << u.text;
    EXPECT_TRUE(u.serves_grpc() && u.serves_http()) << u.text;
  }
  EXPECT_STREQ(TrafficName(urls[0].traffic), "grpc+http");
}

TEST(ClientUrlsTest, HttpOnlyUrlsTakeTheHttpAwayFromTheClientUrls) {
  Config c;
  ASSERT_TRUE(ParseAndValidate(
                  {"--listen-client-urls", "http://127.0.0.1:2379", "--listen-client-http-urls",
                   "http://127.0.0.1:2382,http://127.0.0.1:2382,http://10.0.0.1:2382"},
                  &c)
                  .ok());
  // etcd keeps unique URLs: the repeated one is one listener.
  ASSERT_EQ(c.listen_client_http.size(), 2u);
  const auto urls = ClientListenerUrls(c.listen_client, c.listen_client_http);
  ASSERT_EQ(urls.size(), 3u);
  EXPECT_EQ(urls[0].text, "http://127.0.0.1:2379");
  EXPECT_EQ(urls[0].traffic, ClientTraffic::kGrpcOnly);
  EXPECT_TRUE(urls[0].serves_grpc());
  EXPECT_FALSE(urls[0].serves_http());
  EXPECT_EQ(urls[1].target, "127.0.0.1:2382");
  EXPECT_EQ(urls[1].traffic, ClientTraffic::kHttpOnly);
  EXPECT_FALSE(urls[1].serves_grpc());
  EXPECT_TRUE(urls[1].serves_http());
  EXPECT_EQ(urls[2].target, "10.0.0.1:2382");
  EXPECT_STREQ(TrafficName(urls[0].traffic), "grpc");
  EXPECT_STREQ(TrafficName(urls[1].traffic), "http");
}

TEST(ClientUrlsTest, OneAddressCannotBeBothWithEtcdsMessage) {
  Config a;
  EXPECT_EQ(ParseAndValidate({"--listen-client-urls", "http://127.0.0.1:2379",
                              "--listen-client-http-urls", "http://127.0.0.1:2379"},
                             &a)
                .message(),
            "cannot bind both --listen-client-urls and --listen-client-http-urls on the same "
            "url http://127.0.0.1:2379");
  // etcd keys listeners by address: the scheme does not make it another socket.
  Config b;
  EXPECT_EQ(ParseAndValidate({"--listen-client-urls", "http://127.0.0.1:2379",
                              "--listen-client-http-urls", "https://127.0.0.1:2379", "--auto-tls"},
                             &b)
                .message(),
            "cannot bind both --listen-client-urls and --listen-client-http-urls on the same "
            "url https://127.0.0.1:2379");
  Config c;
  EXPECT_EQ(ParseAndValidate({"--listen-client-urls", "unix:///tmp/s", "--listen-client-http-urls",
                              "unix:///tmp/s"},
                             &c)
                .message(),
            "cannot bind both --listen-client-urls and --listen-client-http-urls on the same "
            "url unix:///tmp/s");
}

TEST(ClientUrlsTest, BadValuesAreRefusedNamingTheFlag) {
  Config a;
  EXPECT_EQ(ParseAndValidate({"--listen-client-http-urls", "127.0.0.1:2382"}, &a).message(),
            "invalid value \"127.0.0.1:2382\" for flag -listen-client-http-urls: URL scheme must "
            "be http, https, unix, or unixs: 127.0.0.1:2382");
  Config b;
  EXPECT_EQ(ParseAndValidate({"--listen-client-http-urls", "http://127.0.0.1"}, &b).message(),
            "invalid value \"http://127.0.0.1\" for flag -listen-client-http-urls: URL address "
            "does not have the form \"host:port\": http://127.0.0.1");
  Config c;
  EXPECT_EQ(ParseAndValidate({"--listen-client-http-urls", "http://127.0.0.1:2382,"}, &c).message(),
            "invalid value \"http://127.0.0.1:2382,\" for flag -listen-client-http-urls: URL "
            "scheme must be http, https, unix, or unixs: ");
}

TEST(ClientUrlsTest, HttpsHttpOnlyUrlNeedsACertificateOrAutoTls) {
  Config a;
  EXPECT_EQ(ParseAndValidate({"--listen-client-http-urls", "https://127.0.0.1:2382"}, &a).message(),
            "TLS key/cert (--cert-file, --key-file) must be provided for client url "
            "https://127.0.0.1:2382 with HTTPS scheme");
  Config b;
  ASSERT_TRUE(
      ParseAndValidate({"--listen-client-http-urls", "https://127.0.0.1:2382", "--auto-tls"}, &b)
          .ok());
  ASSERT_EQ(b.listen_client_http.size(), 1u);
  EXPECT_TRUE(b.listen_client_http[0].secure());
}

TEST(ClientUrlsTest, EtcdEnvironmentVariableSetsIt) {
  Config c;
  FlagSet flags;
  RegisterFlags(&flags, &c);
  const char* argv[] = {"dolmen"};
  std::vector<std::string> warnings;
  ASSERT_TRUE(
      flags.Parse(1, argv, {"ETCD_LISTEN_CLIENT_HTTP_URLS=http://127.0.0.1:2390"}, &warnings).ok());
  EXPECT_TRUE(warnings.empty());
  ASSERT_TRUE(Validate(flags, &c).ok());
  ASSERT_EQ(c.listen_client_http.size(), 1u);
  EXPECT_EQ(c.listen_client_http[0].text, "http://127.0.0.1:2390");
}

TEST(ClientUrlsTest, ConfigFileKeySetsIt) {
  Config c;
  FlagSet flags;
  RegisterFlags(&flags, &c);
  std::vector<std::string> warnings;
  ASSERT_TRUE(LoadConfigText("listen-client-urls: http://127.0.0.1:2379\n"
                             "listen-client-http-urls: http://127.0.0.1:2391,unix:///tmp/h\n",
                             "etcd.conf.yml", &flags, &warnings)
                  .ok());
  ASSERT_TRUE(Validate(flags, &c).ok());
  ASSERT_EQ(c.listen_client_http.size(), 2u);
  EXPECT_EQ(c.listen_client_http[1].ListenAddress(), "unix:/tmp/h");
  Config bad;
  FlagSet bad_flags;
  RegisterFlags(&bad_flags, &bad);
  EXPECT_EQ(LoadConfigText("name: x\nlisten-client-http-urls: 127.0.0.1:2391\n", "etcd.conf.yml",
                           &bad_flags, &warnings)
                .message(),
            "invalid value \"127.0.0.1:2391\" for key \"listen-client-http-urls\" "
            "(etcd.conf.yml:2): URL scheme must be http, https, unix, or unixs: 127.0.0.1:2391");
}

}  // namespace
}  // namespace dolmen::embed
