// The receiving side of the gRPC Peer service: snapshot files, the membership a joining member
// asks for, and requests forwarded to the leader. It checks who is talking and hands what
// arrives to the Handler. (The message stream is not gRPC: peer_listener.h.)
//
// Admission (admission.h), for every snapshot and forwarded request: the sender's cluster id
// must be ours, the sender must not be a removed member, and the request must be addressed to
// us. A refusal ends the call with FAILED_PRECONDITION, a readable message and the kRefusedKey
// trailer. A malformed request ends the call with INVALID_ARGUMENT. Nothing from the network
// can crash us.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <string>

#include "dolmen/peer.grpc.pb.h"
#include "transport/transport.h"

namespace dolmen::transport {

class PeerService final : public peer::Peer::Service {
 public:
  PeerService(const Options& options, Handler* handler);
  grpc::Status Snapshot(grpc::ServerContext* context,
                        grpc::ServerReader<peer::SnapshotChunk>* reader,
                        peer::SnapshotAck* ack) override;
  grpc::Status GetMembers(grpc::ServerContext* context, const peer::GetMembersRequest* request,
                          peer::GetMembersResponse* response) override;
  // Forwarded requests: admitted like an envelope, then answered by the Handler.
  grpc::Status LeaseRenew(grpc::ServerContext* context, const peer::LeaseRenewRequest* request,
                          peer::LeaseRenewResponse* response) override;
  grpc::Status LeaseRenewBatch(grpc::ServerContext* context,
                               const peer::LeaseRenewBatchRequest* request,
                               peer::LeaseRenewBatchResponse* response) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* context,
                               const peer::LeaseTimeToLiveRequest* request,
                               peer::LeaseTimeToLiveResponse* response) override;
  grpc::Status PromoteMember(grpc::ServerContext* context,
                             const peer::PromoteMemberRequest* request,
                             peer::PromoteMemberResponse* response) override;
  // A peer's corruption check: admitted like a forwarded request, answered by the Handler.
  grpc::Status HashKV(grpc::ServerContext* context, const peer::HashKVRequest* request,
                      peer::HashKVResponse* response) override;

 private:
  // OK if a sender with this header may talk to us; otherwise the status that ends its call.
  grpc::Status Admit(grpc::ServerContextBase* context, const peer::Header& header);
  // Receives the file after a snapshot's begin chunk into a fresh file under snapshot_dir;
  // returns its path.
  Result<std::string> ReceiveFile(grpc::ServerReader<peer::SnapshotChunk>* reader,
                                  const peer::SnapshotBegin& begin);

  const Options options_;
  Handler* const handler_;
  std::atomic<uint64_t> next_file_ = 0;
  const uint64_t instance_;  // keeps file names from two runs apart
};

}  // namespace dolmen::transport
