// The peer port. One listening socket per --listen-peer-urls entry carries two protocols, as
// etcd's peer port does (cmux): the message stream (stream_frame.h), which we read ourselves,
// and gRPC (snapshots, membership, forwarded requests). Each accepted connection is told apart
// by its first bytes: kStreamMagic, or anything else (HTTP/2's client preface), which goes to
// the gRPC server as an already-connected socket. The sockets are TCP or, for unix:// URLs,
// unix-domain sockets; everything here works the same on both.
//
// Threads: one acceptor; one per message stream (blocking reads; each envelope is admitted,
// decoded and handed to Handler::OnMessages on that thread, so no hand-off sits between the
// socket and the server); and, briefly, one per connection whose first bytes have not arrived
// (at most 64 at once: beyond that new connections are closed until some have spoken or timed
// out after 10 s).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "dolmen/peer.pb.h"
#include "transport/socket.h"
#include "transport/transport.h"

namespace dolmen::transport {

class PeerListener {
 public:
  PeerListener(const Options& options, Handler* handler);
  ~PeerListener();  // Stop()

  // Before Start: called with the sender of each new inbound message stream, once its first
  // envelope is admitted (the transport ends its own backoff towards that peer).
  void SetOnPeerStream(std::function<void(MemberId)> on_peer_stream) {
    on_peer_stream_ = std::move(on_peer_stream);
  }

  // Binds every listen URL (kUnavailable naming the URL if one cannot be bound; for a unix URL
  // also why: a live socket or another file at the path, a path too long).
  Status Bind();
  // Starts accepting. Connections that are not message streams go to `grpc_server`, which must
  // outlive Stop.
  void Start(grpc::Server* grpc_server);
  // Stops accepting (closes the listening sockets and removes the files of unix ones), ends every
  // message stream and joins all threads: afterwards no Handler method runs from here.
  // Idempotent.
  void Stop();

 private:
  struct Connection {
    int fd = -1;  // guarded by mu_; -1 once closed or handed to gRPC
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  // A connection's thread: tells the protocols apart, then serves a message stream or hands
  // the socket to gRPC.
  void Serve(Connection* connection);
  void ServeStream(int fd);
  // Ends a message stream on purpose: the reason first, then an orderly close.
  void Refuse(int fd, peer::StreamClose::Reason reason, const std::string& message);
  // Closes the connection's socket unless it was handed over; marks it closed.
  void Release(Connection* connection);
  void ReapDoneLocked();

  const Options options_;
  Handler* const handler_;
  std::function<void(MemberId)> on_peer_stream_;
  grpc::Server* grpc_server_ = nullptr;

  std::vector<ListeningSocket> listeners_;  // removed (with a unix socket's file) by Stop
  int wake_fd_ = -1;                        // eventfd: wakes the acceptor to stop
  std::thread acceptor_;

  std::mutex mu_;
  bool stopping_ = false;                               // guarded by mu_
  std::list<std::unique_ptr<Connection>> connections_;  // guarded by mu_
  int undecided_ = 0;  // guarded by mu_: connections whose first bytes are awaited
};

}  // namespace dolmen::transport
