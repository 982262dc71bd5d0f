// The member on fakes: memory file system (with crashes), memory backend, fault injection.
// These tests drive Server through its public entry points as the API layer does.
#include "server/server.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include "backend/forwarding_write_txn.h"
#include "backend/memory_backend.h"
#include "io/fault_injection_file_system.h"
#include "io/memory_file_system.h"
#include "server/test_support.h"
#include "wal/wal.h"

namespace dolmen::server {
namespace {

using fakes::Get;
using fakes::Put;
using fakes::SharedBackend;
using fakes::Wait;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : fs_(io::NewMemoryFileSystem()), backend_(backend::NewMemoryBackend()) {}

  ServerConfig Config(io::FileSystem* fs) {
    ServerConfig c;
    c.name = "t";
    c.data_dir = "/data";
    c.peer_urls = {"http://localhost:2380"};
    c.fs = fs;
    c.driver.checkpoint_entries = 1u << 30;  // no checkpoint unless a test asks
    c.driver.checkpoint_interval = std::chrono::hours(1);
    c.open_backend = [this](const std::string&, const backend::Options&) {
      return Result<std::unique_ptr<backend::Backend>>(
          std::make_unique<SharedBackend>(backend_.get()));
    };
    return c;
  }

  std::unique_ptr<Server> Open(io::FileSystem* fs = nullptr) {
    auto s = Server::Open(Config(fs ? fs : fs_.get()));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    auto server = std::move(s).value();
    server->Start();
    return server;
  }

  static Result<etcdserverpb::TxnResponse> Txn(Server* s, const etcdserverpb::TxnRequest& r) {
    return Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(r, cb); });
  }

  std::unique_ptr<io::MemoryFileSystem> fs_;
  std::unique_ptr<backend::Backend> backend_;
};

TEST_F(ServerTest, PutGetHeaderAndRevisions) {
  auto s = Open();
  auto p1 = Put(s.get(), "a", "1");
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(p1->header().revision(), 2);
  EXPECT_EQ(p1->header().raft_term(), 2u);  // a fresh member leads in term 2, as etcd's
  EXPECT_EQ(p1->header().member_id(), 0x8e9e05c52164694dull);
  auto p2 = Put(s.get(), "a", "2", /*lease=*/0, /*prev_kv=*/true);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->prev_kv().value(), "1");
  auto g = Get(s.get(), "a");
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->kvs_size(), 1);
  EXPECT_EQ(g->kvs(0).value(), "2");
  EXPECT_EQ(g->kvs(0).version(), 2);
  EXPECT_EQ(g->kvs(0).create_revision(), 2);
  EXPECT_EQ(g->kvs(0).mod_revision(), 3);
  EXPECT_EQ(g->header().revision(), 3);
}

// The calling thread's nice value (Linux: each thread has its own).
int NiceOfThisThread() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

// A Put completes on the driver thread; a linearizable Range must not run there (a long scan
// would delay Raft's next turn), while a serializable one runs on the caller's thread. The read
// pool runs below the driver's priority, so a list yields the CPU to Raft and writes.
TEST_F(ServerTest, LinearizableRangeIsServedOffTheDriverThread) {
  auto s = Open();
  ASSERT_TRUE(Put(s.get(), "a", "1").ok());
  std::map<std::thread::id, int> nice_of;  // written before each promise is set
  auto thread_of = [&nice_of](const std::function<void(std::function<void()>)>& call) {
    std::promise<std::thread::id> where;
    call([&where, &nice_of] {
      nice_of[std::this_thread::get_id()] = NiceOfThisThread();
      where.set_value(std::this_thread::get_id());
    });
    return where.get_future().get();
  };
  etcdserverpb::PutRequest put;
  put.set_key("b");
  put.set_value("2");
  std::thread::id driver = thread_of([&](std::function<void()> mark) {
    s->Put(put, [mark](Result<etcdserverpb::PutResponse> r) {
      EXPECT_TRUE(r.ok());
      mark();
    });
  });
  etcdserverpb::RangeRequest range;
  range.set_key("a");
  std::thread::id linearizable = thread_of([&](std::function<void()> mark) {
    s->Range(range, [mark](Result<etcdserverpb::RangeResponse> r) {
      EXPECT_TRUE(r.ok() && r->kvs_size() == 1);
      mark();
    });
  });
  EXPECT_NE(linearizable, driver);
  EXPECT_NE(linearizable, std::this_thread::get_id());
  EXPECT_EQ(nice_of[driver], NiceOfThisThread());
  EXPECT_TRUE(nice_of[linearizable] > nice_of[driver] || nice_of[driver] == 19)
      << "read pool at nice " << nice_of[linearizable] << ", driver at " << nice_of[driver];
  range.set_serializable(true);
  std::thread::id serializable = thread_of([&](std::function<void()> mark) {
    s->Range(range, [mark](Result<etcdserverpb::RangeResponse> r) {
      EXPECT_TRUE(r.ok());
      mark();
    });
  });
  EXPECT_EQ(serializable, std::this_thread::get_id());
}

