// Leases through the whole member on fakes (memory file system and backend, a hand-driven
// clock): what reaches the log, what survives a restart, and expiry decided by the leader.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "backend/memory_backend.h"
#include "io/memory_file_system.h"
#include "server/server.h"
#include "server/test_support.h"

namespace dolmen::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// ManualClock, but safe to advance while the expiry checker reads it.
class TestClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns_.load()));
  }
  void Advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

 private:
  std::atomic<int64_t> ns_{0};
};

using fakes::AppliedSignal;
using fakes::AwaitWithinTurns;
using fakes::Get;
using fakes::SharedBackend;
using fakes::Wait;

class ServerLeaseTest : public ::testing::Test {
 protected:
  ServerLeaseTest() : fs_(io::NewMemoryFileSystem()), backend_(backend::NewMemoryBackend()) {}

  std::unique_ptr<Server> Open() {
    ServerConfig c;
    c.name = "t";
    c.data_dir = "/data";
    c.peer_urls = {"http://localhost:2380"};
    c.fs = fs_.get();
    c.driver.checkpoint_entries = 1u << 30;
    c.driver.checkpoint_interval = std::chrono::hours(1);
    c.driver.checkpoint_at_stop =
        false;  // the restart test replays the log, even into a new backend
    c.clock = &clock_;
    c.lease_expiry.check_interval = milliseconds(5);
    c.open_backend = [this](const std::string&, const backend::Options&) {
      return Result<std::unique_ptr<backend::Backend>>(
          std::make_unique<SharedBackend>(backend_.get()));
    };
    auto s = Server::Open(std::move(c));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    auto server = std::move(s).value();
    applied_.Attach(server.get());
    server->Start();
    // Until the member has elected itself and promoted its lessor, leases do not expire and
    // keep-alives are refused; tests start from a promoted leader. A lone member elects itself
    // in its first turns, and the promotion follows the new leader on the owner thread.
    EXPECT_TRUE(AwaitWithinTurns(
        server.get(),
        [&] { return server->LeaseRenewHere(LeaseId(-1)).status().code() == Code::kLeaseNotFound; },
        /*turns=*/20));
    return server;
  }

  static Result<etcdserverpb::LeaseGrantResponse> Grant(Server* s, int64_t id, int64_t ttl) {
    etcdserverpb::LeaseGrantRequest r;
    r.set_id(id);
    r.set_ttl(ttl);
    return Wait<etcdserverpb::LeaseGrantResponse>([&](auto cb) { s->LeaseGrant(r, cb); });
  }
  static Result<etcdserverpb::LeaseRevokeResponse> Revoke(Server* s, int64_t id) {
    etcdserverpb::LeaseRevokeRequest r;
    r.set_id(id);
    return Wait<etcdserverpb::LeaseRevokeResponse>([&](auto cb) { s->LeaseRevoke(r, cb); });
  }
  static Result<etcdserverpb::PutResponse> Put(Server* s, const std::string& k, int64_t lease) {
    etcdserverpb::PutRequest r;
    r.set_key(k);
    r.set_value("v");
    r.set_lease(lease);
    return Wait<etcdserverpb::PutResponse>([&](auto cb) { s->Put(r, cb); });
  }
  static Result<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(Server* s, int64_t id) {
    etcdserverpb::LeaseTimeToLiveRequest r;
    r.set_id(id);
    r.set_keys(true);
    return s->LeaseTimeToLiveHere(r);
  }
  static std::vector<std::string> Keys(Server* s, int64_t id) {
    auto ttl = TimeToLive(s, id);
    EXPECT_TRUE(ttl.ok()) << ttl.status().ToString();
    if (!ttl.ok()) return {};
    return {ttl->keys().begin(), ttl->keys().end()};
  }

  TestClock clock_;
  AppliedSignal applied_;  // every member the test opens; they all end before the fixture
  std::unique_ptr<io::MemoryFileSystem> fs_;
  std::unique_ptr<backend::Backend> backend_;
};

