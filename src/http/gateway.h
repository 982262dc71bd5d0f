#pragma once

// etcd's JSON gateway (grpc-gateway v1.6 as etcd 3.4 serves it; docs/http.md): POST
// /v3/<service>/<method> with a JSON body is transcoded to the gRPC request, called on the
// member's own gRPC server through an in-process channel (grpc::Server::InProcessChannel: no
// socket, no HTTP/2 framing, but every service handler, interceptor, metric, request check and
// the quota exactly as for a gRPC client), and the reply transcoded back. Watch,
// LeaseKeepAlive, Snapshot and Observe answer with a chunked stream of newline-delimited
// {"result": ...} objects.
//
// Threads: Serve runs on the HTTP connection's thread and blocks until the call answers (a
// stream's body is then read on that same thread); gRPC's callbacks only hand results over.
// Memory: a request body is bounded by the HTTP server; a stream buffers at most
// Options::stream_queue_messages responses and stops reading from gRPC until the client has
// taken some, so a slow reader holds back its own stream only.

#include <grpcpp/channel.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

#include "http/gateway_routes.h"
#include "http/http_server.h"

namespace dolmen::http {

struct GatewayOptions {
  size_t stream_queue_messages = 64;
  // How often a waiting call looks whether its client hung up (then it is cancelled).
  std::chrono::milliseconds hangup_check_interval{200};
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options = {});
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Before the first Serve: `channel` reaches the member's gRPC services (in dolmen an
  // in-process channel to the client port's server, which exists only once it is built).
  void Connect(std::shared_ptr<grpc::Channel> channel);

  // A request for `path`, a /v3/ path (request.path with /v3beta or /v3alpha rewritten).
  Response Serve(const Request& request, const std::string& path);

  // Cancels every call in flight (streams end, waiting unary calls answer CANCELLED) and
  // refuses new ones, so the HTTP server's connection threads can be joined.
  void Shutdown();

  // One call in flight, as Shutdown sees it.
  class Call {
   public:
    virtual ~Call() = default;
    virtual void Cancel() = 0;
  };

 private:
  bool Register(Call* call);  // false once shutting down
  void Unregister(Call* call);
  Response Unary(const gateway::Route& route, const Request& request);
  Response Stream(const gateway::Route& route, const Request& request);

  std::shared_ptr<grpc::Channel> channel_;
  const GatewayOptions options_;
  std::mutex mu_;
  std::set<Call*> calls_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace dolmen::http
