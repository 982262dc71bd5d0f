#include "http/access_policy.h"

#include <gtest/gtest.h>

#include "http/client_port.h"

namespace dolmen::http {
namespace {

TEST(AccessPolicyTest, DefaultsAllowEveryOriginAndHost) {
  AccessPolicy p;
  EXPECT_TRUE(p.OriginAllowed("http://anything:1"));
  EXPECT_TRUE(p.HostAllowed("rebound.example"));
  p.cors.clear();
  p.host_whitelist.clear();
  EXPECT_TRUE(p.OriginAllowed("*"));
  EXPECT_TRUE(p.HostAllowed("x"));
}

TEST(AccessPolicyTest, ListsAllowOnlyTheirMembers) {
  AccessPolicy p;
  p.cors = {"http://ui.example:8080"};
  p.host_whitelist = {"etcd.example", "127.0.0.1"};
  EXPECT_FALSE(p.OriginAllowed("*"));
  EXPECT_TRUE(p.OriginAllowed("http://ui.example:8080"));
  EXPECT_FALSE(p.OriginAllowed("http://ui.example"));
  EXPECT_FALSE(p.OriginAllowed(""));
  EXPECT_TRUE(p.HostAllowed("127.0.0.1"));
  EXPECT_FALSE(p.HostAllowed("evil.example"));
}

TEST(AccessPolicyTest, HostOfHeaderSplitsAsGoDoes) {
  EXPECT_EQ(HostOfHeader("etcd.example:2379"), "etcd.example");
  EXPECT_EQ(HostOfHeader("etcd.example"), "etcd.example");
  EXPECT_EQ(HostOfHeader("[::1]:2379"), "::1");
  EXPECT_EQ(HostOfHeader("[::1]"), "[::1]");
  EXPECT_EQ(HostOfHeader("::1"), "::1");
  EXPECT_EQ(HostOfHeader("host:"), "host");
  EXPECT_EQ(HostOfHeader(""), "");
}

Response Ok(const Request&) {
  Response r;
  r.body = "ok";
  return r;
}

std::string HeaderOf(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<none>";
}

TEST(ClientPortAccessTest, RefusedHostGets421WithoutCorsOnPlaintextOnly) {
  AccessPolicy p;
  p.host_whitelist = {"etcd.example"};
  Request req;
  req.method = "GET";
  req.path = "/health";
  req.headers["host"] = "rebound.example:2379";
  Response plain = MakeClientPortHandler(Ok, nullptr, p, /*tls=*/false)(req);
  EXPECT_EQ(plain.status, 421);
  EXPECT_NE(plain.body.find("--host-whitelist \"rebound.example\""), std::string::npos);
  EXPECT_EQ(HeaderOf(plain, "Access-Control-Allow-Origin"), "<none>");

  Response secure = MakeClientPortHandler(Ok, nullptr, p, /*tls=*/true)(req);
  EXPECT_EQ(secure.status, 200);
  EXPECT_EQ(secure.body, "ok");

  req.headers["host"] = "etcd.example:2379";
  EXPECT_EQ(MakeClientPortHandler(Ok, nullptr, p, false)(req).status, 200);
}

TEST(ClientPortAccessTest, CorsEchoesOnlyAListedOrigin) {
  AccessPolicy p;
  p.cors = {"http://ui.example:8080"};
  Handler h = MakeClientPortHandler(Ok, nullptr, p, false);
  Request req;
  req.method = "OPTIONS";
  req.path = "/v3/kv/range";
  req.headers["origin"] = "http://ui.example:8080";
  Response listed = h(req);
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(HeaderOf(listed, "Access-Control-Allow-Origin"), "http://ui.example:8080");
  req.headers["origin"] = "http://other.example:8080";
  EXPECT_EQ(HeaderOf(h(req), "Access-Control-Allow-Origin"), "<none>");

  Handler any = MakeClientPortHandler(Ok, nullptr, AccessPolicy{}, false);
  EXPECT_EQ(HeaderOf(any(req), "Access-Control-Allow-Origin"), "*");
}

}  // namespace
}  // namespace dolmen::http