// What the leader runs for keep-alives a follower forwarded: a batch after one leadership
// round, each lease its own answer; a single forwarded renewal is a batch of one.
TEST_F(ServerTest, ForwardedRenewalsAreAnsweredPerLeaseByTheLeader) {
  auto s = Open();
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(30);
  auto granted = Wait<etcdserverpb::LeaseGrantResponse>([&](auto cb) { s->LeaseGrant(grant, cb); });
  ASSERT_TRUE(granted.ok()) << granted.status().ToString();
  const LeaseId lease(granted->id()), missing(granted->id() + 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);

  auto batch = s->LeaseRenewBatchAsLeaderBy({lease, missing, lease}, deadline);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 3u);
  ASSERT_TRUE((*batch)[0].ok()) << (*batch)[0].status().ToString();
  EXPECT_EQ(*(*batch)[0], 30);
  EXPECT_EQ((*batch)[1].status().code(), Code::kLeaseNotFound);
  ASSERT_TRUE((*batch)[2].ok());
  EXPECT_EQ(*(*batch)[2], 30);

  Result<int64_t> one = s->LeaseRenewAsLeaderBy(lease, deadline);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, 30);
  EXPECT_EQ(s->LeaseRenewAsLeaderBy(missing, deadline).status().code(), Code::kLeaseNotFound);
}

TEST_F(ServerTest, TxnBranchesAndNestedHeaders) {
  auto s = Open();
  ASSERT_TRUE(Put(s.get(), "k", "v").ok());
  etcdserverpb::TxnRequest t;
  auto* c = t.add_compare();
  c->set_key("k");
  c->set_target(etcdserverpb::Compare::VALUE);
  c->set_result(etcdserverpb::Compare::EQUAL);
  c->set_value("v");
  t.add_success()->mutable_request_put()->set_key("then");
  auto* nested = t.add_success()->mutable_request_txn();
  nested->add_success()->mutable_request_range()->set_key("then");
  t.add_failure()->mutable_request_put()->set_key("else");
  auto r = Txn(s.get(), t);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(r->header().revision(), 3);
  ASSERT_EQ(r->responses_size(), 2);
  EXPECT_EQ(r->responses(0).response_put().header().revision(), 3);
  const auto& inner = r->responses(1).response_txn();
  EXPECT_TRUE(inner.has_header());
  EXPECT_EQ(inner.header().revision(), 0);  // etcd leaves nested txn headers empty
  ASSERT_EQ(inner.responses(0).response_range().kvs_size(), 1);  // sees the txn's own put

  // A value compare against a missing key is false, whatever the operator.
  c->set_key("missing");
  c->set_result(etcdserverpb::Compare::NOT_EQUAL);
  auto f = Txn(s.get(), t);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->succeeded());
  EXPECT_EQ(Get(s.get(), "else")->kvs_size(), 1);
}

TEST_F(ServerTest, ErrorsLeaveTheStoreUnchanged) {
  auto s = Open();
  ASSERT_TRUE(Put(s.get(), "k", "v").ok());
  etcdserverpb::TxnRequest t;
  t.add_success()->mutable_request_put()->set_key("x");
  auto* leased = t.add_success()->mutable_request_put();
  leased->set_key("y");
  leased->set_lease(42);
  auto r = Txn(s.get(), t);
  EXPECT_EQ(r.status().code(), Code::kLeaseNotFound);
  EXPECT_EQ(Get(s.get(), "x")->kvs_size(), 0);
  EXPECT_EQ(Get(s.get(), "x")->header().revision(), 2);

  etcdserverpb::PutRequest ignore;
  ignore.set_key("nope");
  ignore.set_ignore_value(true);
  auto p = Wait<etcdserverpb::PutResponse>([&](auto cb) { s->Put(ignore, cb); });
  EXPECT_EQ(p.status().code(), Code::kKeyNotFound);

  EXPECT_EQ(Get(s.get(), "k", "", 99).status().code(), Code::kFutureRevision);
}

