// Server-side versions of etcd's clientv3/concurrency recipes, for the Lock and Election
// services: a key per lease under a name prefix, ordered by create revision, and waiting for
// the deletion of every key created before one's own. Everything is asynchronous: no gRPC
// thread blocks while a lock or an election waits.
//
// Waiting goes through KeyWaiter. WatchKeyWaiter waits on the watch hub (src/watch), as etcd's
// recipes wait with a watch: the condition is looked at again only when a change to the keys
// it depends on is applied, so a waiter wakes as soon as the holder's key is deleted.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/server.h"
#include "watch/hub.h"

namespace dolmen::api {

// Waits for a condition on the store to hold. The condition may change only when a key in
// [key, range_end) changes (etcd's range rules: empty range_end = the one key). `done` runs
// once, on the waiter's thread: OK once `ready` returned true, its error if it failed,
// kCancelled once `cancelled` returns true (or, from the destructor, when the waiter stops);
// or at once on the caller's thread with kResourceExhausted when too many waits are pending.
class KeyWaiter {
 public:
  virtual ~KeyWaiter() = default;
  virtual void WaitUntil(std::string key, std::string range_end,
                         std::function<Result<bool>()> ready, std::function<bool()> cancelled,
                         std::function<void(Status)> done) = 0;

  // Until `key` no longer holds the version created at `create_revision` (deleted, or deleted
  // and created again), or — with mod_revision > 0 — until that version changed.
  void WaitGone(const mvcc::Store* store, std::string key, int64_t create_revision,
                int64_t mod_revision, std::function<bool()> cancelled,
                std::function<void(Status)> done);
};

struct WatchWaiterOptions {
  size_t max_waits = 10000;
  // `cancelled` is a flag of the caller's (e.g. the gRPC context's); it is read this often.
  // The store is never polled: `ready` runs once at the start and then only after a change.
  std::chrono::milliseconds cancel_check_interval{100};
};

// One hub stream with one watcher per pending wait (watch id = the wait's id), and one thread
// that reads the stream and looks at a wait's condition again after each change it matches.
// The hub must outlive the waiter.
class WatchKeyWaiter final : public KeyWaiter {
 public:
  explicit WatchKeyWaiter(watch::Hub* hub, WatchWaiterOptions options = {});
  ~WatchKeyWaiter() override;  // fails what is still waiting with kCancelled

  void WaitUntil(std::string key, std::string range_end, std::function<Result<bool>()> ready,
                 std::function<bool()> cancelled, std::function<void(Status)> done) override;

  size_t pending() const;  // for tests

 private:
  struct Wait {
    std::string key;
    std::string range_end;
    std::function<Result<bool>()> ready;
    std::function<bool()> cancelled;
    std::function<void(Status)> done;
  };
  void Loop();
  // Registers a hub watcher for `wait` under a fresh id (starting after the current revision)
  // and asks the loop to look at the condition once: any change after that is an event.
  void Watch(std::shared_ptr<Wait> wait);
  // Removes the wait with `id` if it is still pending; returns it (the caller then runs done).
  std::shared_ptr<Wait> Take(int64_t id);

  watch::Hub* const hub_;
  const WatchWaiterOptions options_;
  std::shared_ptr<watch::Stream> stream_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::shared_ptr<Wait>> waits_;  // by watch id; guarded by mu_
  std::vector<int64_t> to_check_;                   // guarded by mu_
  int64_t next_id_ = 1;                             // guarded by mu_; 0 means "hub picks"
  bool woken_ = false;                              // guarded by mu_: the stream has more
  bool stopping_ = false;                           // guarded by mu_
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
