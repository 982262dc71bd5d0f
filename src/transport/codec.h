// Raft messages <-> their wire form (proto/dolmen/peer.proto, docs/formats/peer.md).
//
// Encoding cannot fail. Decoding checks everything the network could get wrong that the Raft
// core would otherwise trust: unknown or local message types, unknown entry types. It never
// crashes on bad input; it returns a Status that names the problem.
#pragma once

#include <cstddef>

#include "base/status.h"
#include "dolmen/peer.pb.h"
#include "raft/message.h"
#include "transport/transport.h"

namespace dolmen::transport {

void EncodeMessage(const raft::Message& message, peer::Message* out);
Result<raft::Message> DecodeMessage(const peer::Message& in);

void EncodeMemberInfo(const Handler::MemberInfo& member, peer::MemberInfo* out);
Handler::MemberInfo DecodeMemberInfo(const peer::MemberInfo& in);

// A cheap upper-bound-ish estimate of a message's encoded size, used to cut batches without
// encoding twice. Counts payload bytes exactly and a fixed overhead per field group.
size_t ApproxEncodedBytes(const raft::Message& message);

}  // namespace dolmen::transport