TEST_F(ServerTest, CompactionBoundsAndReads) {
  auto s = Open();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(s.get(), "k", std::to_string(i)).ok());
  etcdserverpb::CompactionRequest c;
  c.set_revision(4);
  auto done = Wait<etcdserverpb::CompactionResponse>([&](auto cb) { s->Compact(c, cb); });
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->header().revision(), 6);
  EXPECT_EQ(Get(s.get(), "k", "", 3).status().code(), Code::kCompacted);
  EXPECT_EQ(Get(s.get(), "k", "", 4)->kvs(0).value(), "2");
  auto again = Wait<etcdserverpb::CompactionResponse>([&](auto cb) { s->Compact(c, cb); });
  EXPECT_EQ(again.status().code(), Code::kCompacted);
  c.set_revision(100);
  auto future = Wait<etcdserverpb::CompactionResponse>([&](auto cb) { s->Compact(c, cb); });
  EXPECT_EQ(future.status().code(), Code::kFutureRevision);
}

TEST_F(ServerTest, RequestTooLargeIsRefused) {
  auto s = Open();
  auto r = Put(s.get(), "big", std::string(2 << 20, 'x'));
  EXPECT_EQ(r.status().code(), Code::kRequestTooLarge);
  EXPECT_EQ(Get(s.get(), "big")->kvs_size(), 0);
}

TEST_F(ServerTest, CrashKeepsEveryAcknowledgedWrite) {
  {
    ServerConfig c = Config(fs_.get());
    c.driver.checkpoint_at_stop = false;  // a killed process does not get to checkpoint
    auto opened = Server::Open(std::move(c));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto s = std::move(opened).value();
    s->Start();
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put(s.get(), "k" + std::to_string(i), "v").ok());
    // No clean stop: the process dies; its uncommitted backend batch is gone with it, and
    // unsynced WAL bytes are lost, torn at a random length.
  }
  fs_->Crash(io::CrashOptions{io::CrashOptions::Tail::kTornPrefix, std::nullopt, 7});
  // The backend is rebuilt from the log alone: the strongest form of replay.
  backend_ = backend::NewMemoryBackend();
  auto s = Open();
  auto all = Get(s.get(), "k", "l");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->kvs_size(), 50);
  EXPECT_EQ(all->header().revision(), 51);
  EXPECT_EQ(all->header().raft_term(), 3u);  // a restart is a new term
}

TEST_F(ServerTest, RestartReplaysOnlyWhatTheBackendLacks) {
  Index before;
  {
    auto s = Open();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(Put(s.get(), "k", std::to_string(i)).ok());
    before = s->applied_index();
    s->Stop();
  }
  auto s = Open();
  auto g = Get(s.get(), "k");  // linearizable: waits until the restarted member caught up
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->kvs(0).value(), "9");
  EXPECT_EQ(g->kvs(0).version(), 10);  // not applied twice
  EXPECT_EQ(g->header().revision(), 11);
  EXPECT_GE(s->applied_index(), before);
}

// A clean stop checkpoints: the log's snapshot marker is at the applied index and no entry
// before it is left to replay at the next start.
TEST_F(ServerTest, CleanStopLeavesNothingToReplay) {
  Index applied;
  {
    auto s = Open();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(Put(s.get(), "k", std::to_string(i)).ok());
    s->Stop();
    applied = s->applied_index();
  }
  auto opened = wal::Wal::Open(fs_.get(), "/data/member/wal", wal::Options{});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const wal::Recovered& recovered = opened->second;
  ASSERT_TRUE(recovered.snapshot.has_value());
  EXPECT_EQ(recovered.snapshot->index, applied);
  for (const raft::Entry& e : recovered.entries) EXPECT_GT(e.index, applied);
}

using backend::ForwardingWriteTxn;

// A write transaction belongs to the thread that began it (LMDB's writer lock is a robust
// mutex only its owner may unlock). Counts the commits and aborts made on another thread.
class ThreadBoundBackend final : public SharedBackend {
 public:
  using SharedBackend::SharedBackend;
  std::atomic<int> foreign_ends{0};
  std::atomic<int> commits{0};

  Result<std::unique_ptr<backend::WriteTxn>> BeginWrite() override {
    ASSIGN_OR_RETURN(std::unique_ptr<backend::WriteTxn> txn, SharedBackend::BeginWrite());
    return std::unique_ptr<backend::WriteTxn>(std::make_unique<Txn>(std::move(txn), this));
  }

