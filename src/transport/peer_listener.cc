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

void SetReceiveTimeout(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

}  // namespace

PeerListener::PeerListener(const Options& options, Handler* handler)
    : options_(options), handler_(handler) {}

PeerListener::~PeerListener() {
  Stop();
  for (const ListeningSocket& socket : listeners_) CloseListening(socket);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status PeerListener::Bind() {
  CHECK(listeners_.empty()) << "PeerListener bound twice";
  for (const std::string& url : options_.listen_urls) {
    Result<std::string> target = PeerUrlToTarget(url);
    Result<std::vector<ListeningSocket>> sockets =
        target.ok() ? ListenOn(*target) : Result<std::vector<ListeningSocket>>(target.status());
    if (!sockets.ok()) {
      for (const ListeningSocket& socket : listeners_) CloseListening(socket);
      listeners_.clear();
      // A unix socket can fail for reasons of its own (a live socket or another file at the
      // path, a path too long): say which.
      return Unavailable("cannot listen for peers on " + url + ": " +
                         (url.starts_with("unix://")
                              ? sockets.status().message()
                              : "address in use, not permitted, or not local"));
    }
    listeners_.insert(listeners_.end(), sockets->begin(), sockets->end());
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return Unavailable(std::string("eventfd: ") + std::strerror(errno));
  return OkStatus();
}

void PeerListener::Start(grpc::Server* grpc_server) {
  CHECK(wake_fd_ >= 0) << "PeerListener started before Bind";
  CHECK(!acceptor_.joinable()) << "PeerListener started twice";
  grpc_server_ = grpc_server;
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

void PeerListener::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (wake_fd_ >= 0) SignalEventFd(wake_fd_);
  if (acceptor_.joinable()) acceptor_.join();
  // A stopped member refuses connections at once (a listening socket nobody accepts from
  // would let clients connect and then hang until their deadline).
  for (const ListeningSocket& socket : listeners_) CloseListening(socket);
  listeners_.clear();
  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Unblocks each connection's read; its thread then closes the socket.
    for (auto& c : connections_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
    }
    connections.swap(connections_);
  }
  for (auto& c : connections) c->thread.join();
}

void PeerListener::AcceptLoop() {
  std::vector<pollfd> fds;
  for (const ListeningSocket& socket : listeners_) fds.push_back({socket.fd, POLLIN, 0});
  fds.push_back({wake_fd_, POLLIN, 0});
  while (true) {
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // only on a bad descriptor, which would be a bug of ours; Stop still works
    }
    if (fds.back().revents != 0) return;  // Stop
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;  // the peer gave up, or a transient shortage: keep serving
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      ReapDoneLocked();
      if (undecided_ >= kMaxUndecided) {
        // A flood of connections that say nothing: refuse more rather than grow threads
        // without bound. Members' own connections speak at once, so they are rarely here.
        ::close(fd);
        continue;
      }
      ++undecided_;
      auto connection = std::make_unique<Connection>();
      Connection* c = connection.get();
      c->fd = fd;
      c->thread = std::thread([this, c] { Serve(c); });
      connections_.push_back(std::move(connection));
    }
  }
}

void PeerListener::ReapDoneLocked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void PeerListener::Serve(Connection* connection) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = connection->fd;
  }
  // Which protocol: the first byte tells ('D' starts the stream's magic, 'P' HTTP/2's
  // preface). It is looked at without taking it, so that gRPC still reads its whole preface.
  // Only one byte: on a unix-domain socket MSG_PEEK returns what has arrived so far even with
  // MSG_WAITALL, so a peek at the whole magic could see a part of it.
  SetReceiveTimeout(fd, kFirstBytesTimeoutS);
  char first = 0;
  ssize_t n;
  do {
    n = ::recv(fd, &first, 1, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  bool stream = false;
  if (n == 1 && first == kStreamMagic[0]) {
    // Neither protocol unless the whole magic follows: then the connection is just closed.
    char magic[kStreamMagic.size()];
    stream = ReadFull(fd, magic, sizeof(magic)).ok() &&
             std::string_view(magic, sizeof(magic)) == kStreamMagic;
    n = stream ? n : 0;
  }
  SetReceiveTimeout(fd, 0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --undecided_;
  }
  if (stream) {
    ServeStream(fd);
  } else if (n > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      // gRPC owns the socket from here (and closes it). Its I/O expects a non-blocking socket:
      // a blocking read would hold up its poller thread.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      grpc::AddInsecureChannelFromFd(grpc_server_, fd);
      connection->fd = -1;
    }
  }
  Release(connection);
  connection->done.store(true);
}

void PeerListener::ServeStream(int fd) {
  TuneStreamSocket(fd);
  const size_t max_frame = options_.max_envelope_bytes + kEnvelopeSlack;
  bool first = true;
  peer::Envelope envelope;
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
    if (std::exchange(first, false) && on_peer_stream_) {
      on_peer_stream_(MemberId(envelope.header().from()));
    }
    Result<std::vector<raft::Message>> messages = DecodeEnvelope(envelope);
    if (!messages.ok()) {
      Refuse(fd, peer::StreamClose::REASON_MALFORMED, "dolmen: " + messages.status().message());
      return;
    }
    if (!messages->empty()) handler_->OnMessages(std::move(messages).value());
  }
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

void PeerListener::Release(Connection* connection) {
  std::lock_guard<std::mutex> lock(mu_);
  if (connection->fd >= 0) ::close(connection->fd);
  connection->fd = -1;
}

}  // namespace dolmen::transport
