// Shared by the server tests that run a member on fakes.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/check.h"
#include "base/mutex.h"
#include "io/posix/temp_dir.h"
#include "server/server.h"

namespace dolmen::server::fakes {

// Lets several Server lifetimes share one backend, as a restarted process shares its files.
// Tests derive from it to change one call.
class SharedBackend : public backend::Backend {
 public:
  explicit SharedBackend(backend::Backend* base) : base_(base) {}
  Result<std::unique_ptr<backend::ReadTxn>> BeginRead() override { return base_->BeginRead(); }
  Result<std::unique_ptr<backend::WriteTxn>> BeginWrite() override { return base_->BeginWrite(); }
  Status Sync() override { return base_->Sync(); }
  uint64_t SizeBytes() override { return base_->SizeBytes(); }
  uint64_t SizeInUseBytes() override { return base_->SizeInUseBytes(); }
  Status CopyTo(const std::string& path) override { return base_->CopyTo(path); }
  Status Defragment() override { return base_->Defragment(); }
  Result<std::unique_ptr<backend::PreparedDefragment>> PrepareDefragment() override {
    return base_->PrepareDefragment();
  }

 private:
  backend::Backend* base_;
};

using io::testing::TempDir;

// Opens and starts a member: null (with a test failure saying why) if it does not open.
inline std::unique_ptr<Server> OpenAndStart(ServerConfig config) {
  auto s = Server::Open(std::move(config));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  auto server = std::move(s).value();
  server->Start();
  return server;
}

// Calls an asynchronous Server entry point and waits for its callback.
template <typename T>
Result<T> Wait(const std::function<void(Callback<T>)>& call) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  call([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

// Returns once the member's owner thread finished a turn that took everything queued before
// the call (Driver::RunInOrder runs its task after that turn): whatever the member can do with
// what it already has (an election it won alone, entries it replays), it has done. kStopped if
// the member stopped first.
inline Status TurnBarrier(Server* s) {
  std::promise<Status> p;
  auto f = p.get_future();
  s->driver()->RunInOrder([&p](Status st) { p.set_value(st); });
  return f.get();
}

// True once `done` holds, checked at once and after each of up to `turns` turns of the member
// (TurnBarrier): for state the member reaches by itself, with no other thread and no passing
// time involved (a lone member's election, replaying its log after a start).
inline bool AwaitWithinTurns(Server* s, const std::function<bool()>& done, int turns) {
  for (int i = 0; i < turns; ++i) {
    if (done()) return true;
    if (!TurnBarrier(s).ok()) break;
  }
  return done();
}

// Wakes a waiting test each time a member applied a batch with changes or installed a
// snapshot, so the test awaits the member's state (a key count, a revision) instead of
// sleeping between polls. Attach before the member's Start; the observers run on its owner
// thread (a member in src/embed gives them to the watch hub instead). Notify() is for the
// test's own hooks as well (a PeerSender told of a membership change).
class AppliedSignal {
 public:
  void Attach(Server* s) {
    s->SetApplyObserver([this](std::vector<mvcc::Event>, Revision) { Notify(); });
    s->SetRestoreObserver([this](Revision) { Notify(); });
  }
  void Notify() {
    {
      base::MutexLock l(&mu_);
      ++changes_;
    }
    cv_.SignalAll();
  }
  // True once `done` holds, checked at once and again after every change; false if it still
  // does not after `limit`.
  bool Await(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      uint64_t seen;
      {
        base::MutexLock l(&mu_);
        seen = changes_;
      }
      if (done()) return true;
      base::MutexLock l(&mu_);
      while (changes_ == seen) {
        if (!cv_.WaitUntil(&mu_, deadline) && changes_ == seen) return false;
      }
    }
  }

 private:
  base::Mutex mu_;
  base::CondVar cv_;
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
};

// The KV calls the tests make, through the Server's entry points as the API layer calls them.
inline Result<etcdserverpb::PutResponse> Put(Server* s, const std::string& key,
                                             const std::string& value, int64_t lease = 0,
                                             bool prev_kv = false) {
  etcdserverpb::PutRequest r;
  r.set_key(key);
  r.set_value(value);
  r.set_lease(lease);
  r.set_prev_kv(prev_kv);
  return Wait<etcdserverpb::PutResponse>([&](auto cb) { s->Put(r, cb); });
}

inline Result<etcdserverpb::RangeResponse> Get(Server* s, const std::string& key,
                                               const std::string& end = "", int64_t rev = 0) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  r.set_revision(rev);
  return Wait<etcdserverpb::RangeResponse>([&](auto cb) { s->Range(r, cb); });
}

inline Result<etcdserverpb::DeleteRangeResponse> Delete(Server* s, const std::string& key,
                                                        const std::string& end = "") {
  etcdserverpb::DeleteRangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  return Wait<etcdserverpb::DeleteRangeResponse>([&](auto cb) { s->DeleteRange(r, cb); });
}

inline Result<etcdserverpb::CompactionResponse> Compact(Server* s, int64_t revision) {
  etcdserverpb::CompactionRequest r;
  r.set_revision(revision);
  return Wait<etcdserverpb::CompactionResponse>([&](auto cb) { s->Compact(r, cb); });
}

}  // namespace dolmen::server::fakes
