// Slow work runs beside the Raft loop, not on it (docs/maintenance.md, "Beside the loop"): while
// a Hash, a Defragment, a snapshot copy or a checkpoint's backend sync is held in the middle, a
// put still completes. Read-only txns are served off the loop at one revision, and every queue
// in front of the loop refuses work with "too many requests" when full.
//
// No sleeps: each test holds the slow operation with a Blocker until a put went through, and
// every wait has a deadline, so a regression fails instead of hanging.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "backend/lmdb/lmdb_backend.h"
#include "io/posix/posix_file_system.h"
#include "server/maintenance.h"
#include "server/server.h"
#include "server/test_support.h"

namespace dolmen::server {
namespace {

using fakes::Get;
using fakes::TempDir;
using Clock = std::chrono::steady_clock;

// Generous: the test fails when it passes, not when the machine is slow (ASan, busy CI).
constexpr auto kDeadline = std::chrono::seconds(30);

// Holds the threads that call Block() until Release(); the test waits (bounded) until one is held.
class Blocker {
 public:
  void Block() {
    std::unique_lock lock(mu_);
    ++held_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
  }
  bool IsHeld() {
    std::lock_guard lock(mu_);
    return held_ > 0;
  }
  bool WaitHeld() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [this] { return held_ > 0; });
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int held_ = 0;
  bool released_ = false;
};

// Releases the blocker when the test ends, failed or not, before the server stops (Stop waits
// for the held thread).
class ReleaseAtEnd {
 public:
  explicit ReleaseAtEnd(Blocker* b) : b_(b) {}
  ~ReleaseAtEnd() { b_->Release(); }

 private:
  Blocker* b_;
};

// The result of an asynchronous call, or kTimeout after kDeadline.
template <typename T>
Result<T> Within(std::future<Result<T>>& f) {
  if (f.wait_for(kDeadline) != std::future_status::ready) {
    return Status(Code::kTimeout, "no answer within the deadline");
  }
  return f.get();
}

template <typename T>
struct Pending {
  std::shared_ptr<std::promise<Result<T>>> promise = std::make_shared<std::promise<Result<T>>>();
  std::future<Result<T>> future = promise->get_future();
  Callback<T> callback() {
    return [p = promise](Result<T> r) { p->set_value(std::move(r)); };
  }
};

Result<etcdserverpb::PutResponse> PutWithin(Server* s, const std::string& key,
                                            const std::string& value) {
  etcdserverpb::PutRequest r;
  r.set_key(key);
  r.set_value(value);
  Pending<etcdserverpb::PutResponse> put;
  s->Put(r, put.callback());
  return Within(put.future);
}

// Puts during/0..n-1 with the defragmentation held: each must be acknowledged within the
// deadline.
void PutsAcknowledgedDuring(Server* s, int n, const std::string& what) {
  for (int i = 0; i < n; ++i) {
    auto put = PutWithin(s, "during/" + std::to_string(i), "d" + std::to_string(i));
    ASSERT_TRUE(put.ok()) << "a put waited for " << what << ": " << put.status().ToString();
  }
}

// How many during/ keys `s` serves; -1 if the read fails.
int DuringKeys(Server* s) {
  auto during = Get(s, "during/", "during0");
  return during.ok() ? during->kvs_size() : -1;
}

// Starts a Defragment; the future holds its status.
std::future<Status> StartDefragment(Server* s) {
  auto done = std::make_shared<std::promise<Status>>();
  std::future<Status> result = done->get_future();
  s->Defragment([done](Status st) { done->set_value(st); });
  return result;
}

// Backend::Sync held by a Blocker once armed: the checkpoint's sync.
class SyncHoldingBackend final : public fakes::SharedBackend {
 public:
  SyncHoldingBackend(std::unique_ptr<backend::Backend> base, Blocker* blocker,
                     std::atomic<bool>* armed)
      : SharedBackend(base.get()), owned_(std::move(base)), blocker_(blocker), armed_(armed) {}
  Status Sync() override {
    if (armed_->exchange(false)) blocker_->Block();
    return SharedBackend::Sync();
  }

