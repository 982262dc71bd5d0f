// The gRPC channels of a run: --conns channels, spread round-robin over --endpoints, and the
// stubs clients share. Client i uses channel i % conns, as etcd's benchmark tool does.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "options.h"

namespace dolmen::bench {

class Connections {
 public:
  explicit Connections(const Options& options);

  etcdserverpb::KV::Stub* Kv(int client) { return kv_[Slot(client)].get(); }
  etcdserverpb::Watch::Stub* Watch(int client) { return watch_[Slot(client)].get(); }
  etcdserverpb::Lease::Stub* Lease(int client) { return lease_[Slot(client)].get(); }

 private:
  size_t Slot(int client) const { return static_cast<size_t>(client) % kv_.size(); }

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch_;
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> lease_;
};

}  // namespace dolmen::bench
