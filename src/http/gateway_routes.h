#pragma once

// The gateway's paths, as etcd 3.4's generated grpc-gateway handlers register them
// (etcdserverpb/gw/rpc.pb.gw.go, v3lockpb/gw, v3electionpb/gw): every one is POST, and each
// names the gRPC method it calls. docs/http.md lists them.

#include <google/protobuf/descriptor.h>

#include <string_view>

namespace dolmen::http::gateway {

enum class CallKind {
  kUnary,
  kServerStream,  // one request, a stream of responses (Snapshot, Observe)
  kBidiStream,    // requests from the body, a stream of responses (Watch, LeaseKeepAlive)
};

struct Route {
  const char* path;    // e.g. "/v3/kv/range"
  const char* method;  // the gRPC method, e.g. "/etcdserverpb.KV/Range"
  // The messages' descriptors (the generated classes' static descriptor()): naming the classes
  // links their code in, so the types are always in the generated pool.
  const google::protobuf::Descriptor* (*request_type)();
  const google::protobuf::Descriptor* (*response_type)();
  CallKind kind;
};

// The route for `path` (already rewritten from /v3beta and /v3alpha), or null.
const Route* FindRoute(std::string_view path);

// Every route, in etcd's registration order (for docs and tests).
const Route* AllRoutes(size_t* count);

}  // namespace dolmen::http::gateway