 private:
  std::unique_ptr<backend::Backend> owned_;
  Blocker* blocker_;
  std::atomic<bool>* armed_;
};

class BesideLoopTest : public ::testing::Test {
 protected:
  std::unique_ptr<Server> Open(const std::function<void(ServerConfig*)>& tweak = nullptr) {
    ServerConfig c;
    c.name = "t";
    c.data_dir = dir_.path();
    c.peer_urls = {"http://localhost:2380"};
    c.fs = io::PosixFileSystem();
    c.driver.checkpoint_entries = 1u << 30;
    c.driver.checkpoint_interval = std::chrono::hours(1);
    c.open_backend = [](const std::string& path, const backend::Options& options) {
      return backend::OpenLmdb(path, options);
    };
    if (tweak) tweak(&c);
    return fakes::OpenAndStart(std::move(c));
  }
  // A server whose maintenance hook holds `operation` on blocker_.
  std::unique_ptr<Server> OpenHolding(const std::string& operation) {
    auto s = Open();
    if (s == nullptr) return nullptr;
    // Set before any maintenance runs; the hook is read on the maintenance thread afterwards.
    s->SetMaintenanceHookForTest([this, operation](const char* op) {
      if (operation == op) blocker_.Block();
    });
    return s;
  }

  TempDir dir_;
  Blocker blocker_;
};

TEST_F(BesideLoopTest, APutCompletesWhileAHashIsHeld) {
  auto s = OpenHolding("hash");
  ASSERT_TRUE(s);
  ReleaseAtEnd release(&blocker_);
  ASSERT_TRUE(PutWithin(s.get(), "a", "1").ok());
  const Revision before = s->current_revision();
  Pending<BackendHash> hash;
  s->Hash(hash.callback());
  ASSERT_TRUE(blocker_.WaitHeld()) << "the hash never started";
  auto put = PutWithin(s.get(), "b", "2");
  ASSERT_TRUE(put.ok()) << "a put waited for the hash: " << put.status().ToString();
  EXPECT_EQ(hash.future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  blocker_.Release();
  auto h = Within(hash.future);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  // The hash is of the state it was asked at, not of the put that overtook it.
  EXPECT_EQ(h->revision, before);
  Pending<BackendHash> again;
  s->Hash(again.callback());
  auto h2 = Within(again.future);
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(h2->revision, s->current_revision());
  EXPECT_NE(h2->hash, h->hash);
}

TEST_F(BesideLoopTest, PutsCompleteWhileADefragmentIsHeldAndNoneIsLost) {
  auto s = OpenHolding("defragment");
  ASSERT_TRUE(s);
  ReleaseAtEnd release(&blocker_);
  const std::string big(4000, 'v');
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(PutWithin(s.get(), "del/" + std::to_string(i), big).ok());
  }
  // Committed on their own: in the same backend batch as the delete below, the pages would be
  // freed before the file (and the dbSize peak) ever held them, and there would be nothing for
  // the defragmentation to give back.
  std::promise<Status> filled;
  s->AfterBackendCommit([&filled](Status st) { filled.set_value(st); });
  ASSERT_TRUE(filled.get_future().get().ok());
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("del/");
  del.set_range_end("del0");
  ASSERT_TRUE(fakes::Wait<etcdserverpb::DeleteRangeResponse>([&](auto cb) {
                s->DeleteRange(del, cb);
              }).ok());
  ASSERT_TRUE(fakes::Compact(s.get(), s->current_revision().value()).ok());
  std::promise<Status> committed;
  s->AfterBackendCommit([&committed](Status st) { committed.set_value(st); });
  ASSERT_TRUE(committed.get_future().get().ok());
  const uint64_t size_before = s->backend_size_bytes();

  std::future<Status> done = StartDefragment(s.get());
  // Held after the copy, before the swap: these puts must reach the swapped-in file.
  ASSERT_TRUE(blocker_.WaitHeld()) << "the defragmentation never started";
  ASSERT_NO_FATAL_FAILURE(PutsAcknowledgedDuring(s.get(), 100, "the defragmentation"));
  EXPECT_EQ(done.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  blocker_.Release();
  ASSERT_EQ(done.wait_for(kDeadline), std::future_status::ready);
  Status st = done.get();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_LT(s->backend_size_bytes() * 2, size_before);
  // Every acknowledged put is in the new file: the values are read from the backend.
  ASSERT_EQ(DuringKeys(s.get()), 100);
  // And after a restart, with the log released by the stop's checkpoint.
  s.reset();
  s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(DuringKeys(s.get()), 100);
  EXPECT_EQ(Get(s.get(), "del/", "del0")->kvs_size(), 0);
}

// The swap itself runs beside the loop: held after the switch to the copy and before the copy is
// renamed over the data file, puts are still acknowledged (applied into the copy), a checkpoint
// whose backend sync waits for the rename does not hold them up, and none is lost, before or
// after a restart.
TEST_F(BesideLoopTest, PutsAreAcknowledgedWhileADefragmentSwapIsHeld) {
  std::atomic<bool> armed{false};
  auto s = Open([&](ServerConfig* c) {
    c->driver.checkpoint_entries = 20;  // checkpoints (and their syncs) during the hold
    c->open_backend = [this, &armed](const std::string& path, backend::Options options) {
      options.after_defragment_switch_for_test = [this, &armed] {
        if (armed.exchange(false)) blocker_.Block();
      };
      return backend::OpenLmdb(path, options);
    };
  });
  ASSERT_TRUE(s);
  ReleaseAtEnd release(&blocker_);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(PutWithin(s.get(), "before/" + std::to_string(i), std::string(1000, 'b')).ok());
  }
  armed = true;
  std::future<Status> done = StartDefragment(s.get());
  ASSERT_TRUE(blocker_.WaitHeld()) << "the defragmentation never switched to its copy";
  ASSERT_NO_FATAL_FAILURE(PutsAcknowledgedDuring(s.get(), 50, "the swap"));
  EXPECT_EQ(DuringKeys(s.get()), 50);
  EXPECT_EQ(done.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  blocker_.Release();
  ASSERT_EQ(done.wait_for(kDeadline), std::future_status::ready);
  Status st = done.get();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(PutWithin(s.get(), "after", "a").ok());
  s.reset();
  s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(DuringKeys(s.get()), 50);
  EXPECT_EQ(Get(s.get(), "before/", "before0")->kvs_size(), 20);
  EXPECT_EQ(Get(s.get(), "after", "")->kvs_size(), 1);
}

TEST_F(BesideLoopTest, APutCompletesWhileASnapshotCopyIsHeld) {
  auto s = OpenHolding("snapshot");
  ASSERT_TRUE(s);
  ReleaseAtEnd release(&blocker_);
  ASSERT_TRUE(PutWithin(s.get(), "a", "1").ok());
  auto snapshot = std::async(std::launch::async, [&] { return s->OpenSnapshot().status(); });
  ASSERT_TRUE(blocker_.WaitHeld()) << "the snapshot never started";
  auto put = PutWithin(s.get(), "b", "2");
  ASSERT_TRUE(put.ok()) << "a put waited for the snapshot: " << put.status().ToString();
  blocker_.Release();
  ASSERT_EQ(snapshot.wait_for(kDeadline), std::future_status::ready);
  Status st = snapshot.get();
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(BesideLoopTest, PutsCompleteWhileACheckpointSyncIsHeld) {
  std::atomic<bool> armed{false};
  auto s = Open([&](ServerConfig* c) {
    c->driver.checkpoint_entries = 5;
    c->open_backend = [this, &armed](const std::string& path, const backend::Options& options)
        -> Result<std::unique_ptr<backend::Backend>> {
      ASSIGN_OR_RETURN(auto base, backend::OpenLmdb(path, options));
      return std::unique_ptr<backend::Backend>(
          std::make_unique<SyncHoldingBackend>(std::move(base), &blocker_, &armed));
    };
  });
  ASSERT_TRUE(s);
  ReleaseAtEnd release(&blocker_);
  armed = true;
  // The fifth applied entry makes a checkpoint due; its sync is then held.
  for (int i = 0; i < 6 && !blocker_.IsHeld(); ++i) {
    ASSERT_TRUE(PutWithin(s.get(), "k" + std::to_string(i), "v").ok());
  }
  ASSERT_TRUE(blocker_.WaitHeld()) << "no checkpoint sync started";
  for (int i = 0; i < 20; ++i) {
    auto put = PutWithin(s.get(), "while/" + std::to_string(i), "v");
    ASSERT_TRUE(put.ok()) << "a put waited for the checkpoint's sync: " << put.status().ToString();
  }
  blocker_.Release();
  EXPECT_EQ(Get(s.get(), "while/", "while0")->kvs_size(), 20);
}

// A read-only txn reads its ranges at one revision, beside a writer that changes both keys in
// each txn: the two values it returns are always equal.
TEST_F(BesideLoopTest, ReadOnlyTxnSeesOneRevisionWhileWritesGoOn) {
  auto s = Open();
  ASSERT_TRUE(s);
  auto both = [](int i) {
    etcdserverpb::TxnRequest t;
    for (const char* key : {"x", "y"}) {
      auto* put = t.add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(std::to_string(i));
    }
    return t;
  };
  ASSERT_TRUE(fakes::Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(both(0), cb); }).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    for (int i = 1; i <= 400 && !stop.load(); ++i) {
      if (fakes::Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(both(i), cb); }).ok()) {
        ++writes;
      }
    }
  });
  etcdserverpb::TxnRequest read;
  auto* cmp = read.add_compare();
  cmp->set_key("x");
  cmp->set_target(etcdserverpb::Compare::VERSION);
  cmp->set_result(etcdserverpb::Compare::GREATER);
  cmp->set_version(0);
  read.add_success()->mutable_request_range()->set_key("x");
  read.add_success()->mutable_request_range()->set_key("y");
  int mismatches = 0, reads = 0;
  const auto end = Clock::now() + kDeadline;
  // 400 reads, and on until a write landed among them (on a loaded machine the reads can all
  // finish before the writer thread first runs), within the deadline.
  for (; (reads < 400 || writes.load() == 0) && Clock::now() < end; ++reads) {
    auto r = fakes::Wait<etcdserverpb::TxnResponse>([&](auto cb) { s->Txn(read, cb); });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->succeeded());
    ASSERT_EQ(r->responses_size(), 2);
    const auto& x = r->responses(0).response_range();
    const auto& y = r->responses(1).response_range();
    ASSERT_EQ(x.kvs_size(), 1);
    ASSERT_EQ(y.kvs_size(), 1);
    if (x.kvs(0).value() != y.kvs(0).value()) ++mismatches;
    EXPECT_EQ(x.header().revision(), r->header().revision());
    EXPECT_EQ(y.header().revision(), r->header().revision());
    EXPECT_EQ(x.kvs(0).mod_revision(), y.kvs(0).mod_revision());
    EXPECT_LE(x.kvs(0).mod_revision(), r->header().revision());
  }
  stop = true;
  writer.join();
  EXPECT_EQ(mismatches, 0) << "of " << reads << " reads, beside " << writes.load() << " writes";
  EXPECT_GT(writes.load(), 0);
}

