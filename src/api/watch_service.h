// etcdserverpb.Watch over gRPC's callback API. One bidirectional stream carries many watchers;
// the watch::Hub does the watching, this file only translates requests and responses and
// writes them with one Write in flight per stream (the hub's per-stream queue is the bound).
#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <set>

#include "api/require_leader.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/server.h"
#include "watch/hub.h"

namespace dolmen::api {

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  // `server`, `hub` and `monitor` must outlive every stream (member.cc keeps them until gRPC
  // is down). `monitor` ends streams that require a leader once there is none for long.
  WatchService(server::Server* server, watch::Hub* hub, LeaderMonitor* monitor);

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override;

  // Ends every open stream with etcd's "server stopped" error, so shutdown need not wait for
  // clients (watch streams never end on their own). New streams are refused from now on.
  void Shutdown();

 private:
  class Reactor;
  bool Register(Reactor* r);  // false once shutting down
  void Unregister(Reactor* r);

  server::Server* const server_;
  watch::Hub* const hub_;
  LeaderMonitor* const monitor_;
  // etcd splits fragment-enabled responses at --max-request-bytes plus gRPC's overhead.
  const size_t max_response_bytes_;

  std::mutex mu_;
  std::set<Reactor*> live_;
  bool shutting_down_ = false;
};

}  // namespace dolmen::api
