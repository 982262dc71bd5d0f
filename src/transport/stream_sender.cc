#include "transport/stream_sender.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/coding.h"
#include "log/log.h"
#include "transport/codec.h"
#include "transport/peer_metrics.h"
#include "transport/socket.h"
#include "transport/stream_frame.h"
#include "transport/url.h"

namespace dolmen::transport {
namespace {

bool IsDataMessage(raft::MessageType type) {
  return type == raft::MessageType::kApp || type == raft::MessageType::kProp;
}

// Protobuf framing of one repeated field: a tag and a length varint.
constexpr size_t kFieldOverhead = 11;
// A connection attempt that neither succeeds nor fails (a peer host that drops packets) is
// abandoned after this long, then retried after the backoff.
constexpr std::chrono::seconds kConnectTimeout{5};
// The receiver's StreamClose is small; more than this before the close is not a receiver of
// ours.
constexpr size_t kMaxCloseFrameBytes = 64 << 10;
// How often the connection thread probes the round trip. etcd probes every 4 s and records
// the smoothed value every 30 s; one tiny envelope a second costs nothing next to heartbeats
// and gives Prometheus's rate() over a few minutes plenty of samples.
constexpr std::chrono::seconds kProbeInterval{1};

uint64_t SteadyNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The refusal a StreamClose frame at the start of `in` carries; OK if there is none (or it is
// not a refusal: a malformed-input close is reported as unreachable only).
Status RefusalIn(const std::string& in) {
  if (in.size() < kFrameHeaderBytes) return OkStatus();
  const uint32_t length = coding::DecodeFixed32(in.data());
  if (in.size() < kFrameHeaderBytes + length) return OkStatus();
  peer::StreamClose close;
  if (!close.ParseFromArray(in.data() + kFrameHeaderBytes, static_cast<int>(length))) {
    return OkStatus();
  }
  switch (close.reason()) {
    case peer::StreamClose::REASON_REMOVED:
      return Status(Code::kRemoved, close.message());
    case peer::StreamClose::REASON_REFUSED:
      return Status(Code::kFailedPrecondition, close.message());
    default:
      return OkStatus();
  }
}

}  // namespace

StreamSender::StreamSender(const Options& options, MemberId peer, std::vector<DialTarget> targets,
                           Notifier* notifier, std::shared_ptr<const PeerTls> tls)
    : options_(options),
      peer_(peer),
      sent_bytes_(&PeerSentBytes(peer)),
      sent_failures_(&PeerSentFailures(peer)),
      round_trip_(&PeerRoundTripTime(peer)),
      notifier_(notifier),
      tls_(std::move(tls)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      targets_(std::move(targets)),
      backoff_(options.min_backoff) {
  CHECK_GT(options_.max_queued_messages_per_peer, 0u);
  CHECK_GE(wake_fd_, 0) << "eventfd: " << std::strerror(errno);
}

StreamSender::~StreamSender() {
  Stop();
  ::close(wake_fd_);
}

void StreamSender::Start() {
  CHECK(!thread_.joinable()) << "StreamSender started twice";
  thread_ = std::thread([this] { Run(); });
}

void StreamSender::Stop() {
  {
    base::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  SignalEventFd(wake_fd_);
  if (thread_.joinable()) thread_.join();
}

void StreamSender::Enqueue(std::vector<raft::Message> messages) {
  uint64_t dropped = 0;
  bool oversized = false;
  {
    base::MutexLock lock(&mu_);
    if (stopping_) return;
    for (raft::Message& m : messages) {
      if (!accepting_ || control_.size() + data_.size() >= options_.max_queued_messages_per_peer) {
        ++dropped;
      } else if (IsDataMessage(m.type)) {
        data_.push_back(std::move(m));
      } else {
        control_.push_back(std::move(m));
      }
    }
    // While bytes are pending the connection thread is waiting for the socket to take them,
    // and it sends what queued meanwhile: nothing to do here.
    if (pending_sent_ == pending_.size()) PumpLocked(&oversized);
  }
  if (dropped > 0) sent_failures_->Add(dropped);
  if (dropped > 0 || oversized) notifier_->Unreachable(peer_);
}

void StreamSender::UpdateTargets(std::vector<DialTarget> targets) {
  {
    base::MutexLock lock(&mu_);
    targets_ = std::move(targets);
    target_index_ = 0;
    retarget_ = true;
  }
  cv_.SignalAll();
  SignalEventFd(wake_fd_);
}

void StreamSender::PeerIsBack() {
  {
    base::MutexLock lock(&mu_);
    if (accepting_) return;  // not in a backoff: the stream is up or being opened
    peer_back_ = true;
  }
  cv_.SignalAll();
}

void StreamSender::Run() {
  while (true) {
    Status failure;
    int fd = Connect(&failure);
    Status refusal;
    bool retargeted = false;
    if (fd >= 0) {
      refusal = Serve(fd);
      base::MutexLock lock(&mu_);
      fd_ = -1;
      tls_conn_.reset();
      tls_want_ = 0;
      broken_ = false;
      pending_.clear();
      pending_sent_ = 0;
      retargeted = std::exchange(retarget_, false);
      ::close(fd);
    }
    {
      base::MutexLock lock(&mu_);
      if (stopping_) return;
      if (retargeted) continue;  // open the new address at once
    }
    OnFailure(std::move(refusal));
  }
}

int StreamSender::Connect(Status* failure) {
  // Drained before the flags are read: a Stop or retarget from now on still wakes the
  // connect below.
  DrainEventFd(wake_fd_);
  DialTarget target;
  {
    base::MutexLock lock(&mu_);
    if (stopping_ || targets_.empty()) return -1;
    target = targets_[target_index_ % targets_.size()];
    retarget_ = false;
  }
  const auto started = std::chrono::steady_clock::now();
  Result<int> fd = ConnectTo(target.address, kConnectTimeout, wake_fd_);
  if (!fd.ok()) {
    *failure = fd.status();
    return -1;
  }
  std::unique_ptr<tls::ClientConnection> tls_conn;
  if (target.tls) {
    // The handshake shares the connect's bound.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        kConnectTimeout - (std::chrono::steady_clock::now() - started));
    auto connected = tls::ClientConnection::Connect(
        tls_->ClientContext(), *fd, target.host,
        static_cast<int>(std::max<int64_t>(left.count(), 1)), wake_fd_);
    if (!connected.ok()) {
      ::close(*fd);
      if (connected.status().code() != Code::kCancelled) LogTlsFailure(target, connected.status());
      *failure = connected.status();
      return -1;
    }
    tls_conn = std::move(connected).value();
    last_tls_failure_.clear();
  }
  bool oversized = false;
  {
    base::MutexLock lock(&mu_);
    if (stopping_ || retarget_) {
      ::close(*fd);
      return -1;
    }
    fd_ = *fd;
    tls_conn_ = std::move(tls_conn);
    tls_want_ = 0;
    broken_ = false;
    pending_.assign(kStreamMagic);
    pending_sent_ = 0;
    envelope_.Clear();
    envelope_.mutable_header()->set_cluster_id(options_.cluster_id.value());
    envelope_.mutable_header()->set_from(options_.self.value());
    envelope_.mutable_header()->set_to(peer_.value());
    AppendFrame(envelope_, &pending_);
    PumpLocked(&oversized);
  }
  probe_in_flight_nanos_ = 0;
  next_probe_ = std::chrono::steady_clock::now();
  if (oversized) notifier_->Unreachable(peer_);
  return *fd;
}

Status StreamSender::Serve(int fd) {
  std::string in;  // what the receiver sent: only ever a StreamClose before it closes
  while (true) {
    short events = POLLIN;
    bool secure = false;
    {
      base::MutexLock lock(&mu_);
      if (stopping_ || retarget_) return OkStatus();
      if (broken_) break;
      secure = tls_conn_ != nullptr;
      if (pending_sent_ < pending_.size()) events |= secure && tls_want_ != 0 ? tls_want_ : POLLOUT;
    }
    const auto until_probe = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_probe_ - std::chrono::steady_clock::now());
    pollfd fds[2] = {{fd, events, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, std::max<int>(0, static_cast<int>(until_probe.count()) + 1));
    if (n < 0) {
      if (errno == EINTR) continue;
      return OkStatus();
    }
    if (std::chrono::steady_clock::now() >= next_probe_) SendProbe();
    if (fds[1].revents & POLLIN) DrainEventFd(wake_fd_);
    if (secure && (fds[0].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) {
      // TLS: reads and writes take the lock (one SSL object), and a write may have waited for
      // the read (or the other way round), so both are tried.
      char buf[4096];
      ssize_t got = -1;
      bool oversized = false;
      {
        base::MutexLock lock(&mu_);
        short want = 0;
        got = tls_conn_->ReadSome(buf, sizeof(buf), &want);
        if (pending_sent_ < pending_.size()) {
          tls_want_ = 0;
          PumpLocked(&oversized);
        }
      }
      if (oversized) notifier_->Unreachable(peer_);
      if (got > 0) {
        if (auto stop = Received(&in, buf, static_cast<size_t>(got))) return *stop;
        continue;
      }
      if (got == 0) return RefusalIn(in);  // closed: a StreamClose before it says why
      continue;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t got = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (got > 0) {
        if (auto stop = Received(&in, buf, static_cast<size_t>(got))) return *stop;
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      return RefusalIn(in);  // closed (or reset): a StreamClose before it says why
    }
    if (fds[0].revents & POLLOUT) {
      bool oversized = false;
      {
        base::MutexLock lock(&mu_);
        PumpLocked(&oversized);
      }
      if (oversized) notifier_->Unreachable(peer_);
    }
  }
  // A write failed: the receiver may have said why before it closed.
  char buf[4096];
  ssize_t got;
  base::MutexLock lock(&mu_);
  short want = 0;
  while (in.size() <= kMaxCloseFrameBytes &&
         (got = tls_conn_ != nullptr ? tls_conn_->ReadSome(buf, sizeof(buf), &want)
                                     : ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
    in.append(buf, static_cast<size_t>(got));
    TakePongs(&in);
  }
  return RefusalIn(in);
}

void StreamSender::SendProbe() {
  next_probe_ = std::chrono::steady_clock::now() + kProbeInterval;
  if (probe_in_flight_nanos_ != 0) return;
  bool oversized = false;
  {
    base::MutexLock lock(&mu_);
    if (fd_ < 0 || broken_) return;
    probe_in_flight_nanos_ = SteadyNanos();
    envelope_.Clear();
    envelope_.mutable_header()->set_cluster_id(options_.cluster_id.value());
    envelope_.mutable_header()->set_from(options_.self.value());
    envelope_.mutable_header()->set_to(peer_.value());
    envelope_.mutable_probe()->set_sent_nanos(probe_in_flight_nanos_);
    // Behind the bytes not yet sent (a frame may be half written), ahead of queued messages.
    AppendFrame(envelope_, &pending_);
    envelope_.Clear();
    PumpLocked(&oversized);
  }
  if (oversized) notifier_->Unreachable(peer_);
}

std::optional<Status> StreamSender::Received(std::string* in, const char* data, size_t n) {
  in->append(data, n);
  TakePongs(in);
  Status refusal = RefusalIn(*in);
  if (!refusal.ok() || in->size() > kMaxCloseFrameBytes) return refusal;
  return std::nullopt;
}

void StreamSender::TakePongs(std::string* in) {
  size_t taken = 0;
  peer::StreamClose frame;
  while (in->size() - taken >= kFrameHeaderBytes) {
    const uint32_t length = coding::DecodeFixed32(in->data() + taken);
    if (in->size() - taken - kFrameHeaderBytes < length) break;
    if (!frame.ParseFromArray(in->data() + taken + kFrameHeaderBytes, static_cast<int>(length)) ||
        !frame.has_pong() || frame.reason() != peer::StreamClose::REASON_UNSPECIFIED) {
      break;
    }
    taken += kFrameHeaderBytes + length;
    const uint64_t sent = frame.pong().sent_nanos();
    if (sent != 0 && sent == probe_in_flight_nanos_) {
      round_trip_->Observe(static_cast<double>(SteadyNanos() - sent) / 1e9);
      probe_in_flight_nanos_ = 0;
    }
  }
  in->erase(0, taken);
}

void StreamSender::PumpLocked(bool* oversized) {
  while (fd_ >= 0 && !broken_) {
    if (pending_sent_ == pending_.size()) {
      pending_.clear();
      pending_sent_ = 0;
      if (!EncodeNextLocked(oversized)) return;
    }
    ssize_t n = SendSomeLocked(pending_.data() + pending_sent_, pending_.size() - pending_sent_);
    if (n > 0) {
      pending_sent_ += static_cast<size_t>(n);
      sent_bytes_->Add(static_cast<uint64_t>(n));
      backoff_ = options_.min_backoff;
      continue;
    }
    if (n < 0) {
      // The connection thread may be asleep without POLLOUT: tell it there is something to
      // flush. (Redundant when it already waits for POLLOUT; harmless.)
      SignalEventFd(wake_fd_);
      return;
    }
    broken_ = true;  // the connection thread sees it, reads why if it can, and reports
    SignalEventFd(wake_fd_);
    return;
  }
}

bool StreamSender::EncodeNextLocked(bool* oversized) {
  if (control_.empty() && data_.empty()) return false;
  envelope_.Clear();
  envelope_.mutable_header()->set_cluster_id(options_.cluster_id.value());
  envelope_.mutable_header()->set_from(options_.self.value());
  envelope_.mutable_header()->set_to(peer_.value());
  const size_t header_bytes = envelope_.ByteSizeLong();
  size_t bytes = header_bytes;
  size_t estimate = 0;
  // Encodes the front of `queue` into the envelope; false if it does not fit (it stays queued).
  auto add_front = [&](std::deque<raft::Message>& queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    peer::Message* wire = envelope_.add_messages();
    EncodeMessage(queue.front(), wire);
    const size_t size = wire->ByteSizeLong() + kFieldOverhead;
    if (header_bytes + size > options_.max_envelope_bytes) {
      // The receiver would refuse it: drop it alone, like a message to a down peer (Raft's
      // MaxSizePerMsg keeps real appends far below the limit).
      envelope_.mutable_messages()->RemoveLast();
      queue.pop_front();
      *oversized = true;
      return true;
    }
    if (bytes + size > options_.max_envelope_bytes) {
      envelope_.mutable_messages()->RemoveLast();
      return false;
    }
    bytes += size;
    estimate += ApproxEncodedBytes(queue.front());
    queue.pop_front();
    return true;
  };
  while (!control_.empty() && estimate < options_.max_batch_bytes) {
    if (!add_front(control_)) break;
  }
  while (!data_.empty()) {
    if (envelope_.messages_size() > 0 &&
        estimate + ApproxEncodedBytes(data_.front()) > options_.max_batch_bytes) {
      break;
    }
    if (!add_front(data_)) break;
  }
  if (envelope_.messages_size() == 0) return false;  // only oversized messages were queued
  AppendFrame(envelope_, &pending_);
  return true;
}

void StreamSender::OnFailure(Status refusal) {
  base::MutexLock lock(&mu_);
  if (stopping_) return;  // the stream was cancelled by Stop, not lost
  if (!refusal.ok()) notifier_->Refused(peer_, std::move(refusal));
  notifier_->Unreachable(peer_);
  sent_failures_->Add(control_.size() + data_.size());
  DropQueuedLocked();
  accepting_ = false;
  ++target_index_;  // the next attempt tries the peer's next URL
  const auto backoff_end = std::chrono::steady_clock::now() + backoff_;
  while (!stopping_ && !retarget_ && !peer_back_) {
    if (!cv_.WaitUntil(&mu_, backoff_end)) break;  // the backoff is over
  }
  if (std::exchange(peer_back_, false))
    backoff_ = options_.min_backoff;
  else
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  accepting_ = true;
}

ssize_t StreamSender::SendSomeLocked(const char* data, size_t n) {
  if (tls_conn_ != nullptr) return tls_conn_->WriteSome(data, n, &tls_want_);
  while (true) {
    ssize_t sent = ::send(fd_, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent > 0) return sent;
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    return 0;
  }
}

void StreamSender::LogTlsFailure(const DialTarget& target, const Status& why) {
  if (why.message() == last_tls_failure_) return;
  last_tls_failure_ = why.message();
  log::Warn("cannot connect to a peer over TLS", {{"remote-peer-id", IdHex(peer_.value())},
                                                  {"address", target.address},
                                                  {"error", why.message()}});
}

void StreamSender::DropQueuedLocked() {
  control_.clear();
  data_.clear();
}

}  // namespace dolmen::transport
