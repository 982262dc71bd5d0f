#include "transport/url.h"

#include <gtest/gtest.h>

namespace dolmen::transport {
namespace {

TEST(TransportUrl, HttpUrlsBecomeTargets) {
  EXPECT_EQ(*PeerUrlToTarget("http://127.0.0.1:2380"), "127.0.0.1:2380");
  EXPECT_EQ(*PeerUrlToTarget("http://[::1]:2380"), "[::1]:2380");
  EXPECT_EQ(*PeerUrlToTarget("http://infra0.example.com:2380/"), "infra0.example.com:2380");
}

TEST(TransportUrl, RefusesWhatItCannotDial) {
  EXPECT_EQ(PeerUrlToTarget("https://a:1").status().code(), Code::kUnimplemented);
  EXPECT_EQ(PeerUrlToTarget("unix:///tmp/x").status().message(),
            "peer URL unix:///tmp/x: scheme must be http");
  EXPECT_EQ(PeerUrlToTarget("http://a").status().message(),
            "peer URL http://a: expected http://host:port");
  EXPECT_FALSE(PeerUrlToTarget("http://[::1]").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://a:x").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://a:99999").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://a:1/path").ok());
  EXPECT_FALSE(PeerUrlToTarget("http://:1").ok());
}

TEST(TransportUrl, IdsPrintAsHex) {
  EXPECT_EQ(IdHex(0), "0");
  EXPECT_EQ(IdHex(0x8e9e05c52164694dULL), "8e9e05c52164694d");
}

}  // namespace
}  // namespace dolmen::transport
