// The receiving side: the Peer gRPC service that checks who is talking and hands messages and
// snapshot files to the Handler. The message stream runs on gRPC's callback API: each envelope
// is handled on the gRPC thread that read it, so no thread hand-off sits between the socket and
// Handler::OnMessages (on a 2-core machine every hand-off is a wake-up on the critical path of
// each write, twice per round trip). The rest (snapshots, membership, forwarded requests) is
// rarer and may block, so it stays on the synchronous API.
//
// Admission, for every envelope and snapshot: the sender's cluster id must be ours, the sender
// must not be a removed member, and the envelope must be addressed to us. A refusal ends the call
// with FAILED_PRECONDITION, a readable message and the kRefusedKey trailer. A malformed envelope
// (undecodable message, a message whose from/to disagree with the header, a kSnap outside the
// snapshot stream) ends the call with INVALID_ARGUMENT. Nothing from the network can crash us.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <string>

#include "dolmen/peer.grpc.pb.h"
#include "transport/transport.h"

namespace dolmen::transport {

class PeerService final : public peer::Peer::WithCallbackMethod_Stream<peer::Peer::Service> {
 public:
  PeerService(const Options& options, Handler* handler);
  // Before the server starts: called with the sender of each new inbound stream, once its
  // first envelope is admitted (the transport ends its own backoff towards that peer).
  void SetOnPeerStream(std::function<void(MemberId)> on_peer_stream) {
    on_peer_stream_ = std::move(on_peer_stream);
  }

  grpc::ServerReadReactor<peer::Envelope>* Stream(grpc::CallbackServerContext* context,
                                                  peer::StreamAck* ack) override;
  grpc::Status Snapshot(grpc::ServerContext* context,
                        grpc::ServerReader<peer::SnapshotChunk>* reader,
                        peer::SnapshotAck* ack) override;
  grpc::Status GetMembers(grpc::ServerContext* context, const peer::GetMembersRequest* request,
                          peer::GetMembersResponse* response) override;
  // Forwarded requests: admitted like an envelope, then answered by the Handler.
  grpc::Status LeaseRenew(grpc::ServerContext* context, const peer::LeaseRenewRequest* request,
                          peer::LeaseRenewResponse* response) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* context,
                               const peer::LeaseTimeToLiveRequest* request,
                               peer::LeaseTimeToLiveResponse* response) override;
  grpc::Status PromoteMember(grpc::ServerContext* context,
                             const peer::PromoteMemberRequest* request,
                             peer::PromoteMemberResponse* response) override;

 private:
  class StreamReactor;

  // OK if a sender with this header may talk to us; otherwise the status that ends its call.
  grpc::Status Admit(grpc::ServerContextBase* context, const peer::Header& header);
  // One envelope of a message stream: admitted, decoded and handed over. `first` is the
  // stream's first envelope. OK, or the status that ends the stream.
  grpc::Status Receive(grpc::ServerContextBase* context, const peer::Envelope& envelope,
                       bool first);
  // Receives the file after a snapshot's begin chunk into a fresh file under snapshot_dir;
  // returns its path.
  Result<std::string> ReceiveFile(grpc::ServerReader<peer::SnapshotChunk>* reader,
                                  const peer::SnapshotBegin& begin);

  std::function<void(MemberId)> on_peer_stream_;
  const Options options_;
  Handler* const handler_;
  std::atomic<uint64_t> next_file_ = 0;
  const uint64_t instance_;  // keeps file names from two runs apart
};

}  // namespace dolmen::transport
