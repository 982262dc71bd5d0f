// A member that joins after the leader compacted its log catches up through a snapshot image,
// and a member that stopped between recording a snapshot in its log and installing the image
// installs it at the next start. Two members in one process, linked by a fake peer sender;
// real files (the images are files), memory backends.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "backend/memory_backend.h"
#include "io/posix/posix_file_system.h"
#include "server/server.h"
#include "server/test_support.h"

namespace dolmen::server {
namespace {

using fakes::AppliedSignal;
using fakes::AwaitWithinTurns;
using fakes::SharedBackend;
using fakes::Wait;

// Carries messages between two in-process members; a snapshot goes as an image file, as over
// the real transport. Keeps copies of what a test needs to stage a crash.
class Link final : public PeerSender {
 public:
  explicit Link(const std::string* side_dir) : side_dir_(side_dir) {}
  void Connect(Server* from, Server* to) {
    std::lock_guard lock(mu_);
    from_ = from;
    to_ = to;
  }
  void Send(std::vector<raft::Message> messages) override {
    std::lock_guard lock(mu_);
    if (to_ != nullptr) to_->driver()->Step(std::move(messages));
  }
  void SendSnapshot(raft::Message message) override {
    std::lock_guard lock(mu_);
    if (to_ == nullptr) return;
    const MemberId peer = message.to;
    Result<std::string> image = from_->WriteSnapshotImage(peer);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    std::filesystem::copy_file(*image, *side_dir_ + "/received.db",
                               std::filesystem::copy_options::overwrite_existing);
    std::string arrived = to_->snapshot_images().dir() + "/snap-incoming.db";
    std::filesystem::create_directories(to_->snapshot_images().dir());
    std::filesystem::rename(*image, arrived);
    snapshot_index_ = message.snapshot->metadata.index;
    Status s = to_->ReceiveSnapshot(std::move(message), arrived);
    EXPECT_TRUE(s.ok()) << s.ToString();
    from_->driver()->ReportSnapshot(peer, s.ok());
  }
  void SetPeers(const std::vector<internal::Member>&) override {}
  Index snapshot_index() {
    std::lock_guard lock(mu_);
    return snapshot_index_;
  }

