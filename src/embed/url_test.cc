#include "embed/url.h"

#include <gtest/gtest.h>

namespace dolmen::embed {
namespace {

TEST(UrlTest, ParsesListsAndAddresses) {
  auto urls = ParseUrls("http://127.0.0.1:2379,https://[::1]:2380,unix:///tmp/s.sock");
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  ASSERT_EQ(urls->size(), 3u);
  EXPECT_EQ((*urls)[0].ListenAddress(), "127.0.0.1:2379");
  EXPECT_EQ((*urls)[1].ListenAddress(), "[::1]:2380");
  EXPECT_TRUE((*urls)[1].secure());
  EXPECT_EQ((*urls)[2].ListenAddress(), "unix:/tmp/s.sock");
}

TEST(UrlTest, RefusesWithEtcdMessages) {
  EXPECT_EQ(ParseUrl("bad").status().message(),
            "URL scheme must be http, https, unix, or unixs: bad");
  EXPECT_EQ(ParseUrl("ftp://a:1").status().message(),
            "URL scheme must be http, https, unix, or unixs: ftp://a:1");
  EXPECT_EQ(ParseUrl("http://a").status().message(),
            "URL address does not have the form \"host:port\": http://a");
  EXPECT_EQ(ParseUrl("http://a:1/x").status().message(),
            "URL must not contain a path: http://a:1/x");
  EXPECT_FALSE(ParseUrl("http://a:x").ok());
  EXPECT_FALSE(ParseUrl("http://a:99999").ok());
  EXPECT_FALSE(ParseUrls("http://a:1,").ok());
}

// Peer URLs as etcd 3.4 takes them: a unix socket named "host:port" (in the working directory),
// no path; client URLs keep taking a path.
TEST(UrlTest, PeerUnixUrlsNameTheirSocketAsEtcdDoes) {
  auto urls = ParsePeerUrls("unix://infra1:2380,http://127.0.0.1:2380,unixs://infra1:2381/");
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  EXPECT_EQ((*urls)[0].ListenAddress(), "unix:infra1:2380");
  EXPECT_EQ((*urls)[0].text, "unix://infra1:2380");
  EXPECT_EQ((*urls)[1].ListenAddress(), "127.0.0.1:2380");
  EXPECT_EQ((*urls)[2].ListenAddress(), "unix:infra1:2381");
  EXPECT_TRUE((*urls)[2].secure());
  EXPECT_EQ(ParsePeerUrl("unix:///tmp/x").status().message(),
            "URL address does not have the form \"host:port\": unix:///tmp/x");
  EXPECT_EQ(ParsePeerUrl("unix://m1").status().message(),
            "URL address does not have the form \"host:port\": unix://m1");
  EXPECT_EQ(ParsePeerUrl("unix://m1:1/x").status().message(),
            "URL must not contain a path: unix://m1:1/x");
  EXPECT_FALSE(ParsePeerUrl("unix://m1:x").ok());
  EXPECT_FALSE(ParsePeerUrl("unix://:1").ok());
  EXPECT_FALSE(ParsePeerUrl("unix://").ok());
  EXPECT_EQ(ParsePeerUrl("ftp://a:1").status().message(),
            "URL scheme must be http, https, unix, or unixs: ftp://a:1");
  EXPECT_TRUE(ParseUrl("unix:///tmp/x").ok());  // as a client URL
}

}  // namespace
}  // namespace dolmen::embed