 private:
  class Txn final : public ForwardingWriteTxn {
   public:
    Txn(std::unique_ptr<backend::WriteTxn> base, ThreadBoundBackend* owner)
        : ForwardingWriteTxn(std::move(base)), owner_(owner) {}
    ~Txn() override { CheckThread(); }
    Status Commit() override {
      CheckThread();
      owner_->commits.fetch_add(1);
      return base_->Commit();
    }

   private:
    void CheckThread() {
      if (std::this_thread::get_id() != began_on_) owner_->foreign_ends.fetch_add(1);
    }
    ThreadBoundBackend* owner_;
    const std::thread::id began_on_ = std::this_thread::get_id();
  };
};

// The stop's checkpoint commits the batch the owner thread opened: on the owner thread (from
// Stop's thread, LMDB's unlock of its writer lock failed; ThreadSanitizer reported it).
TEST_F(ServerTest, StopCommitsTheBatchOnTheThreadThatOpenedIt) {
  ThreadBoundBackend bound(backend_.get());
  ServerConfig c = Config(fs_.get());
  c.driver.backend_commit_interval = std::chrono::hours(1);  // the batch stays open until Stop
  c.open_backend = [&bound](const std::string&, const backend::Options&) {
    return Result<std::unique_ptr<backend::Backend>>(std::make_unique<SharedBackend>(&bound));
  };
  auto s = fakes::OpenAndStart(std::move(c));
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(s.get(), "k", std::to_string(i)).ok());
  const int before = bound.commits.load();
  s->Stop();
  EXPECT_GT(bound.commits.load(), before) << "the stop committed nothing";
  EXPECT_EQ(bound.foreign_ends.load(), 0);
}

// A backend whose write transactions fail to commit once `fail_commits` is set, as LMDB's do
// when the disk is full (nothing of the failed transaction is published), and whose syncs fail
// once `fail_syncs` is set, as an fdatasync does on a failing disk.
class FaultyBackend final : public backend::Backend {
 public:
  explicit FaultyBackend(backend::Backend* base) : base_(base) {}
  std::atomic<bool> fail_commits{false};
  std::atomic<bool> fail_syncs{false};

  Result<std::unique_ptr<backend::ReadTxn>> BeginRead() override { return base_->BeginRead(); }
  Result<std::unique_ptr<backend::WriteTxn>> BeginWrite() override {
    ASSIGN_OR_RETURN(std::unique_ptr<backend::WriteTxn> txn, base_->BeginWrite());
    return std::unique_ptr<backend::WriteTxn>(std::make_unique<Txn>(std::move(txn), this));
  }
  Status Sync() override {
    if (fail_syncs.load()) return Status(Code::kIoError, "fdatasync: Input/output error");
    return base_->Sync();
  }
  uint64_t SizeBytes() override { return base_->SizeBytes(); }
  uint64_t SizeInUseBytes() override { return base_->SizeInUseBytes(); }
  Status CopyTo(const std::string& path) override { return base_->CopyTo(path); }
  Status Defragment() override { return base_->Defragment(); }

 private:
  class Txn final : public ForwardingWriteTxn {
   public:
    Txn(std::unique_ptr<backend::WriteTxn> base, FaultyBackend* owner)
        : ForwardingWriteTxn(std::move(base)), owner_(owner) {}
    Status Commit() override {
      if (!owner_->fail_commits.load()) return base_->Commit();
      base_.reset();  // aborted: nothing published
      return Status(Code::kIoError, "commit: No space left on device");
    }

   private:
    FaultyBackend* owner_;
  };
  backend::Backend* base_;
};

// Like fakes::Wait, but gives up after `limit`: a callback that never comes fails the test
// instead of hanging it.
template <typename T>
std::optional<Result<T>> WaitAtMost(std::chrono::seconds limit,
                                    const std::function<void(Callback<T>)>& call) {
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  call([p](Result<T> r) { p->set_value(std::move(r)); });
  if (f.wait_for(limit) != std::future_status::ready) return std::nullopt;
  return f.get();
}

