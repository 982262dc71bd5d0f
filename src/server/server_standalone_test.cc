// The member on fakes (memory file system and backend) with --force-new-cluster and
// auto-compaction wired in: the paths Server::OpenStorage and Server::Start take for them.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <utility>
#include <vector>

#include "backend/memory_backend.h"
#include "io/memory_file_system.h"
#include "server/member_id.h"
#include "server/server.h"
#include "server/test_support.h"
#include "wal/wal.h"

namespace dolmen::server {
namespace {

using fakes::Get;
using fakes::Put;
using fakes::SharedBackend;

constexpr char kWalDir[] = "/data/member/wal";

class StandaloneTest : public ::testing::Test {
 protected:
  StandaloneTest() : fs_(io::NewMemoryFileSystem()), backend_(backend::NewMemoryBackend()) {}

  // Member "t" of a three-member cluster whose peers never answer.
  ServerConfig Config() {
    ServerConfig c;
    c.name = "t";
    c.data_dir = "/data";
    c.peer_urls = {"http://127.0.0.1:2380"};
    c.initial_cluster = {{"t", {"http://127.0.0.1:2380"}},
                         {"u", {"http://127.0.0.1:2381"}},
                         {"v", {"http://127.0.0.1:2382"}}};
    c.fs = fs_.get();
    c.driver.tick_interval = std::chrono::milliseconds(10);
    c.driver.election_ticks = 5;
    c.driver.request_timeout = std::chrono::seconds(5);
    c.open_backend = [this](const std::string&, const backend::Options&) {
      return Result<std::unique_ptr<backend::Backend>>(
          std::make_unique<SharedBackend>(backend_.get()));
    };
    return c;
  }

  std::unique_ptr<Server> Start(ServerConfig c) { return fakes::OpenAndStart(std::move(c)); }

  std::unique_ptr<io::MemoryFileSystem> fs_;
  std::unique_ptr<backend::Backend> backend_;
};

// A member of three, alone: its log holds the bootstrap (committed) and a put that never
// reached a quorum. Forced into a new cluster it drops the put, removes the two others, leads,
// and stays alone after a restart without the flag.
TEST_F(StandaloneTest, ForceNewClusterKeepsCommittedDataAndDropsTheRest) {
  {
    auto s = Server::Open(Config());  // bootstraps the log: three committed conf changes
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  {
    auto opened = wal::Wal::Open(fs_.get(), kWalDir, wal::Options{});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto& [w, recovered] = *opened;
    ASSERT_EQ(recovered.entries.size(), 3u);
    ASSERT_EQ(recovered.hard_state.commit, Index(3));
    internal::InternalRequest request;
    request.set_id(42);
    request.mutable_put()->set_key("uncommitted");
    request.mutable_put()->set_value("x");
    raft::Entry e;
    e.index = Index(4);
    e.term = Term(1);
    e.type = raft::EntryType::kNormal;
    e.data = request.SerializeAsString();
    ASSERT_TRUE(w->Append({e}, raft::HardState{}).ok());
    ASSERT_TRUE(w->Sync().ok());
  }

  ServerConfig forced = Config();
  forced.force_new_cluster = true;
  auto s = Start(forced);
  ASSERT_NE(s, nullptr);
  auto put = Put(s.get(), "k", "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_TRUE(s->IsLeader());
  auto members = s->membership().List();
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(MemberId(members[0].id()), s->member_id());
  EXPECT_EQ(members[0].name(), "t");
  for (const auto& m : Config().initial_cluster) {
    if (m.name == "t") continue;
    EXPECT_TRUE(s->membership().IsRemoved(ComputeMemberId(m.peer_urls, Config().cluster_token)))
        << m.name;
  }
  auto lost = Get(s.get(), "uncommitted");
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  EXPECT_EQ(lost->kvs_size(), 0);
  const ClusterId cluster = s->cluster_id();

  s.reset();
  s = Start(Config());
  ASSERT_NE(s, nullptr);
  auto got = Get(s.get(), "k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "v");
  EXPECT_EQ(s->membership().List().size(), 1u);
  EXPECT_EQ(s->cluster_id(), cluster);
  EXPECT_TRUE(Put(s.get(), "k2", "v2").ok());
}

// As etcd: on a new data dir the flag changes nothing (the cluster is bootstrapped).
TEST_F(StandaloneTest, ForceNewClusterOnANewDataDirBootstraps) {
  ServerConfig c = Config();
  c.initial_cluster = {{"t", {"http://127.0.0.1:2380"}}};
  c.force_new_cluster = true;
  auto s = Start(c);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(Put(s.get(), "k", "v").ok());
  EXPECT_EQ(s->membership().List().size(), 1u);
}

// Revision mode on a hand-driven clock: once the check interval has passed, the leader
// compacts to current - retention through the log on its own.
TEST_F(StandaloneTest, AutoCompactionCompactsThroughTheLog) {
  ManualClock clock;
  // The compactor's outcomes, which wake the test (declared before the member, which tells
  // them until it stops).
  fakes::AppliedSignal compacted;
  std::vector<std::pair<int64_t, Status>> outcomes;
  std::mutex outcomes_mu;
  ServerConfig c = Config();
  c.initial_cluster = {{"t", {"http://127.0.0.1:2380"}}};
  c.clock = &clock;
  c.auto_compaction.mode = AutoCompactionMode::kRevision;
  c.auto_compaction.retention_revisions = 2;
  c.auto_compaction.revision_check_interval = std::chrono::minutes(5);
  auto opened = Server::Open(std::move(c));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Server> s = std::move(opened).value();
  s->SetAutoCompactionObserver([&](Revision revision, const Status& outcome) {
    {
      std::lock_guard lock(outcomes_mu);
      outcomes.emplace_back(revision.value(), outcome);
    }
    compacted.Notify();
  });
  s->Start();
  ASSERT_NE(s->auto_compactor(), nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(s.get(), "k", std::to_string(i)).ok());  // 2..6

  EXPECT_EQ(s->store()->CompactRevision(), Revision(0));
  // The check interval passes on the member's clock alone.
  clock.Advance(std::chrono::minutes(5));
  s->auto_compactor()->Wake();
  // The compactor tells its outcome once the compaction was applied.
  ASSERT_TRUE(compacted.Await(
      [&] {
        std::lock_guard lock(outcomes_mu);
        return !outcomes.empty();
      },
      std::chrono::seconds(20)));
  {
    std::lock_guard lock(outcomes_mu);
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_EQ(outcomes[0].first, 4);
    EXPECT_TRUE(outcomes[0].second.ok()) << outcomes[0].second.ToString();
  }
  EXPECT_EQ(s->store()->CompactRevision(), Revision(4));
  auto old = Get(s.get(), "k", "", 3);
  EXPECT_EQ(old.status().code(), Code::kCompacted);
  auto kept = Get(s.get(), "k", "", 4);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->kvs(0).value(), "2");
}

}  // namespace
}  // namespace dolmen::server
