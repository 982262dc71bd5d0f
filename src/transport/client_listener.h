// The client port. One listening socket per --listen-client-urls entry carries gRPC and
// HTTP/1.1 (health, metrics, the JSON gateway), as etcd's client port does (cmux); https URLs
// carry both over TLS. With etcd 3.5's --listen-client-http-urls, some URLs carry only one of
// the two (ClientTraffic). Each connection is told apart by its first bytes (HTTP/2's client
// preface "PRI * HTTP/2.0" or anything else), looked at with MSG_PEEK so that whoever gets the
// socket reads it from its first byte:
//   - HTTP/2 goes to the gRPC server as an already-connected socket (AddInsecureChannelFromFd:
//     gRPC C++ 1.51 adopts only plaintext sockets);
//   - anything else goes to the HTTP handler set with SetHttpHandler; until one is set, it is
//     answered "404 Not Found" and closed.
//
// https URLs: the listener does the TLS handshake (tls/connection.h) and tells the protocols
// apart after it (ALPN "h2", or the decrypted first bytes); since gRPC adopts only plaintext
// sockets, the decrypted bytes then travel through a socketpair, whose other end the
// connection's thread proxies to the TLS connection as long as it lives.
//
// Threads: see acceptor.h (one acceptor; one thread per connection until its protocol is
// known, at most 64 undecided at once, 10 s to speak; for TLS connections the thread stays
// as their proxy).
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tls/context.h"
#include "transport/acceptor.h"

namespace dolmen::transport {

// What a client URL carries. etcd 3.5 serves both on --listen-client-urls unless
// --listen-client-http-urls is given; then those URLs serve HTTP only and the client URLs gRPC
// only. A connection speaking the protocol a URL does not carry is closed unanswered, as etcd's
// listeners do (a gRPC-only one is gRPC's own server, which drops a bogus greeting; an
// HTTP-only one matches HTTP/1 only).
enum class ClientTraffic { kGrpcAndHttp, kGrpcOnly, kHttpOnly };

struct ClientUrl {
  std::string text;    // as given, for messages ("http://127.0.0.1:2379")
  std::string target;  // what socket.h listens on: "host:port" or "unix:path"
  bool tls = false;    // https / unixs
  ClientTraffic traffic = ClientTraffic::kGrpcAndHttp;
  // TLS only: a client certificate with SANs must name the address it connects from (etcd's
  // SAN check, tls::CheckSanCoversAddress). etcd makes it on its https --listen-metrics-urls
  // (pkg/transport/listener.go wrapTLS) but not on its client URLs, whose TLS listener has none.
  bool check_client_san = false;

  bool serves_grpc() const { return traffic != ClientTraffic::kHttpOnly; }
  bool serves_http() const { return traffic != ClientTraffic::kGrpcOnly; }
};

// What the HTTP handler learns about a connection besides its socket.
struct ConnectionInfo {
  std::string url;     // the ClientUrl::text that accepted it
  std::string remote;  // "ip:port" of the client ("unix" for a unix-domain socket)
  bool tls = false;    // the socket carries the decrypted side of a TLS connection
};

// Takes ownership of `fd` (a connected, blocking socket whose first byte is the request's
// first byte) and must close it. Called on the connection's own thread; it should hand the
// socket to its server and return rather than serve it there.
using HttpHandler = std::function<void(int fd, const ConnectionInfo& info)>;

class ClientListener {
 public:
  explicit ClientListener(std::vector<ClientUrl> urls);
  ~ClientListener();  // Stop()

  // Before Bind: SO_REUSEPORT on the client sockets (etcd's --socket-reuse-port).
  void SetReusePort(bool reuse_port) { reuse_port_ = reuse_port; }
  // Before Start.
  void SetHttpHandler(HttpHandler handler) { http_handler_ = std::move(handler); }
  // Before Start, when a URL has tls: the server context (reloaded as its files change), and
  // where refused handshakes are logged.
  void SetTls(std::shared_ptr<tls::ReloadingContext> context,
              std::function<void(const std::string&)> log) {
    tls_ = std::move(context);
    log_ = std::move(log);
  }

  // Binds every URL: kUnavailable "cannot listen on <url>: address in use, not permitted, or
  // not local" (for a unix URL: what is in the way) if one cannot be bound, binding none.
  Status Bind();
  // Starts accepting; HTTP/2 connections go to `grpc_server`, which must outlive Stop.
  [[nodiscard]] Status Start(grpc::Server* grpc_server);
  // Stops accepting; connections already accepted (and TLS proxies) go on.
  void StopAccepting() { acceptor_.StopAccepting(); }
  // Stops accepting and joins the connection threads (ending the TLS proxies). Sockets already
  // handed over (to gRPC or the HTTP handler) are theirs to close. Idempotent.
  void Stop();

 private:
  void Serve(AcceptedConnection& connection);
  // An https URL's connection: handshake, tell the protocol apart by ALPN or the decrypted
  // first bytes, hand one end of a socketpair over and proxy to it until the connection ends.
  void ServeTls(AcceptedConnection& connection, const ClientUrl& url);

  const std::vector<ClientUrl> urls_;
  bool reuse_port_ = false;
  HttpHandler http_handler_;
  std::shared_ptr<tls::ReloadingContext> tls_;
  std::function<void(const std::string&)> log_;
  grpc::Server* grpc_server_ = nullptr;
  std::vector<Acceptor::Listening> bound_;  // from Bind until Start
  Acceptor acceptor_;
  bool started_ = false;
};

// Whether `prefix` (the first bytes of a connection) begins HTTP/2's client preface; needs
// at least kHttp2PrefixBytes bytes to tell it from an HTTP/1 method ("POST", "PUT").
inline constexpr size_t kHttp2PrefixBytes = 4;
bool IsHttp2Preface(std::string_view prefix);

// Answers an HTTP/1 request "404 Not Found" (Connection: close) after reading its head
// (bounded in size and time), then closes nothing: the caller closes.
void AnswerNotFound(int fd);

}  // namespace dolmen::transport