// With the loop held in a task, what queues in front of it is bounded.
TEST_F(BesideLoopTest, FullQueuesAnswerTooManyRequests) {
  auto s = Open([](ServerConfig* c) {
    c->driver.max_pending = 1;
    c->driver.max_pending_reads = 1;
    c->driver.max_pending_tasks = 1;
  });
  ASSERT_TRUE(s);
  ReleaseAtEnd release(&blocker_);
  // A leader, and nothing of the start (the member's own attribute proposal) still pending: a
  // put refused for now is retried, within the deadline.
  bool idle = false;
  for (const auto end = Clock::now() + kDeadline; !idle && Clock::now() < end;) {
    auto put = PutWithin(s.get(), "a", "1");
    idle = put.ok();
    if (!put.ok()) {
      ASSERT_EQ(put.status().code(), Code::kTooManyRequests) << put.status().ToString();
    }
  }
  ASSERT_TRUE(idle);
  Driver* driver = s->driver();
  driver->RunInOrder([this](Status) { blocker_.Block(); });
  ASSERT_TRUE(blocker_.WaitHeld()) << "the loop never ran the holding task";

  // Queues two callbacks with `queue`: the first is accepted, the second refused at once.
  auto second_refused = [](const std::function<void(std::function<void(Status)>)>& queue) {
    auto accepted = std::make_shared<std::promise<Status>>();
    auto refused = std::make_shared<std::promise<Status>>();
    queue([accepted](Status st) { accepted->set_value(st); });
    queue([refused](Status st) { refused->set_value(st); });
    auto no = refused->get_future();
    EXPECT_EQ(no.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    if (no.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      EXPECT_EQ(no.get().code(), Code::kTooManyRequests);
    }
    return accepted->get_future();
  };
  auto task = second_refused([driver](auto cb) { driver->RunInOrder(cb); });
  auto read = second_refused([driver](auto cb) { driver->ReadIndex(cb); });

  etcdserverpb::PutRequest r;
  r.set_key("b");
  Pending<etcdserverpb::PutResponse> first, second;
  s->Put(r, first.callback());
  s->Put(r, second.callback());
  ASSERT_EQ(second.future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto no = second.future.get();
  ASSERT_FALSE(no.ok());
  EXPECT_EQ(no.status().code(), Code::kTooManyRequests);
  EXPECT_EQ(no.status().message(), "too many requests");

  blocker_.Release();
  auto yes = Within(first.future);
  EXPECT_TRUE(yes.ok()) << yes.status().ToString();
  ASSERT_EQ(task.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(task.get().ok());
  ASSERT_EQ(read.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(read.get().ok());
}

}  // namespace
}  // namespace dolmen::server