// A member on a FaultyBackend (over the fixture's backend), its fatal error kept in `fatal_`.
class FaultyBackendTest : public ServerTest {
 protected:
  std::unique_ptr<Server> OpenOnFaulty(ServerConfig c) {
    c.open_backend = [this](const std::string&, const backend::Options&) {
      return Result<std::unique_ptr<backend::Backend>>(std::make_unique<SharedBackend>(&faulty_));
    };
    auto opened = Server::Open(std::move(c));
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) return nullptr;
    auto server = std::move(opened).value();
    server->SetFatalHandler([fatal = fatal_](const Status& st) { fatal->set_value(st); });
    server->Start();
    return server;
  }

  FaultyBackend faulty_{backend_.get()};
  std::shared_ptr<std::promise<Status>> fatal_ = std::make_shared<std::promise<Status>>();
};

// A failed backend commit stops the member (kIoError) and loses nothing acknowledged: entries
// are answered once applied, before their batch reaches the backend, and the synced log keeps
// them, so a restart on a working backend has them. Work queued for the driver thread when the
// commit fails, or after, is answered too, never dropped.
TEST_F(FaultyBackendTest, FailedBackendCommitStopsTheMemberAndLosesNothingAcknowledged) {
  ServerConfig c = Config(fs_.get());
  c.driver.backend_commit_interval = std::chrono::hours(1);  // commits only when a task asks
  c.driver.checkpoint_at_stop = false;
  auto server = OpenOnFaulty(std::move(c));
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(Put(server.get(), "before", "1").ok());

  faulty_.fail_commits.store(true);
  etcdserverpb::PutRequest put;
  put.set_key("after");
  put.set_value("1");
  auto r = WaitAtMost<etcdserverpb::PutResponse>(std::chrono::seconds(10),
                                                 [&](auto cb) { server->Put(put, cb); });
  ASSERT_TRUE(r.has_value()) << "the put was never answered";
  ASSERT_TRUE(r->ok()) << "applied and in the synced log: acknowledged " << r->status().ToString();
  // A task makes the driver commit its batch first; the commit fails.
  auto hash = WaitAtMost<BackendHash>(std::chrono::seconds(10),
                                      [&](auto cb) { server->Hash(std::move(cb)); });
  ASSERT_TRUE(hash.has_value()) << "the Hash whose commit failed was never answered";
  EXPECT_EQ(hash->status().code(), Code::kStopped);
  auto fatal = fatal_->get_future();
  ASSERT_EQ(fatal.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(fatal.get().code(), Code::kIoError);
  auto later = WaitAtMost<BackendHash>(std::chrono::seconds(10),
                                       [&](auto cb) { server->Hash(std::move(cb)); });
  ASSERT_TRUE(later.has_value()) << "Hash after the failure was never answered";
  EXPECT_EQ(later->status().code(), Code::kStopped);
  server.reset();

  faulty_.fail_commits.store(false);
  auto restarted = Open();
  ASSERT_NE(restarted, nullptr);
  for (const char* key : {"before", "after"}) {
    auto g = Get(restarted.get(), key);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->kvs_size(), 1) << key << " was acknowledged and is lost";
  }
}

