// The real discovery service client: etcd's KV, Watch and Auth gRPC services (our generated
// stubs of etcd's rpc.proto) on the endpoints of --discovery-endpoints, with etcd 3.6's
// --discovery-* dial, request, keepalive, TLS and auth options. Serves v3_discovery.h, once,
// before the member starts; not thread-safe (one caller).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "discovery/v3_registry.h"

namespace dolmen::discovery {

struct V3ClientOptions {
  // "host:port", "http://host:port" or "https://host:port". As clientv3: http never uses TLS,
  // https always does, a bare host:port uses TLS when any TLS option asks for it.
  std::vector<std::string> endpoints;
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds keepalive_time{2000};
  std::chrono::milliseconds keepalive_timeout{6000};
  bool insecure_transport = true;
  bool insecure_skip_tls_verify = false;
  std::string cert_file, key_file, cacert_file;
  // --discovery-user "name" or "name:password"; --discovery-password.
  std::string user, password;
};

// Checks the options (endpoint syntax, readable TLS files); the client dials lazily, on its
// first request, trying the endpoints in turn.
Result<std::unique_ptr<V3Registry>> NewV3GrpcRegistry(const V3ClientOptions& options);

}  // namespace dolmen::discovery
