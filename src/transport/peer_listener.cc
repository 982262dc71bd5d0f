#include "transport/peer_listener.h"

#include <fcntl.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "base/check.h"
#include "log/log.h"
#include "tls/identity.h"
#include "transport/admission.h"
#include "transport/grpc_handoff.h"
#include "transport/peer_metrics.h"
#include "transport/socket.h"
#include "transport/stream_frame.h"
#include "transport/url.h"

namespace dolmen::transport {
namespace {

// A connection has this long to show which protocol it speaks (both kinds of client write
// first, at once); a silent one is closed rather than holding a thread.
constexpr int kFirstBytesTimeoutS = 10;
// After refusing, wait this long for the sender to close its side, so that our close does not
// reset the connection before it has read why.
constexpr int kRefuseLingerS = 2;
// At most this many accepted connections may be waiting for their first bytes at once.
constexpr int kMaxUndecided = 64;
// Frames may exceed the largest envelope by the framing of its fields.
constexpr size_t kEnvelopeSlack = 1 << 16;

}  // namespace

PeerListener::PeerListener(const Options& options, Handler* handler,
                           std::shared_ptr<const PeerTls> tls)
    : options_(options), handler_(handler), tls_(std::move(tls)), acceptor_(kMaxUndecided) {}

PeerListener::~PeerListener() {
  Stop();
  for (const Acceptor::Listening& l : bound_) CloseListening(l.socket);
}

Status PeerListener::Bind() {
  CHECK(bound_.empty() && !started_) << "PeerListener bound twice";
  for (size_t i = 0; i < options_.listen_urls.size(); ++i) {
    const std::string& url = options_.listen_urls[i];
    Result<DialTarget> target = PeerUrlToDialTarget(url);
    Result<std::vector<ListeningSocket>> sockets =
        target.ok() ? ListenOn(target->address)
                    : Result<std::vector<ListeningSocket>>(target.status());
    if (!sockets.ok()) {
      for (const Acceptor::Listening& l : bound_) CloseListening(l.socket);
      bound_.clear();
      // A unix socket can fail for reasons of its own (a live socket or another file at the
      // path, a path too long): say which.
      return Unavailable("cannot listen for peers on " + url + ": " +
                         (url.starts_with("unix://") || url.starts_with("unixs://")
                              ? sockets.status().message()
                              : "address in use, not permitted, or not local"));
    }
    url_is_tls_.push_back(target->tls);
    for (const ListeningSocket& socket : *sockets) bound_.push_back({socket, i});
  }
  return OkStatus();
}

Status PeerListener::Start(grpc::Server* grpc_server) {
  CHECK(!started_) << "PeerListener started twice";
  started_ = true;
  grpc_server_ = grpc_server;
  return acceptor_.Start(std::move(bound_),
                         [this](AcceptedConnection& connection) { Serve(connection); });
}

void PeerListener::Stop() { acceptor_.Stop(); }

void PeerListener::Serve(AcceptedConnection& connection) {
  if (url_is_tls_[connection.source()]) {
    ServeTls(connection);
    return;
  }
  const int fd = connection.fd();
  // Which protocol: the first byte tells ('D' starts the stream's magic, 'P' HTTP/2's
  // preface). It is looked at without taking it, so that gRPC still reads its whole preface.
  char first = 0;
  bool spoke = connection.PeekFirstByte(kFirstBytesTimeoutS, &first);
  bool stream = false;
  if (spoke && first == kStreamMagic[0]) {
    // Neither protocol unless the whole magic follows: then the connection is just closed.
    char magic[kStreamMagic.size()];
    SetReceiveTimeout(fd, kFirstBytesTimeoutS);
    stream = ReadFull(fd, magic, sizeof(magic)).ok() &&
             std::string_view(magic, sizeof(magic)) == kStreamMagic;
    SetReceiveTimeout(fd, 0);
    spoke = stream;
  }
  connection.Decided();
  if (stream) {
    ServeStream(fd, nullptr);
  } else if (spoke) {
    HandToGrpc(grpc_server_, connection);
  }
}

void PeerListener::ServeTls(AcceptedConnection& connection) {
  const int fd = connection.fd();
  const std::string& url = options_.listen_urls[connection.source()];
  auto refused = [&](const std::string& why) {
    connection.Decided();
    log::Warn("rejected connection",
              {{"listen-url", url}, {"remote-addr", connection.remote()}, {"error", why}});
  };
  auto accepted =
      tls::ServerConnection::Accept(tls_->ServerContext(), fd, kFirstBytesTimeoutS * 1000);
  if (!accepted.ok()) {
    refused(accepted.status().message());
    return;
  }
  std::unique_ptr<tls::ServerConnection> tls = std::move(accepted).value();
  // etcd's check of the certificate's SANs against where the peer connects from.
  const std::string ip = connection.remote_ip();
  if (X509* cert = tls->PeerCertificate();
      cert != nullptr && !ip.empty() && tls_->options().check_client_san) {
    if (Status s = tls::CheckSanCoversAddress(cert, ip); !s.ok()) {
      refused("TLS handshake failed: " + s.message());
      return;
    }
  }
  // Which protocol, as on plaintext (the message stream dials without ALPN).
  bool stream = false;
  bool spoke = tls->alpn() == "h2";
  if (!spoke) {
    char first = 0;
    spoke = tls->Peek(&first, 1, kFirstBytesTimeoutS * 1000) == 1;
    if (spoke && first == kStreamMagic[0]) {
      char magic[kStreamMagic.size()];
      stream = tls->ReadFull(magic, sizeof(magic), kFirstBytesTimeoutS * 1000).ok() &&
               std::string_view(magic, sizeof(magic)) == kStreamMagic;
      spoke = stream;
    }
  }
  connection.Decided();
  if (stream) {
    ServeStream(fd, tls.get());
    return;
  }
  if (!spoke) return;
  auto pair = tls::NewSocketPair();
  if (!pair.ok()) {
    log::Warn("cannot serve a peer over TLS", {{"error", pair.status().message()}});
    return;
  }
  const auto [ours, theirs] = *pair;
  if (!connection.HandOverUnlessStopping([&] { HandToGrpc(grpc_server_, theirs); })) {
    ::close(theirs);
  } else {
    tls->ProxyTo(ours);
  }
  ::close(ours);
}

void PeerListener::ServeStream(int fd, tls::Connection* tls) {
  TuneStreamSocket(fd);
  const size_t max_frame = options_.max_envelope_bytes + kEnvelopeSlack;
  bool first = true;
  peer::Envelope envelope;
  metrics::Counter* received_bytes = nullptr;  // the sender's, once its header is admitted
  const ReadFullFn read_full = [fd, tls](char* out, size_t n) {
    return tls != nullptr ? tls->ReadFull(out, n) : ReadFull(fd, out, n);
  };
  while (true) {
    Result<std::string> frame = ReadFrame(read_full, max_frame);
    if (!frame.ok()) {
      // A closed or broken connection ends quietly (the sender reconnects); an oversized
      // frame is refused like any malformed input.
      if (frame.status().code() == Code::kInvalidArgument) {
        Refuse(fd, tls, peer::StreamClose::REASON_MALFORMED, "dolmen: " + frame.status().message());
      }
      return;
    }
    if (!envelope.ParseFromString(*frame)) {
      Refuse(fd, tls, peer::StreamClose::REASON_MALFORMED, "dolmen: envelope does not parse");
      return;
    }
    Admission admission = AdmitSender(options_, handler_, envelope.header());
    switch (admission.verdict) {
      case Admission::Verdict::kAdmitted:
        break;
      case Admission::Verdict::kRefused:
        Refuse(fd, tls, peer::StreamClose::REASON_REFUSED, admission.message);
        return;
      case Admission::Verdict::kRemoved:
        Refuse(fd, tls, peer::StreamClose::REASON_REMOVED, admission.message);
        return;
      case Admission::Verdict::kMalformed:
        Refuse(fd, tls, peer::StreamClose::REASON_MALFORMED, "dolmen: " + admission.message);
        return;
    }
    if (received_bytes == nullptr) {
      received_bytes = &PeerReceivedBytes(MemberId(envelope.header().from()));
    }
    received_bytes->Add(frame->size() + kFrameHeaderBytes);
    if (std::exchange(first, false) && on_peer_stream_) {
      on_peer_stream_(MemberId(envelope.header().from()));
    }
    Result<std::vector<raft::Message>> messages = DecodeEnvelope(envelope);
    if (!messages.ok()) {
      Refuse(fd, tls, peer::StreamClose::REASON_MALFORMED,
             "dolmen: " + messages.status().message());
      return;
    }
    if (!messages->empty()) handler_->OnMessages(std::move(messages).value());
    if (envelope.has_probe()) AnswerProbe(fd, tls, envelope.probe());
  }
}

void PeerListener::AnswerProbe(int fd, tls::Connection* tls, const peer::Probe& probe) {
  // At most one probe per sender is in flight and the sender always reads, so this small
  // write finds room in the socket buffer; a failure shows on the next read.
  peer::StreamClose pong;
  *pong.mutable_pong() = probe;
  std::string frame;
  AppendFrame(pong, &frame);
  if (tls != nullptr) {
    (void)tls->WriteAll(frame);
  } else {
    (void)SendAll(fd, frame);
  }
}

void PeerListener::Refuse(int fd, tls::Connection* tls, peer::StreamClose::Reason reason,
                          const std::string& message) {
  peer::StreamClose close;
  close.set_reason(reason);
  close.set_message(message);
  std::string frame;
  AppendFrame(close, &frame);
  if (tls != nullptr) {
    // Over TLS: the reason, close_notify, then the same wait for the sender to close.
    if (!tls->WriteAll(frame).ok()) return;
    tls->Shutdown();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(kRefuseLingerS);
    char discard = 0;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !tls->ReadFull(&discard, 1, static_cast<int>(left.count())).ok()) {
        return;
      }
    }
  }
  if (!SendAll(fd, frame).ok()) return;
  ::shutdown(fd, SHUT_WR);
  // Wait for the sender to close (discarding what it still sends): closing with unread data
  // would reset the connection, and the reset could destroy the reason before it is read.
  SetReceiveTimeout(fd, kRefuseLingerS);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kRefuseLingerS);
  char discard[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, discard, sizeof(discard), 0);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    break;
  }
}

}  // namespace dolmen::transport
