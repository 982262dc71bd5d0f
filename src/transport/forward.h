// Forwarding to the leader, the client side and the wire form of its errors: a follower asks
// the leader to renew a lease, report a lease's time to live or promote a learner (etcd's
// peer HTTP handlers for the same). The server decides whom to ask and retries; this file
// makes one request to one member. See docs/transport.md, "Forwarding to the leader".
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "dolmen/peer.pb.h"
#include "transport/transport.h"

namespace dolmen::transport {

// The server's answer <-> its wire form. Codes without a wire value travel as OTHER and come
// back as kInternal with the same message.
void EncodeForwardStatus(const Status& status, peer::ForwardStatus* out);
Status DecodeForwardStatus(const peer::ForwardStatus& in);

// One member's channels for forwarded requests, one per dialable peer URL, tried in order.
using ForwardChannels = std::vector<std::shared_ptr<grpc::Channel>>;

Result<int64_t> CallLeaseRenew(const ForwardChannels& channels, const peer::Header& header,
                               int64_t lease_id, Handler::Deadline deadline);
// Fails with kUnimplemented when the peer does not know the call (an earlier version).
Result<std::vector<Result<int64_t>>> CallLeaseRenewBatch(const ForwardChannels& channels,
                                                         const peer::Header& header,
                                                         const std::vector<int64_t>& lease_ids,
                                                         Handler::Deadline deadline);
Result<Handler::LeaseTtl> CallLeaseTimeToLive(const ForwardChannels& channels,
                                              const peer::Header& header, int64_t lease_id,
                                              bool keys, Handler::Deadline deadline);
Result<std::vector<Handler::MemberInfo>> CallPromoteMember(const ForwardChannels& channels,
                                                           const peer::Header& header,
                                                           MemberId learner,
                                                           Handler::Deadline deadline);

Result<Handler::HashKv> CallHashKv(const ForwardChannels& channels, const peer::Header& header,
                                   int64_t revision, Handler::Deadline deadline);

}  // namespace dolmen::transport