TEST_F(ServerLeaseTest, GrantAssignsIdsAndRefusesWhatEtcdRefuses) {
  auto s = Open();
  auto a = Grant(s.get(), 0, 1);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_GT(a->id(), 0);
  EXPECT_EQ(a->ttl(), 2);  // raised to ceil(1.5 x 1 s election timeout)
  EXPECT_EQ(a->header().member_id(), s->member_id().value());
  auto b = Grant(s.get(), 0, 60);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(Grant(s.get(), a->id(), 5).status().code(), Code::kLeaseExists);
  EXPECT_EQ(Grant(s.get(), 7, 9'000'000'001).status().code(), Code::kLeaseTtlTooLarge);
  EXPECT_EQ(s->LeaseLeases().leases_size(), 2);
}

TEST_F(ServerLeaseTest, PutWithUnknownLeaseIsRefused) {
  auto s = Open();
  EXPECT_EQ(Put(s.get(), "k", 42).status().code(), Code::kLeaseNotFound);
  etcdserverpb::TxnRequest t;
  t.add_success()->mutable_request_put()->set_key("x");
  auto* leased = t.add_success()->mutable_request_put();
  leased->set_key("y");
  leased->set_lease(42);
  auto refused = Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(t, cb); });
  EXPECT_EQ(refused.status().code(), Code::kLeaseNotFound);
  EXPECT_EQ(Get(s.get(), "x")->kvs_size(), 0);

  ASSERT_TRUE(Grant(s.get(), 42, 60).ok());
  ASSERT_TRUE(Put(s.get(), "k", 42).ok());
  auto done = Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(t, cb); });
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Get(s.get(), "y")->kvs(0).lease(), 42);
  EXPECT_EQ(Keys(s.get(), 42), (std::vector<std::string>{"k", "y"}));
}

TEST_F(ServerLeaseTest, PutWithoutLeaseOrDeleteDetaches) {
  auto s = Open();
  ASSERT_TRUE(Grant(s.get(), 1, 60).ok());
  ASSERT_TRUE(Grant(s.get(), 2, 60).ok());
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(Put(s.get(), k, 1).ok());
  ASSERT_TRUE(Put(s.get(), "a", 0).ok());  // detached
  ASSERT_TRUE(Put(s.get(), "b", 2).ok());  // moved to lease 2
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("c");
  ASSERT_TRUE(
      Wait<etcdserverpb::DeleteRangeResponse>([&](auto cb) { s->DeleteRange(del, cb); }).ok());
  EXPECT_TRUE(Keys(s.get(), 1).empty());
  EXPECT_EQ(Keys(s.get(), 2), std::vector<std::string>{"b"});
  // Revoking lease 1 must now leave "a" alone.
  ASSERT_TRUE(Revoke(s.get(), 1).ok());
  EXPECT_EQ(Get(s.get(), "a")->kvs_size(), 1);
}

TEST_F(ServerLeaseTest, RevokeDeletesAttachedKeysInOneRevision) {
  auto s = Open();
  ASSERT_TRUE(Grant(s.get(), 5, 60).ok());
  for (const char* k : {"k1", "k2", "k3"}) ASSERT_TRUE(Put(s.get(), k, 5).ok());
  ASSERT_TRUE(Put(s.get(), "other", 0).ok());
  const int64_t before = s->current_revision().value();
  auto revoked = Revoke(s.get(), 5);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_EQ(revoked->header().revision(), before + 1);
  EXPECT_EQ(s->current_revision().value(), before + 1);
  auto left = Get(s.get(), "a", "z");
  ASSERT_EQ(left->kvs_size(), 1);
  EXPECT_EQ(left->kvs(0).key(), "other");
  EXPECT_EQ(Revoke(s.get(), 5).status().code(), Code::kLeaseNotFound);
  EXPECT_EQ(TimeToLive(s.get(), 5).status().code(), Code::kLeaseNotFound);
  // A lease without keys is revoked without a new revision.
  ASSERT_TRUE(Grant(s.get(), 6, 60).ok());
  ASSERT_TRUE(Revoke(s.get(), 6).ok());
  EXPECT_EQ(s->current_revision().value(), before + 1);
}

