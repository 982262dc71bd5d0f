// clientv3's "require leader" (gRPC metadata `hasleader: true`, set by WithRequireLeader: etcdctl
// watch, every keep-alive stream of clientv3's lessor), honoured as etcd's v3rpc interceptors
// do:
// - a unary call or a new stream carrying it fails at once with "etcdserver: no leader"
//   (UNAVAILABLE) while this member knows no leader;
// - an open stream carrying it is ended with the same error once the member has had no leader
//   for 3 election timeouts in a row (etcd's monitorLeader, checked once per election
//   timeout).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "server/server.h"

namespace dolmen::api {

// Whether the call's client asked for a leader.
bool RequiresLeader(const grpc::CallbackServerContext* context);

// For unary handlers: if the client requires a leader and there is none, finishes `reactor`
// with etcd's "no leader" and returns true (the handler returns the reactor at once).
bool RefuseWithoutLeader(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                         const server::Server* server);

class LeaderMonitor {
 public:
  // A stream the monitor may end. CancelNoLeader is called with the monitor's lock held and
  // must not block; it is never called after Unregister returned.
  class Stream {
   public:
    virtual ~Stream() = default;
    virtual void CancelNoLeader() = 0;
  };

  explicit LeaderMonitor(const server::Server* server);
  ~LeaderMonitor();
  LeaderMonitor(const LeaderMonitor&) = delete;
  LeaderMonitor& operator=(const LeaderMonitor&) = delete;

  void Start();
  void Stop();

  void Register(Stream* stream);
  void Unregister(Stream* stream);

 private:
  void Loop();

  const server::Server* const server_;
  const std::chrono::milliseconds period_;  // one election timeout
  // Recursive: a stream's CancelNoLeader may end it at once, and gRPC may run its OnDone
  // (which unregisters) on this very thread.
  std::recursive_mutex mu_;
  std::condition_variable_any cv_;
  std::set<Stream*> streams_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::api
