#include "transport/client_listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

#include "base/check.h"
#include "tls/connection.h"
#include "tls/identity.h"
#include "transport/grpc_handoff.h"
#include "transport/socket.h"
#include "transport/stream_frame.h"

namespace dolmen::transport {
namespace {

// A connection has this long to send its first bytes (gRPC and HTTP clients write at once);
// a silent one is closed rather than holding a thread.
constexpr int kFirstBytesTimeoutS = 10;
// At most this many accepted connections may be waiting for their first bytes at once.
constexpr int kMaxUndecided = 64;
// The default HTTP answer reads at most this much of the request's head, for at most this long.
constexpr size_t kMaxRequestHeadBytes = 16 << 10;
constexpr int kRequestHeadTimeoutS = 2;

// Replies leave at once, as from gRPC's own listener (which sets this on what it accepts; a
// socket it adopts keeps what it has). Fails harmlessly on a unix-domain socket.
void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

bool IsHttp2Preface(std::string_view prefix) {
  return prefix.size() >= kHttp2PrefixBytes && prefix.starts_with("PRI ");
}

void AnswerNotFound(int fd) {
  // Read the request's head first: closing a socket with unread data resets the connection,
  // and the reset can destroy the answer before the client has read it.
  SetReceiveTimeout(fd, kRequestHeadTimeoutS);
  std::string head;
  char buf[4096];
  while (head.size() < kMaxRequestHeadBytes && head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  static constexpr std::string_view kAnswer =
      "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n";
  (void)SendAll(fd, kAnswer);
  ::shutdown(fd, SHUT_WR);
}

ClientListener::ClientListener(std::vector<ClientUrl> urls)
    : urls_(std::move(urls)), acceptor_(kMaxUndecided) {}

ClientListener::~ClientListener() {
  Stop();
  for (const Acceptor::Listening& l : bound_) CloseListening(l.socket);
}

Status ClientListener::Bind() {
  CHECK(bound_.empty() && !started_) << "ClientListener bound twice";
  for (size_t i = 0; i < urls_.size(); ++i) {
    Result<std::vector<ListeningSocket>> sockets = ListenOn(urls_[i].target, reuse_port_);
    if (!sockets.ok()) {
      for (const Acceptor::Listening& l : bound_) CloseListening(l.socket);
      bound_.clear();
      const bool unix_socket = urls_[i].target.starts_with("unix:");
      return Unavailable("cannot listen on " + urls_[i].text + ": " +
                         (unix_socket ? sockets.status().message()
                                      : "address in use, not permitted, or not local"));
    }
    for (const ListeningSocket& socket : *sockets) bound_.push_back({socket, i});
  }
  return OkStatus();
}

Status ClientListener::Start(grpc::Server* grpc_server) {
  CHECK(!started_) << "ClientListener started twice";
  started_ = true;
  grpc_server_ = grpc_server;
  return acceptor_.Start(std::move(bound_),
                         [this](AcceptedConnection& connection) { Serve(connection); });
}

void ClientListener::Stop() { acceptor_.Stop(); }

void ClientListener::Serve(AcceptedConnection& connection) {
  const ClientUrl& url = urls_[connection.source()];
  if (url.tls) {
    ServeTls(connection, url);
    return;
  }
  char prefix[kHttp2PrefixBytes];
  const size_t n = connection.PeekPrefix(prefix, sizeof(prefix), kFirstBytesTimeoutS);
  connection.Decided();
  if (n == 0) return;  // silent or closed: nothing to serve
  const ConnectionInfo info{url.text, connection.remote(), false};
  const bool http2 = IsHttp2Preface(std::string_view(prefix, n));
  if (!(http2 ? url.serves_grpc() : url.serves_http())) return;  // closed unanswered
  if (http2) {
    SetNoDelay(connection.fd());
    HandToGrpc(grpc_server_, connection);
    return;
  }
  if (!http_handler_) {
    AnswerNotFound(connection.fd());
    return;
  }
  const int fd = connection.Release();
  if (fd >= 0) http_handler_(fd, info);
}

void ClientListener::ServeTls(AcceptedConnection& connection, const ClientUrl& url) {
  CHECK(tls_ != nullptr) << "https client URL " << url.text << " without a TLS context";
  SetNoDelay(connection.fd());
  // An HTTP-only URL offers no HTTP/2 in ALPN: clients such as curl then speak HTTP/1.1, which
  // is what it serves (etcd's answers HTTP/2 too; libmicrohttpd does not).
  auto accepted = tls::ServerConnection::Accept(
      tls_->Current(), connection.fd(), kFirstBytesTimeoutS * 1000,
      url.serves_grpc() ? tls::Alpn::kH2OrHttp1 : tls::Alpn::kHttp1Only);
  if (!accepted.ok()) {
    connection.Decided();
    if (log_)
      log_("refused a client on " + url.text + " from " + connection.remote() + ": " +
           accepted.status().message());
    return;
  }
  std::unique_ptr<tls::ServerConnection> tls_connection = std::move(accepted).value();
  if (X509* cert = tls_connection->PeerCertificate(); url.check_client_san && cert != nullptr) {
    if (Status s = tls::CheckSanCoversAddress(cert, connection.remote_ip()); !s.ok()) {
      connection.Decided();
      if (log_)
        log_("refused a client on " + url.text + " from " + connection.remote() +
             ": TLS handshake failed: " + s.message());
      return;
    }
  }
  char prefix[kHttp2PrefixBytes];
  size_t n = 0;
  if (tls_connection->alpn() == "h2") {
    std::memcpy(prefix, "PRI ", kHttp2PrefixBytes);
    n = kHttp2PrefixBytes;
  } else {
    n = tls_connection->Peek(prefix, sizeof(prefix), kFirstBytesTimeoutS * 1000);
  }
  connection.Decided();
  if (n == 0) return;
  if (!(IsHttp2Preface(std::string_view(prefix, n)) ? url.serves_grpc() : url.serves_http())) {
    return;  // the protocol this URL does not carry: closed unanswered
  }
  auto pair = tls::NewSocketPair();
  if (!pair.ok()) {
    if (log_) log_("cannot serve a TLS client on " + url.text + ": " + pair.status().message());
    return;
  }
  const auto [ours, theirs] = *pair;
  const ConnectionInfo info{url.text, connection.remote(), true};
  bool handed = connection.HandOverUnlessStopping([&] {
    if (IsHttp2Preface(std::string_view(prefix, n))) {
      HandToGrpc(grpc_server_, theirs);
    } else if (http_handler_) {
      http_handler_(theirs, info);
    } else {
      // Answered by a thread of its own below; the socket is ours until then.
    }
  });
  if (!handed) {
    ::close(theirs);
    ::close(ours);
    return;
  }
  if (!IsHttp2Preface(std::string_view(prefix, n)) && !http_handler_) {
    std::thread answer([theirs] {
      AnswerNotFound(theirs);
      ::close(theirs);
    });
    tls_connection->ProxyTo(ours);
    ::close(ours);
    answer.join();
    return;
  }
  tls_connection->ProxyTo(ours);
  ::close(ours);
}

}  // namespace dolmen::transport
