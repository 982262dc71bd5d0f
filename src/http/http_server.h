#pragma once

// An HTTP/1.1 server (libmicrohttpd) that calls one handler per request. It serves sockets it
// listens on itself (--listen-metrics-urls) and connections accepted elsewhere and handed over
// (AdoptConnection: the client port's listener tells HTTP/1.x from gRPC by the first bytes).
//
// Threads: one per connection (libmicrohttpd's thread-per-connection mode), so a handler may
// block, e.g. /health waiting for a linearizable read, without holding up other requests. The
// number of connections is bounded (Options::max_connections).

#include <sys/socket.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"

struct MHD_Daemon;

namespace dolmen::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  // Query parameters in order, decoded; a key given without '=' has an empty value (Go's
  // url.Values keeps it too, so `?verbose` is present).
  std::vector<std::pair<std::string, std::string>> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  // The connection's socket, for a handler that waits long (a gateway stream) to see the client
  // hang up (poll for POLLRDHUP); it must not read, write or close it. -1 in tests without one.
  int fd = -1;
  // The client's IP address ("127.0.0.1", "::1"); empty when not an IP connection.
  std::string peer_ip;

  bool HasQuery(const std::string& key) const;
  std::vector<std::string> QueryValues(const std::string& key) const;
  std::string Header(const std::string& lower_case_name) const;
};

// A response body made while it is sent: the gateway's streams (newline-delimited JSON).
// Called on the connection's thread only, one call at a time; Read may block, and must return
// within a bounded time once the client has gone (it watches Request::fd) or the server stops.
class BodyStream {
 public:
  enum class Next {
    kMore,   // `out` got bytes (possibly none); call again
    kEnd,    // the body is complete (`out` may have its last bytes)
    kAbort,  // stop sending and close the connection (the client left, or the server stops)
  };
  virtual ~BodyStream() = default;
  virtual Next Read(std::string* out) = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Set: the body is `body` followed by what the stream reads, sent with chunked encoding.
  std::shared_ptr<BodyStream> stream;
  // Trailer fields after the last chunk (the response is then chunked too).
  std::vector<std::pair<std::string, std::string>> footers;

  // What Go's http.Error writes: text/plain, nosniff, and `text` plus a newline.
  static Response Error(int status, const std::string& text);
};

using Handler = std::function<Response(const Request&)>;

struct Options {
  unsigned max_connections = 1024;
  size_t max_body_bytes = 8 << 20;  // a larger body is answered 413
  unsigned idle_timeout_seconds = 300;
};

class HttpServer {
 public:
  HttpServer(Handler handler, Options options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on host:port (port 0: any; see ports()). Callable more than once.
  Status Listen(const std::string& host, const std::string& port);
  // Serves a connection accepted elsewhere; takes ownership of `fd` (closed when done, also on
  // failure). Bytes the acceptor only peeked at (MSG_PEEK) are read again here.
  Status AdoptConnection(int fd, const sockaddr* peer, socklen_t peer_len);
  // The ports Listen bound, in order.
  std::vector<int> ports() const;
  // Stops serving and joins every connection thread.
  void Stop();

 private:
  MHD_Daemon* StartDaemon(int listen_fd);
  friend struct Dispatch;

  Handler handler_;
  Options options_;
  std::mutex mu_;
  std::vector<MHD_Daemon*> daemons_;
  std::vector<int> ports_;
  MHD_Daemon* adopter_ = nullptr;  // created on the first AdoptConnection
  bool stopped_ = false;           // after Stop, connections are refused
};

}  // namespace dolmen::http