// A failed backend sync at a checkpoint stops the member for good (a retry could "succeed" over
// pages the kernel dropped), and no log is released: every acknowledged write can still be
// rebuilt from the WAL.
TEST_F(FaultyBackendTest, FailedBackendSyncStopsTheMemberAndKeepsTheLog) {
  ServerConfig c = Config(fs_.get());
  c.driver.checkpoint_entries = 5;
  auto server = OpenOnFaulty(std::move(c));
  ASSERT_NE(server, nullptr);
  faulty_.fail_syncs.store(true);

  // The sync runs beside the loop, so a few more puts may be acknowledged (they are in the
  // log) before its failure is reported; then the member stops and every later put fails.
  // Bounded in count and time.
  constexpr int kMaxPuts = 2000;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int acknowledged = 0;
  bool refused = false;
  for (int i = 0; i < kMaxPuts && std::chrono::steady_clock::now() < until; ++i) {
    etcdserverpb::PutRequest put;
    put.set_key("k" + std::to_string(i));
    put.set_value("v");
    auto r = WaitAtMost<etcdserverpb::PutResponse>(std::chrono::seconds(10),
                                                   [&](auto cb) { server->Put(put, cb); });
    ASSERT_TRUE(r.has_value()) << "put " << i << " was never answered";
    if (!r->ok()) {
      EXPECT_EQ(r->status().code(), Code::kStopped) << r->status().ToString();
      refused = true;
      break;
    }
    ++acknowledged;
  }
  auto fatal = fatal_->get_future();
  ASSERT_EQ(fatal.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the member went on after a failed backend sync";
  EXPECT_EQ(fatal.get().code(), Code::kIoError);
  EXPECT_TRUE(refused) << "all " << acknowledged << " puts were acknowledged after the failure";
  const Index applied = server->applied_index();
  server.reset();  // stops it and releases the data dir

  auto wal = wal::Wal::Open(fs_.get(), "/data/member/wal", wal::Options{});
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  const wal::Recovered& recovered = wal->second;
  EXPECT_TRUE(!recovered.snapshot.has_value() || recovered.snapshot->index == Index(0))
      << "a snapshot marker at " << recovered.snapshot->index.value()
      << " after the backend never synced";
  ASSERT_FALSE(recovered.entries.empty());
  EXPECT_EQ(recovered.entries.front().index, Index(1));
  EXPECT_GE(recovered.entries.back().index, applied);
}

TEST_F(ServerTest, FailedLogSyncIsNeverAcknowledged) {
  io::FaultInjectionFileSystem faulty(fs_.get());
  Status fatal;
  auto s = Server::Open(Config(&faulty));
  ASSERT_TRUE(s.ok());
  auto server = std::move(s).value();
  std::promise<Status> fatal_seen;
  server->SetFatalHandler([&](const Status& st) { fatal_seen.set_value(st); });
  server->Start();
  ASSERT_TRUE(Put(server.get(), "before", "1").ok());
  faulty.FailAll(io::FaultInjectionFileSystem::Op::kSync, true);
  auto r = Put(server.get(), "after", "1");
  EXPECT_EQ(r.status().code(), Code::kStopped);
  EXPECT_EQ(fatal_seen.get_future().get().code(), Code::kIoError);
  EXPECT_TRUE(server->failed());
  // Later writes are refused too, not queued forever.
  EXPECT_EQ(Put(server.get(), "later", "1").status().code(), Code::kStopped);
}

// Found by the power-loss tester: a first start cut between creating the log and syncing the
// bootstrap entries into it left a member that restarted and never elected itself. It now
// finishes the bootstrap (nothing was said or acknowledged before), unless its flags name
// another member or cluster than the log.
TEST_F(ServerTest, FirstStartCutBeforeTheBootstrapEntriesReachedTheLogBootstrapsAgain) {
  auto cut_first_start = [&] {
    io::FaultInjectionFileSystem faulty(fs_.get());
    faulty.FailNth(io::FaultInjectionFileSystem::Op::kSync, 2);  // 1: the segment, 2: entries
    auto s = Server::Open(Config(&faulty));
    ASSERT_FALSE(s.ok()) << "the bootstrap's sync was meant to fail";
    fs_->Crash(io::CrashOptions{io::CrashOptions::Tail::kDrop, std::nullopt, 1});
    ASSERT_TRUE(wal::Wal::Exists(fs_.get(), "/data/member/wal"));
  };
  cut_first_start();

  ServerConfig other = Config(fs_.get());
  other.cluster_token = "another-cluster";
  auto refused = Server::Open(std::move(other));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("remove the data dir"), std::string::npos)
      << refused.status().message();

  auto s = Open();
  ASSERT_NE(s, nullptr);
  auto put = Put(s.get(), "k", "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->header().revision(), 2);
}

// A first start cut before the backend's first sync can leave a data file LMDB cannot read;
// before any log exists nothing was applied, so it is moved aside and the start goes on. Once
// a log exists the same error stops the start.
TEST_F(ServerTest, UnreadableBackendWithoutALogIsMovedAsideAndWithALogStopsTheStart) {
  auto with_unreadable_file = [this](io::FileSystem* fs) {
    ServerConfig c = Config(fs);
    c.open_backend = [this, fs](
                         const std::string& dir,
                         const backend::Options&) -> Result<std::unique_ptr<backend::Backend>> {
      if (fs->Exists(dir + "/data.mdb")) {
        return Corruption(dir + "/data.mdb: MDB_INVALID: File is not an LMDB file");
      }
      return std::unique_ptr<backend::Backend>(std::make_unique<SharedBackend>(backend_.get()));
    };
    return c;
  };
  auto place_unreadable_file = [this] {
    ASSERT_TRUE(fs_->CreateDirs("/data/member/db").ok());
    auto f = fs_->OpenForAppend("/data/member/db/data.mdb");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(std::string(4096, 'x')).ok());
    ASSERT_TRUE((*f)->Close().ok());
  };
  place_unreadable_file();
  {
    auto opened = Server::Open(with_unreadable_file(fs_.get()));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_TRUE(fs_->Exists("/data/member/db.unreadable/data.mdb")) << "kept aside";
    auto s = std::move(opened).value();
    s->Start();
    ASSERT_TRUE(Put(s.get(), "k", "v").ok());
    s->Stop();
  }
  place_unreadable_file();
  auto refused = Server::Open(with_unreadable_file(fs_.get()));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kCorruption);
  EXPECT_NE(refused.status().message().find("MDB_INVALID"), std::string::npos);
}

