// The discovery service as etcd 3.6's v3 discovery uses it: an etcd-compatible cluster whose
// keyspace holds one registry per discovery token. The protocol (v3_discovery.h) speaks to it
// only through this interface, so every rule is unit-tested against an in-memory fake;
// v3_grpc_registry.h is the real one (etcd's KV, Watch and Auth gRPC services).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace dolmen::discovery {

struct RegistryKv {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
};

struct RegistryRange {
  std::vector<RegistryKv> kvs;
  int64_t revision = 0;  // the store's revision the answer was read at (response header)
};

class V3Registry {
 public:
  virtual ~V3Registry() = default;
  // A linearizable read of `key`, or of every key under it when `prefix`. Any failure (the
  // service unreachable, a timeout) is an error the caller may retry.
  virtual Result<RegistryRange> Get(const std::string& key, bool prefix) = 0;
  virtual Status Put(const std::string& key, const std::string& value) = 0;
  // Watches the keys under `prefix` from `start_revision` on, passing each put to `on_put`
  // until it returns false (then OK). Blocks; an error when the stream fails or is cancelled
  // (e.g. the revision was compacted), after which the caller reads again and re-watches.
  virtual Status WatchPuts(const std::string& prefix, int64_t start_revision,
                           const std::function<bool(const RegistryKv&)>& on_put) = 0;
};

}  // namespace dolmen::discovery
