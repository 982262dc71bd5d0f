// Server-side versions of etcd's clientv3/concurrency recipes, for the Lock and Election
// services: a key per lease under a name prefix, ordered by create revision, and waiting for
// the deletion of every key created before one's own. Everything is asynchronous: no gRPC
// thread blocks while a lock or an election waits.
//
// Waiting goes through KeyWaiter. Today it polls the store (PollingKeyWaiter, bounded backoff);
// the watch hub (src/watch) can replace it behind the same interface without touching the
// recipes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/server.h"

namespace dolmen::api {

// Waits for a condition on the store to hold. `done` runs on the waiter's thread: OK once
// `ready` returned true, its error if it failed, kCancelled once `cancelled` returns true, or
// kResourceExhausted when too many waits are pending.
class KeyWaiter {
 public:
  virtual ~KeyWaiter() = default;
  virtual void WaitUntil(std::function<Result<bool>()> ready, std::function<bool()> cancelled,
                         std::function<void(Status)> done) = 0;

  // Until `key` no longer holds the version created at `create_revision` (deleted, or deleted
  // and created again), or — with mod_revision > 0 — until that version changed.
  void WaitGone(const mvcc::Store* store, std::string key, int64_t create_revision,
                int64_t mod_revision, std::function<bool()> cancelled,
                std::function<void(Status)> done);
};

struct PollingOptions {
  std::chrono::milliseconds first_interval{10};
  std::chrono::milliseconds max_interval{200};  // backoff doubles up to this
  size_t max_waits = 10000;
};

class PollingKeyWaiter final : public KeyWaiter {
 public:
  explicit PollingKeyWaiter(PollingOptions options = {});
  ~PollingKeyWaiter() override;  // fails what is still waiting with kCancelled

  void WaitUntil(std::function<Result<bool>()> ready, std::function<bool()> cancelled,
                 std::function<void(Status)> done) override;

 private:
  struct Wait {
    std::function<Result<bool>()> ready;
    std::function<bool()> cancelled;
    std::function<void(Status)> done;
    std::chrono::steady_clock::time_point next_check;
    std::chrono::milliseconds interval;
  };
  void Loop();

  const PollingOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Wait> waits_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  bool added_ = false;     // guarded by mu_: a new wait to look at now
  std::thread thread_;
};

// An error of a recipe's own KV or lease call, as etcd's Lock and Election services return it:
// they run the client library in-process, whose errors reach gRPC-Go as plain Go errors, so
// the code is UNKNOWN while the text is etcd's usual one (e.g. "etcdserver: requested lease
// not found").
grpc::Status RecipeError(const Status& status);

// The end of the range of keys starting with `prefix` (etcd's GetPrefixRangeEnd).
std::string PrefixEnd(const std::string& prefix);

// The key a lease holds under a name: name + "/" + lease id in hex (as clientv3 names it).
std::string LeaseKey(const std::string& prefix, int64_t lease);

// etcd's waitDeletes: until no key under `prefix` was created at or before `max_create_revision`,
// waits for the youngest such key's deletion. `done` gets the header of the last read.
void WaitDeletes(server::Server* server, KeyWaiter* waiter, std::string prefix,
                 int64_t max_create_revision, std::function<bool()> cancelled,
                 std::function<void(Result<etcdserverpb::ResponseHeader>)> done);

// The oldest key under `prefix` (etcd's WithFirstCreate): the lock holder or the leader.
etcdserverpb::RangeRequest FirstCreated(const std::string& prefix);

}  // namespace dolmen::api
