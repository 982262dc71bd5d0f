#include "discovery/srv_cluster.h"

#include <gtest/gtest.h>

#include <map>

namespace dolmen::discovery {
namespace {

// A DNS of maps: SRV answers by "_service._proto.domain", addresses by host name.
struct FakeDns {
  std::map<std::string, std::vector<SrvRecord>> srv;
  std::map<std::string, std::string> hosts;  // "m1.example.test." -> "10.0.0.1"
  std::vector<std::string> asked;

  SrvResolver resolver() {
    SrvResolver r;
    r.lookup_srv = [this](const std::string& service, const std::string& proto,
                          const std::string& domain) -> Result<std::vector<SrvRecord>> {
      const std::string name = "_" + service + "._" + proto + "." + domain;
      asked.push_back(name);
      auto it = srv.find(name);
      if (it == srv.end()) return NotFound("lookup " + name + " on 127.0.0.1:53: no such host");
      return it->second;
    };
    r.resolve_tcp = [this](const std::string& host,
                           const std::string& port) -> Result<std::string> {
      if (!host.empty() && isdigit(static_cast<unsigned char>(host[0]))) return host + ":" + port;
      std::string fqdn = host.back() == '.' ? host : host + ".";
      auto it = hosts.find(fqdn);
      if (it == hosts.end()) return NotFound("lookup " + host + ": no such host");
      return it->second + ":" + port;
    };
    return r;
  }
};

PeerUrl Http(const std::string& host, const std::string& port = "2380") {
  return PeerUrl{"http", host, port, "http://" + host + ":" + port};
}

std::vector<SrvRecord> Targets(std::initializer_list<std::string> names, uint16_t port = 2380) {
  std::vector<SrvRecord> out;
  for (const auto& n : names) out.push_back(SrvRecord{0, 0, port, n});
  return out;
}

class SrvClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dns_.hosts = {{"m1.example.test.", "10.0.0.1"},
                  {"m2.example.test.", "10.0.0.2"},
                  {"m3.example.test.", "10.0.0.3"}};
  }
  Result<std::vector<std::string>> Discover(const std::string& name,
                                            std::vector<PeerUrl> advertised,
                                            const std::string& service_name = "") {
    SrvQuery q{"example.test", service_name, name, std::move(advertised)};
    logged_.clear();
    return DiscoverSrvCluster(q, dns_.resolver(),
                              [this](const std::string& line) { logged_.push_back(line); });
  }
  FakeDns dns_;
  std::vector<std::string> logged_;
};

TEST_F(SrvClusterTest, FindsItselfByResolvedAddressAndNamesTheOthersInRecordOrder) {
  dns_.srv["_etcd-server._tcp.example.test"] =
      Targets({"m3.example.test.", "m2.example.test.", "m1.example.test."});
  auto found = Discover("infra2", {Http("10.0.0.2")});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, (std::vector<std::string>{"0=http://m3.example.test:2380",
                                              "infra2=http://m2.example.test:2380",
                                              "1=http://m1.example.test:2380"}));
  EXPECT_EQ(logged_.front(),
            "got bootstrap from DNS for etcd-server at 0=http://m3.example.test:2380");
  EXPECT_EQ(dns_.asked, (std::vector<std::string>{"_etcd-server-ssl._tcp.example.test",
                                                  "_etcd-server._tcp.example.test"}));
}

TEST_F(SrvClusterTest, AnAdvertisedHostNameMatchesTheSameAddress) {
  dns_.hosts["node-b.internal."] = "10.0.0.2";
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"m1.example.test.", "m2.example.test."});
  auto found = Discover("b", {Http("node-b.internal")});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ((*found)[1], "b=http://m2.example.test:2380");
}

TEST_F(SrvClusterTest, ThePortIsPartOfTheMatch) {
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"m1.example.test."}, 2381);
  auto found = Discover("m1", {Http("10.0.0.1", "2380")});
  EXPECT_EQ(found.status().code(), Code::kNotFound);
  EXPECT_EQ(found.status().message(), "cannot find local etcd member \"m1\" in SRV records");
}

TEST_F(SrvClusterTest, ServiceNameSuffixesBothServices) {
  dns_.srv["_etcd-server-prod._tcp.example.test"] = Targets({"m1.example.test."});
  auto found = Discover("m1", {Http("10.0.0.1")}, "prod");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(dns_.asked, (std::vector<std::string>{"_etcd-server-ssl-prod._tcp.example.test",
                                                  "_etcd-server-prod._tcp.example.test"}));
  EXPECT_EQ(SrvService("etcd-client", "prod", true), "etcd-client-ssl-prod");
  EXPECT_EQ(SrvService("etcd-client", "", false), "etcd-client");
}

