// The message stream's byte format on a plain TCP connection (docs/formats/peer.md, "The
// message stream"): a magic preamble from the sender, then length-prefixed protobuf frames.
//
// Why not gRPC: each envelope on a gRPC stream passed through gRPC's completion-queue threads
// on both sides, which wake one another per event; on a small machine those wake-ups were most
// of what a replicated write cost (docs/benchmarks.md). Here the sender writes the socket from
// the thread that produced the messages and the receiver reads it on a thread that hands the
// envelope straight to the server. etcd's members likewise stream over plain HTTP (rafthttp).
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace dolmen::transport {

// The first bytes a message-stream sender writes. They differ from HTTP/2's client preface
// ("PRI * HTTP/2.0..."), which is how the peer port tells the stream from gRPC's connections.
inline constexpr std::string_view kStreamMagic{"DOLMNMS1", 8};
// Frame: 4-byte little-endian length, then that many bytes of protobuf.
inline constexpr size_t kFrameHeaderBytes = 4;

// Appends one frame holding `message` to *out.
void AppendFrame(const google::protobuf::MessageLite& message, std::string* out);

// Blocking reads on a socket. ReadFrame returns the frame's body; kUnavailable ("closed") at a
// clean end of stream before a frame starts, kUnavailable for a broken connection or a stream
// that ends inside a frame, kInvalidArgument for a frame longer than `max_bytes`.
Status ReadFull(int fd, char* out, size_t n);
Result<std::string> ReadFrame(int fd, size_t max_bytes);
// The same on any byte source (a TLS connection): `read_full` behaves as ReadFull above.
using ReadFullFn = std::function<Status(char* out, size_t n)>;
Result<std::string> ReadFrame(const ReadFullFn& read_full, size_t max_bytes);

// Sends all of `data` on a blocking socket (MSG_NOSIGNAL: a closed peer is an error, not a
// SIGPIPE).
Status SendAll(int fd, std::string_view data);

}  // namespace dolmen::transport
