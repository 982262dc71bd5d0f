// The peer port. One listening socket per --listen-peer-urls entry carries two protocols, as
// etcd's peer port does (cmux): the message stream (stream_frame.h), which we read ourselves,
// and gRPC (snapshots, membership, forwarded requests). Each accepted connection is told apart
// by its first bytes: kStreamMagic, or anything else (HTTP/2's client preface), which goes to
// the gRPC server as an already-connected socket. The sockets are TCP or, for unix:// URLs,
// unix-domain sockets; everything here works the same on both. On https and unixs URLs the
// TLS handshake comes first (the peer's certificate checked, a refusal logged with the reason
// and the remote address, and nothing read from it); the decrypted bytes are then told apart
// the same way (ALPN h2 also means gRPC), a message stream read from the TLS connection
// directly, and gRPC's connections proxied to it through a socketpair (tls/connection.h).
//
// Threads: one acceptor; one per message stream (blocking reads; each envelope is admitted,
// decoded and handed to Handler::OnMessages on that thread, so no hand-off sits between the
// socket and the server); and, briefly, one per connection whose first bytes have not arrived
// (at most 64 at once: beyond that new connections are closed until some have spoken or timed
// out after 10 s).
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "dolmen/peer.pb.h"
#include "tls/connection.h"
#include "transport/acceptor.h"
#include "transport/peer_tls.h"
#include "transport/socket.h"
#include "transport/transport.h"

namespace dolmen::transport {

class PeerListener {
 public:
  PeerListener(const Options& options, Handler* handler, std::shared_ptr<const PeerTls> tls);
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
  [[nodiscard]] Status Start(grpc::Server* grpc_server);
  // Stops accepting (closes the listening sockets and removes the files of unix ones), ends every
  // message stream and joins all threads: afterwards no Handler method runs from here.
  // Idempotent.
  void Stop();

 private:
  // A connection's thread: tells the protocols apart, then serves a message stream or hands
  // the socket to gRPC.
  void Serve(AcceptedConnection& connection);
  // An https / unixs URL's connection: handshake and checks, then as Serve.
  void ServeTls(AcceptedConnection& connection);
  // Reads a message stream from `fd`, or from `tls` (on fd) if set.
  void ServeStream(int fd, tls::Connection* tls);
  // Echoes an envelope's round-trip probe back to its sender (a StreamClose with only `pong`),
  // on `tls` if set.
  void AnswerProbe(int fd, tls::Connection* tls, const peer::Probe& probe);
  // Ends a message stream on purpose: the reason first, then an orderly close.
  void Refuse(int fd, tls::Connection* tls, peer::StreamClose::Reason reason,
              const std::string& message);

  const Options options_;
  Handler* const handler_;
  const std::shared_ptr<const PeerTls> tls_;
  std::vector<bool> url_is_tls_;  // by index into options_.listen_urls (a socket's source)
  std::function<void(MemberId)> on_peer_stream_;
  grpc::Server* grpc_server_ = nullptr;

  std::vector<Acceptor::Listening> bound_;  // from Bind until Start hands them to acceptor_
  Acceptor acceptor_;
  bool started_ = false;
};

}  // namespace dolmen::transport