TEST_F(SrvClusterTest, NoRecordsAtAllGiveBothLookupErrorsInEtcdsWords) {
  auto found = Discover("m1", {Http("10.0.0.1")});
  EXPECT_EQ(found.status().code(), Code::kNotFound);
  EXPECT_EQ(found.status().message(),
            "error querying DNS SRV records for _etcd-server-ssl lookup "
            "_etcd-server-ssl._tcp.example.test on 127.0.0.1:53: no such host; "
            "error querying DNS SRV records for _etcd-server lookup "
            "_etcd-server._tcp.example.test on 127.0.0.1:53: no such host");
}

TEST_F(SrvClusterTest, TargetsThatDoNotResolveAreSkipped) {
  dns_.srv["_etcd-server._tcp.example.test"] =
      Targets({"gone.example.test.", "m1.example.test.", "m2.example.test."});
  auto found = Discover("m1", {Http("10.0.0.1")});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, (std::vector<std::string>{"m1=http://m1.example.test:2380",
                                              "0=http://m2.example.test:2380"}));
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"gone.example.test."});
  found = Discover("m1", {Http("10.0.0.1")});
  EXPECT_NE(found.status().message().find(
                "error querying DNS SRV records for _etcd-server lookup gone.example.test."),
            std::string::npos)
      << found.status().message();
}

TEST_F(SrvClusterTest, SchemeMismatchWithTheOwnRecordIsEtcdsError) {
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"m1.example.test."});
  PeerUrl https{"https", "10.0.0.1", "2380", "https://10.0.0.1:2380"};
  auto found = Discover("m1", {https});
  EXPECT_NE(found.status().message().find(
                "error querying DNS SRV records for _etcd-server bootstrap at "
                "http://m1.example.test:2380 from DNS for etcd-server has scheme mismatch with "
                "expected peer https://10.0.0.1:2380"),
            std::string::npos)
      << found.status().message();
  // With another member's record beside it, the mismatched one is dropped and the member is
  // missing from the result, as in etcd.
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"m1.example.test.", "m2.example.test."});
  found = Discover("m1", {https});
  EXPECT_EQ(found.status().message(), "cannot find local etcd member \"m1\" in SRV records");
}

TEST_F(SrvClusterTest, SecureAndPlainRecordsAreMergedAndTemporaryNamesRestartPerService) {
  dns_.srv["_etcd-server-ssl._tcp.example.test"] =
      Targets({"m1.example.test.", "m2.example.test."});
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"m3.example.test."});
  PeerUrl https{"https", "10.0.0.1", "2380", "https://10.0.0.1:2380"};
  auto found = Discover("m1", {https});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, (std::vector<std::string>{"m1=https://m1.example.test:2380",
                                              "0=https://m2.example.test:2380",
                                              "0=http://m3.example.test:2380"}));
}

TEST_F(SrvClusterTest, HttpsRecordsGiveHttpsPeerUrlsAndTheMemberFindsItselfAmongThem) {
  // etcd's discovery/srv.go: the -ssl records are asked first and give https URLs; a member
  // advertising https finds itself by resolved address, as with http.
  dns_.srv["_etcd-server-ssl._tcp.example.test"] =
      Targets({"m2.example.test.", "m1.example.test.", "m3.example.test."});
  PeerUrl https{"https", "10.0.0.1", "2380", "https://10.0.0.1:2380"};
  auto found = Discover("infra1", {https});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, (std::vector<std::string>{"0=https://m2.example.test:2380",
                                              "infra1=https://m1.example.test:2380",
                                              "1=https://m3.example.test:2380"}));
  EXPECT_EQ(logged_[1],
            "got bootstrap from DNS for etcd-server at infra1=https://m1.example.test:2380");
  // A member advertising http is not the https record of its address (etcd's mismatch), so
  // it is missing from the cluster it found.
  found = Discover("infra1", {Http("10.0.0.1")});
  EXPECT_EQ(found.status().message(), "cannot find local etcd member \"infra1\" in SRV records");
}

TEST_F(SrvClusterTest, AnUnresolvableAdvertiseUrlIsTheResolversError) {
  dns_.srv["_etcd-server._tcp.example.test"] = Targets({"m1.example.test."});
  auto found = Discover("m1", {Http("nowhere.internal")});
  EXPECT_EQ(found.status().code(), Code::kNotFound);
  EXPECT_NE(found.status().message().find("lookup nowhere.internal: no such host"),
            std::string::npos)
      << found.status().message();
}

}  // namespace
}  // namespace dolmen::discovery