TEST_F(ServerLeaseTest, KeepAliveRenewsOnTheLeader) {
  auto s = Open();
  ASSERT_TRUE(Grant(s.get(), 9, 10).ok());
  clock_.Advance(seconds(6));
  EXPECT_EQ(TimeToLive(s.get(), 9)->ttl(), 4);
  EXPECT_EQ(*s->LeaseRenewHere(LeaseId(9)), 10);
  EXPECT_EQ(TimeToLive(s.get(), 9)->ttl(), 10);
  EXPECT_EQ(TimeToLive(s.get(), 9)->grantedttl(), 10);
  EXPECT_EQ(s->LeaseRenewHere(LeaseId(10)).status().code(), Code::kLeaseNotFound);
}

TEST_F(ServerLeaseTest, ExpiryRevokesThroughTheLog) {
  {
    auto s = Open();
    ASSERT_TRUE(Grant(s.get(), 3, 5).ok());
    ASSERT_TRUE(Put(s.get(), "leased", 3).ok());
    ASSERT_TRUE(Put(s.get(), "kept", 0).ok());
    const Index applied = s->applied_index();
    clock_.Advance(seconds(4));
    EXPECT_EQ(*s->LeaseRenewHere(LeaseId(3)), 5);
    clock_.Advance(seconds(4));
    EXPECT_EQ(Get(s.get(), "leased")->kvs_size(), 1);  // renewed: 1 s left
    clock_.Advance(seconds(2));
    // The expiry checker (its own thread) proposes the revoke; its delete wakes the wait.
    ASSERT_TRUE(
        applied_.Await([&] { return Get(s.get(), "leased")->kvs_size() == 0; }, seconds(10)));
    EXPECT_GT(s->applied_index(), applied);  // the revoke is a log entry
    EXPECT_EQ(TimeToLive(s.get(), 3).status().code(), Code::kLeaseNotFound);
  }
  // Rebuilt from the log alone (a fresh backend): the revoke replays from the WAL.
  backend_ = backend::NewMemoryBackend();
  auto s = Open();
  EXPECT_EQ(Get(s.get(), "leased")->kvs_size(), 0);
  EXPECT_EQ(Get(s.get(), "kept")->kvs_size(), 1);
  EXPECT_EQ(s->LeaseLeases().leases_size(), 0);
}

TEST_F(ServerLeaseTest, RestartKeepsLeasesAndAttachmentsAndExtendsTtl) {
  {
    auto s = Open();
    ASSERT_TRUE(Grant(s.get(), 11, 30).ok());
    ASSERT_TRUE(Grant(s.get(), 12, 60).ok());
    ASSERT_TRUE(Put(s.get(), "a", 11).ok());
    ASSERT_TRUE(Put(s.get(), "b", 11).ok());
    ASSERT_TRUE(Put(s.get(), "c", 12).ok());
    clock_.Advance(seconds(25));  // 5 s left of lease 11 when the member stops
    s->Stop();
  }
  auto check = [this] {
    auto s = Open();
    ASSERT_TRUE(Get(s.get(), "a").ok());  // caught up
    EXPECT_EQ(Keys(s.get(), 11), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(Keys(s.get(), 12), std::vector<std::string>{"c"});
    // The new leader gives every lease its whole TTL again (plus an election timeout).
    auto ttl = TimeToLive(s.get(), 11);
    ASSERT_TRUE(ttl.ok());
    EXPECT_EQ(ttl->grantedttl(), 30);
    EXPECT_EQ(ttl->ttl(), 31);
    s->Stop();
  };
  check();  // from the backend
  backend_ = backend::NewMemoryBackend();
  check();  // from the log alone
}

}  // namespace
}  // namespace dolmen::server
