// Methods served by raw gRPC handlers (bytes in, bytes out) instead of generated protobuf-typed
// ones: their messages are grpc::ByteBuffers, which the metrics interceptor must not take for
// protobuf messages.
#pragma once

namespace dolmen::api {

// KV.Range: the reply is written straight from the stored records (kv_service.h).
inline constexpr char kRawRangeMethod[] = "/etcdserverpb.KV/Range";

}  // namespace dolmen::api
