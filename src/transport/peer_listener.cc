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

PeerListener::PeerListener(const Options& options, Handler* handler)
    : options_(options), handler_(handler), acceptor_(kMaxUndecided) {}

PeerListener::~PeerListener() {
  Stop();
  for (const ListeningSocket& socket : bound_) CloseListening(socket);
}

Status PeerListener::Bind() {
  CHECK(bound_.empty() && !started_) << "PeerListener bound twice";
  for (const std::string& url : options_.listen_urls) {
    Result<std::string> target = PeerUrlToTarget(url);
    Result<std::vector<ListeningSocket>> sockets =
        target.ok() ? ListenOn(*target) : Result<std::vector<ListeningSocket>>(target.status());
    if (!sockets.ok()) {
      for (const ListeningSocket& socket : bound_) CloseListening(socket);
      bound_.clear();
      // A unix socket can fail for reasons of its own (a live socket or another file at the
      // path, a path too long): say which.
      return Unavailable("cannot listen for peers on " + url + ": " +
                         (url.starts_with("unix://")
                              ? sockets.status().message()
                              : "address in use, not permitted, or not local"));
    }
    bound_.insert(bound_.end(), sockets->begin(), sockets->end());
  }
  return OkStatus();
}

Status PeerListener::Start(grpc::Server* grpc_server) {
  CHECK(!started_) << "PeerListener started twice";
  started_ = true;
  grpc_server_ = grpc_server;
  std::vector<Acceptor::Listening> listening;
  for (const ListeningSocket& socket : bound_) listening.push_back({socket, 0});
  bound_.clear();
  return acceptor_.Start(std::move(listening),
                         [this](AcceptedConnection& connection) { Serve(connection); });
}

void PeerListener::Stop() { acceptor_.Stop(); }

void PeerListener::Serve(AcceptedConnection& connection) {
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
    ServeStream(fd);
  } else if (spoke) {
    HandToGrpc(grpc_server_, connection);
  }
}

void PeerListener::ServeStream(int fd) {
  TuneStreamSocket(fd);
  const size_t max_frame = options_.max_envelope_bytes + kEnvelopeSlack;
  bool first = true;
  peer::Envelope envelope;
  metrics::Counter* received_bytes = nullptr;  // the sender's, once its header is admitted
  while (true) {
    Result<std::string> frame = ReadFrame(fd, max_frame);
    if (!frame.ok()) {
      // A closed or broken connection ends quietly (the sender reconnects); an oversized
      // frame is refused like any malformed input.
      if (frame.status().code() == Code::kInvalidArgument) {
        Refuse(fd, peer::StreamClose::REASON_MALFORMED, "dolmen: " + frame.status().message());
      }
      return;
    }
    if (!envelope.ParseFromString(*frame)) {
      Refuse(fd, peer::StreamClose::REASON_MALFORMED, "dolmen: envelope does not parse");
      return;
    }
    Admission admission = AdmitSender(options_, handler_, envelope.header());
    switch (admission.verdict) {
      case Admission::Verdict::kAdmitted:
        break;
      case Admission::Verdict::kRefused:
        Refuse(fd, peer::StreamClose::REASON_REFUSED, admission.message);
        return;
      case Admission::Verdict::kRemoved:
        Refuse(fd, peer::StreamClose::REASON_REMOVED, admission.message);
        return;
      case Admission::Verdict::kMalformed:
        Refuse(fd, peer::StreamClose::REASON_MALFORMED, "dolmen: " + admission.message);
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
      Refuse(fd, peer::StreamClose::REASON_MALFORMED, "dolmen: " + messages.status().message());
      return;
    }
    if (!messages->empty()) handler_->OnMessages(std::move(messages).value());
    if (envelope.has_probe()) AnswerProbe(fd, envelope.probe());
  }
}

void PeerListener::AnswerProbe(int fd, const peer::Probe& probe) {
  // At most one probe per sender is in flight and the sender always reads, so this small
  // write finds room in the socket buffer; a failure shows on the next read.
  peer::StreamClose pong;
  *pong.mutable_pong() = probe;
  std::string frame;
  AppendFrame(pong, &frame);
  (void)SendAll(fd, frame);
}

void PeerListener::Refuse(int fd, peer::StreamClose::Reason reason, const std::string& message) {
  peer::StreamClose close;
  close.set_reason(reason);
  close.set_message(message);
  std::string frame;
  AppendFrame(close, &frame);
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