TEST_F(ServerTest, CorruptLogStopsStartupNamingTheFile) {
  {
    auto s = Open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(s.get(), "k" + std::to_string(i), "v").ok());
    s->Stop();
  }
  auto names = fs_->ListDir("/data/member/wal");
  ASSERT_TRUE(names.ok());
  std::string segment;
  for (const auto& n : *names) {
    if (n.size() > 4 && n.substr(n.size() - 4) == ".wal") segment = "/data/member/wal/" + n;
  }
  ASSERT_FALSE(segment.empty());
  auto contents = fs_->ReadFile(segment);
  ASSERT_TRUE(contents.ok());
  std::string bytes = *contents;
  bytes[bytes.size() / 3] ^= 0x5A;  // inside an early record, with valid records after it
  ASSERT_TRUE(fs_->SetContentsForTest(segment, bytes).ok());
  backend_ = backend::NewMemoryBackend();
  auto s = Server::Open(Config(fs_.get()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kCorruption);
  EXPECT_NE(s.status().message().find(".wal"), std::string::npos) << s.status().message();
}

TEST_F(ServerTest, MembershipChangesAndTheirChecks) {
  auto s = Open();
  ASSERT_TRUE(Put(s.get(), "k", "v").ok());  // the member has published its attributes
  auto list = s->membership().List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name(), "t");

  // A learner that never starts: added, listed as unstarted, not promotable.
  etcdserverpb::MemberAddRequest add;
  add.add_peerurls("http://127.0.0.1:12380");
  add.set_islearner(true);
  auto added = Wait<etcdserverpb::MemberAddResponse>([&](auto cb) { s->MemberAdd(add, cb); });
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_TRUE(added->member().islearner());
  EXPECT_EQ(added->members_size(), 2);
  auto again = Wait<etcdserverpb::MemberAddResponse>([&](auto cb) { s->MemberAdd(add, cb); });
  EXPECT_EQ(again.status().message(), "Peer URLs already exists");
  etcdserverpb::MemberPromoteRequest promote;
  promote.set_id(added->member().id());
  auto promoted =
      Wait<etcdserverpb::MemberPromoteResponse>([&](auto cb) { s->MemberPromote(promote, cb); });
  EXPECT_EQ(promoted.status().message(),
            "can only promote a learner member which is in sync with leader");

  etcdserverpb::MemberUpdateRequest update;
  update.set_id(added->member().id());
  update.add_peerurls("http://127.0.0.1:22380");
  ASSERT_TRUE(
      Wait<etcdserverpb::MemberUpdateResponse>([&](auto cb) { s->MemberUpdate(update, cb); }).ok());
  EXPECT_EQ(s->membership().Get(MemberId(added->member().id()))->peer_urls(0),
            "http://127.0.0.1:22380");
  // unix peer URLs as etcd takes them (a socket "name:port" in the working directory); a path
  // is refused, as etcd refuses it.
  update.set_peerurls(0, "unix://t2:2380");
  ASSERT_TRUE(
      Wait<etcdserverpb::MemberUpdateResponse>([&](auto cb) { s->MemberUpdate(update, cb); }).ok());
  EXPECT_EQ(s->membership().Get(MemberId(added->member().id()))->peer_urls(0), "unix://t2:2380");
  update.set_peerurls(0, "unix:///tmp/t2");
  EXPECT_EQ(Wait<etcdserverpb::MemberUpdateResponse>([&](auto cb) { s->MemberUpdate(update, cb); })
                .status()
                .message(),
            "given member URLs are invalid");

  etcdserverpb::MemberRemoveRequest remove;
  remove.set_id(added->member().id());
  ASSERT_TRUE(
      Wait<etcdserverpb::MemberRemoveResponse>([&](auto cb) { s->MemberRemove(remove, cb); }).ok());
  EXPECT_EQ(s->membership().List().size(), 1u);
  EXPECT_TRUE(s->membership().IsRemoved(MemberId(added->member().id())));
  auto missing =
      Wait<etcdserverpb::MemberRemoveResponse>([&](auto cb) { s->MemberRemove(remove, cb); });
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  // Restart: the membership comes back from the backend and the log.
  s.reset();  // releases the data dir
  s = Open();
  ASSERT_TRUE(Get(s.get(), "k").ok());
  EXPECT_EQ(s->membership().List().size(), 1u);
  EXPECT_TRUE(s->membership().IsRemoved(MemberId(added->member().id())));
}