 private:
  std::mutex mu_;
  const std::string* side_dir_;  // set once the fixture made its directory
  Server* from_ = nullptr;
  Server* to_ = nullptr;
  Index snapshot_index_;
};

class ServerSnapshotTest : public ::testing::Test {
 protected:
  ServerSnapshotTest()
      : backend_a_(backend::NewMemoryBackend()), backend_b_(backend::NewMemoryBackend()) {
    std::string pattern = "/tmp/dolmen_server_snapshot_test.XXXXXX";
    CHECK(::mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
  }
  ~ServerSnapshotTest() override {
    if (b_) b_->Stop();
    if (a_) a_->Stop();
    std::filesystem::remove_all(dir_);
  }

  ServerConfig Config(const std::string& name, backend::Backend* backend) {
    ServerConfig c;
    c.name = name;
    c.data_dir = dir_ + "/" + name;
    c.peer_urls = {"http://" + name + ":2380"};
    c.client_urls = {"http://" + name + ":2379"};
    c.initial_cluster = {{"a", {"http://a:2380"}}};
    c.fs = io::PosixFileSystem();
    c.driver.tick_interval = std::chrono::milliseconds(10);
    // The leader checkpoints often and keeps few entries behind: a late joiner needs a snapshot.
    c.driver.checkpoint_entries = 50;
    c.driver.catch_up_entries = 10;
    c.open_backend = [backend](const std::string&, const backend::Options&) {
      return Result<std::unique_ptr<backend::Backend>>(std::make_unique<SharedBackend>(backend));
    };
    c.open_backend_image = [](const std::string& path) { return backend::OpenMemoryImage(path); };
    return c;
  }

  ServerConfig JoinerConfig() {
    ServerConfig c = Config("b", backend_b_.get());
    // b's stops stage crashes: no checkpoint at stop, so the log still says what it received.
    c.driver.checkpoint_at_stop = false;
    c.initial_cluster = {{"a", {"http://a:2380"}}, {"b", {"http://b:2380"}}};
    c.initial_cluster_existing = true;
    c.fetch_cluster_info = [this](const std::vector<std::string>&) -> Result<ClusterInfo> {
      return ClusterInfo{a_->cluster_id(), a_->membership().List()};
    };
    return c;
  }

  static Status Put(Server* s, const std::string& k, const std::string& v) {
    etcdserverpb::PutRequest r;
    r.set_key(k);
    r.set_value(v);
    return Wait<etcdserverpb::PutResponse>([&](auto cb) { s->Put(r, cb); }).status();
  }

  static int64_t CountKeys(Server* s) {
    mvcc::RangeOptions all;
    all.key = std::string(1, '\0');
    all.range_end = std::string(1, '\0');
    all.count_only = true;
    auto r = s->store()->Range(all);
    return r.ok() ? r->count : -1;
  }

  // A leader alone with `keys` keys and a log compacted past its start; then b is added as a
  // learner and started with an empty data dir.
  void StartLeaderAndJoiner(int keys) {
    auto a = Server::Open(Config("a", backend_a_.get()));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    a_ = std::move(a).value();
    a_->SetPeerSender(&to_b_);
    a_->Start();
    ASSERT_TRUE(a_->WaitPublished(std::chrono::seconds(10)));
    for (int i = 0; i < keys; ++i) ASSERT_TRUE(Put(a_.get(), "k" + std::to_string(i), "v").ok());

    etcdserverpb::MemberAddRequest add;
    add.add_peerurls("http://b:2380");
    add.set_islearner(true);
    auto added = Wait<etcdserverpb::MemberAddResponse>([&](auto cb) { a_->MemberAdd(add, cb); });
    ASSERT_TRUE(added.ok()) << added.status().ToString();

    auto b = Server::Open(JoinerConfig());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    b_ = std::move(b).value();
    b_->SetPeerSender(&to_a_);
    b_applied_.Attach(b_.get());
    to_a_.Connect(b_.get(), a_.get());
    b_->Start();
    to_b_.Connect(a_.get(), b_.get());
  }

  std::string dir_;
  std::unique_ptr<backend::Backend> backend_a_;
  std::unique_ptr<backend::Backend> backend_b_;
  Link to_b_{&dir_};
  Link to_a_{&dir_};
  std::unique_ptr<Server> a_;
  std::unique_ptr<Server> b_;
  // b's applied batches and installed snapshots: what the tests await b's state on.
  AppliedSignal b_applied_;
};

TEST_F(ServerSnapshotTest, JoinerBehindTheCompactedLogCatchesUpBySnapshot) {
  StartLeaderAndJoiner(300);
  ASSERT_TRUE(
      b_applied_.Await([&] { return CountKeys(b_.get()) == 300; }, std::chrono::seconds(20)))
      << "b has " << CountKeys(b_.get()) << " keys";
  EXPECT_GT(to_b_.snapshot_index().value(), 1u) << "caught up by log entries, not a snapshot";
  // Writes after the snapshot reach it through the log.
  ASSERT_TRUE(Put(a_.get(), "after", "snapshot").ok());
  ASSERT_TRUE(
      b_applied_.Await([&] { return CountKeys(b_.get()) == 301; }, std::chrono::seconds(10)));
  // The installed image is gone from the snap dir; b knows both members.
  EXPECT_FALSE(b_->snapshot_images().Has(to_b_.snapshot_index()));
  EXPECT_EQ(b_->membership().List().size(), 2u);
  auto hash_a = a_->HashKv(Revision(0));
  ASSERT_TRUE(b_applied_.Await([&] { return b_->current_revision() == a_->current_revision(); },
                               std::chrono::seconds(10)));
  auto hash_b = b_->HashKv(Revision(0));
  ASSERT_TRUE(hash_a.ok() && hash_b.ok());
  EXPECT_EQ(hash_a->hash, hash_b->hash);
}

// The log says "snapshot at S" but the backend never received the image (the member stopped
// in between): the next start installs the image kept in the snap dir; without it, the start
// fails naming the missing file instead of running with a hole.
TEST_F(ServerSnapshotTest, StartInstallsAnImageTheLogRecordedButTheBackendLacks) {
  // What b's backend held before the snapshot: the membership Join wrote.
  StartLeaderAndJoiner(200);
  ASSERT_TRUE(
      b_applied_.Await([&] { return CountKeys(b_.get()) == 200; }, std::chrono::seconds(20)));
  const Index snapshot_index = to_b_.snapshot_index();
  ASSERT_GT(snapshot_index.value(), 1u);
  to_b_.Connect(a_.get(), nullptr);
  b_->Stop();
  b_.reset();

  // Stage the crash: b's backend back to empty, the received image back in the snap dir.
  auto empty = backend::NewMemoryBackend();
  {
    auto source = empty->BeginRead();
    auto target = backend_b_->BeginWrite();
    ASSERT_TRUE(source.ok() && target.ok());
    ASSERT_TRUE(backend::ReplaceContents(**source, **target).ok());
    ASSERT_TRUE((*target)->Commit().ok());
  }
  ServerConfig config = JoinerConfig();
  SnapshotImages images(config.fs, config.data_dir + "/member/snap");
  std::filesystem::copy_file(dir_ + "/received.db", images.PathFor(snapshot_index));

  auto reopened = Server::Open(config);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_GE((*reopened)->store()->ConsistentIndex(), snapshot_index);
  EXPECT_FALSE(images.Has(snapshot_index)) << "an installed image is removed at start";
  // The image holds the leader's backend as of its last commit (at least the snapshot's
  // index); the entries the log holds after the snapshot are applied on top once it runs.
  (*reopened)->Start();
  // Nothing reaches it from outside (no peer sender): what is left to apply is in its own log.
  EXPECT_TRUE(AwaitWithinTurns(
      reopened->get(),
      [&] {
        return CountKeys(reopened->get()) == 200 && (*reopened)->membership().List().size() == 2u;
      },
      /*turns=*/10))
      << CountKeys(reopened->get()) << " keys, " << (*reopened)->membership().List().size()
      << " members";
  reopened->reset();

  // Once more, without the image.
  {
    auto source = empty->BeginRead();
    auto target = backend_b_->BeginWrite();
    ASSERT_TRUE(source.ok() && target.ok());
    ASSERT_TRUE(backend::ReplaceContents(**source, **target).ok());
    ASSERT_TRUE((*target)->Commit().ok());
  }
  auto refused = Server::Open(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kCorruption);
  EXPECT_NE(refused.status().message().find(images.PathFor(snapshot_index) + " is missing"),
            std::string::npos)
      << refused.status().message();
}

TEST_F(ServerSnapshotTest, ABadImageIsRefusedAndDeleted) {
  auto a = Server::Open(Config("a", backend_a_.get()));
  ASSERT_TRUE(a.ok());
  a_ = std::move(a).value();
  const std::string path = dir_ + "/garbage.db";
  { std::ofstream(path) << "not an image"; }
  raft::Message m;
  m.type = raft::MessageType::kSnap;
  m.snapshot = raft::Snapshot{};
  m.snapshot->metadata.index = Index(100);
  m.snapshot->metadata.term = Term(2);
  Status s = a_->ReceiveSnapshot(m, path);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(a_->snapshot_images().Has(Index(100)));

  // An image older than the snapshot it claims to be is refused too.
  ASSERT_TRUE(backend_b_->CopyTo(path).ok());  // consistent index 0
  EXPECT_EQ(a_->ReceiveSnapshot(m, path).code(), Code::kCorruption);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace dolmen::server
