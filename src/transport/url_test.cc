#include "transport/url.h"

#include <gtest/gtest.h>

namespace dolmen::transport {
namespace {

TEST(TransportUrl, HttpUrlsBecomeTargets) {
  EXPECT_EQ(*PeerUrlToTarget("http://127.0.0.1:2380"), "127.0.0.1:2380");
  EXPECT_EQ(*PeerUrlToTarget("http://[::1]:2380"), "[::1]:2380");
  EXPECT_EQ(*PeerUrlToTarget("http://infra0.example.com:2380/"), "infra0.example.com:2380");
}

// etcd listens on and dials the socket named by the URL's host part, port included, in the
// working directory: unix://infra1:2380 is the file "infra1:2380".
TEST(TransportUrl, UnixUrlsBecomeSocketTargets) {
  EXPECT_EQ(*PeerUrlToTarget("unix://infra1:2380"), "unix:infra1:2380");
  EXPECT_EQ(*PeerUrlToTarget("unix://127.0.0.1:2380/"), "unix:127.0.0.1:2380");
  EXPECT_EQ(*PeerUrlToTarget("unix://sub.dir.name:0"), "unix:sub.dir.name:0");
}

TEST(TransportUrl, TlsUrlsBecomeTlsTargets) {
  EXPECT_EQ(*PeerUrlToDialTarget("https://127.0.0.2:2380"),
            (DialTarget{"127.0.0.2:2380", true, "127.0.0.2"}));
  EXPECT_EQ(*PeerUrlToDialTarget("https://[::1]:2380/"), (DialTarget{"[::1]:2380", true, "::1"}));
  EXPECT_EQ(*PeerUrlToDialTarget("https://infra0.example.com:2380"),
            (DialTarget{"infra0.example.com:2380", true, "infra0.example.com"}));
  EXPECT_EQ(*PeerUrlToDialTarget("unixs://m1:2380"), (DialTarget{"unix:m1:2380", true, ""}));
  EXPECT_EQ(*PeerUrlToDialTarget("http://a:1"), (DialTarget{"a:1", false, ""}));
}

TEST(TransportUrl, RefusesWhatItCannotDial) {
  EXPECT_EQ(PeerUrlToTarget("ftp://a:1").status().message(),
            "peer URL ftp://a:1: scheme must be http, https, unix or unixs");
  EXPECT_EQ(PeerUrlToTarget("a:1").status().message(),
            "peer URL a:1: scheme must be http, https, unix or unixs");
  EXPECT_EQ(PeerUrlToTarget("http://a").status().message(),
            "peer URL http://a: expected http://host:port");
  EXPECT_FALSE(PeerUrlToTarget("http://[::1]").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://a:x").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://a:99999").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://a:1/path").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://:1").ok());
}

// A path names no socket the way etcd does (etcd 3.4 refuses unix:///tmp/x: "URL address does
// not have the form host:port"); names gRPC would misread are refused too.
TEST(TransportUrl, RefusesUnixUrlsEtcdWouldNotDial) {
  EXPECT_EQ(PeerUrlToTarget("unix:///tmp/x").status().message(),
            "peer URL unix:///tmp/x: expected unix://host:port");
  EXPECT_EQ(PeerUrlToTarget("unix:///tmp/x").status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(PeerUrlToTarget("unix://a").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://a:1/x").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://a:x").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://:1").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://a?b:1").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://a#b:1").ok());
  EXPECT_FALSE(PeerUrlToTarget("unix://a%20b:1").ok());
}

TEST(TransportUrl, IdsPrintAsHex) {
  EXPECT_EQ(IdHex(0), "0");
  EXPECT_EQ(IdHex(0x8e9e05c52164694dULL), "8e9e05c52164694d");
}

}  // namespace
}  // namespace dolmen::transport