// Two learners asked for at once both pass MemberAdd's check against the same list (neither is
// applied yet); with --max-learners 1 the apply refuses the second, on every member alike, and a
// restart that replays the log skips it again.
TEST_F(ServerTest, SecondLearnerAskedForAtOnceIsRefusedWhenApplied) {
  ServerConfig c = Config(fs_.get());
  c.max_learners = 1;
  c.driver.checkpoint_at_stop = false;  // the restart replays both conf changes
  auto opened = Server::Open(c);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto s = std::move(opened).value();
  s->Start();
  ASSERT_TRUE(Put(s.get(), "k", "v").ok());
  // Hold the driver so that both requests are checked before either is proposed.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  s->driver()->RunInOrder([released](Status) { released.wait(); });
  std::vector<std::promise<Result<etcdserverpb::MemberAddResponse>>> answers(2);
  for (int i = 0; i < 2; ++i) {
    etcdserverpb::MemberAddRequest add;
    add.add_peerurls("http://127.0.0.1:1238" + std::to_string(i));
    add.set_islearner(true);
    s->MemberAdd(add, [&answers, i](Result<etcdserverpb::MemberAddResponse> r) {
      answers[i].set_value(std::move(r));
    });
  }
  release.set_value();
  auto first = answers[0].get_future().get();
  auto second = answers[1].get_future().get();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(second.status().message(), "too many learner members in cluster");
  auto learners = [](Server* server) {
    std::vector<std::string> urls;
    for (const auto& m : server->membership().List()) {
      if (m.is_learner()) urls.push_back(m.peer_urls(0));
    }
    return urls;
  };
  EXPECT_EQ(learners(s.get()), std::vector<std::string>{"http://127.0.0.1:12380"});
  ASSERT_TRUE(Put(s.get(), "k", "v2").ok());  // the member still commits alone
  s->Stop();
  s.reset();

  opened = Server::Open(c);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  s = std::move(opened).value();
  s->Start();
  ASSERT_TRUE(Put(s.get(), "k", "v3").ok());
  EXPECT_EQ(learners(s.get()), std::vector<std::string>{"http://127.0.0.1:12380"});
}

// A conf change and a later MemberUpdate, both after the last checkpoint but already in the
// backend: replaying the log at the next start must not bring back the conf change's older peer
// URLs (the update, a normal entry below the backend's index, is not replayed).
TEST_F(ServerTest, RestartKeepsPeerUrlsUpdatedAfterAConfChange) {
  ServerConfig c = Config(fs_.get());
  c.driver.checkpoint_at_stop = false;  // the log since the start is replayed at the next one
  MemberId learner;
  {
    auto opened = Server::Open(c);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto s = std::move(opened).value();
    s->Start();
    ASSERT_TRUE(Put(s.get(), "k", "v").ok());
    etcdserverpb::MemberAddRequest add;
    add.add_peerurls("http://127.0.0.1:12380");
    add.set_islearner(true);
    auto added = Wait<etcdserverpb::MemberAddResponse>([&](auto cb) { s->MemberAdd(add, cb); });
    ASSERT_TRUE(added.ok()) << added.status().ToString();
    learner = MemberId(added->member().id());
    etcdserverpb::MemberUpdateRequest update;
    update.set_id(learner.value());
    update.add_peerurls("http://127.0.0.1:22380");
    ASSERT_TRUE(Wait<etcdserverpb::MemberUpdateResponse>([&](auto cb) {
                  s->MemberUpdate(update, cb);
                }).ok());
    s->Stop();
  }
  auto opened = Server::Open(c);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto s = std::move(opened).value();
  s->Start();
  ASSERT_TRUE(Get(s.get(), "k").ok());  // linearizable: the log was replayed
  auto member = s->membership().Get(learner);
  ASSERT_TRUE(member.has_value());
  ASSERT_EQ(member->peer_urls_size(), 1);
  EXPECT_EQ(member->peer_urls(0), "http://127.0.0.1:22380");
  EXPECT_TRUE(member->is_learner());
}

}  // namespace
}  // namespace dolmen::server
