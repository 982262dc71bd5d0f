#include "transport/stream_sender.h"

#include <utility>

#include "transport/channel.h"
#include "transport/codec.h"

namespace dolmen::transport {
namespace {

bool IsDataMessage(raft::MessageType type) {
  return type == raft::MessageType::kApp || type == raft::MessageType::kProp;
}

// Protobuf framing of one repeated field: a tag and a length varint.
constexpr size_t kFieldOverhead = 11;

}  // namespace

// One Peer.Stream call. The reactor's callbacks go straight to the sender; the call holds the
// envelope being written (touched only by whoever set writing_) and its context.
class StreamSender::Call final : public grpc::ClientWriteReactor<peer::Envelope> {
 public:
  explicit Call(StreamSender* owner) : owner_(owner) {}

  void OnWriteDone(bool ok) override { owner_->OnWriteDone(ok); }
  void OnDone(const grpc::Status& status) override { owner_->OnCallDone(status); }

  grpc::ClientContext context;
  peer::StreamAck ack;
  peer::Envelope envelope;

 private:
  StreamSender* const owner_;
};

StreamSender::StreamSender(const Options& options, MemberId peer, std::vector<std::string> targets,
                           Notifier* notifier)
    : options_(options),
      peer_(peer),
      notifier_(notifier),
      targets_(std::move(targets)),
      backoff_(options.min_backoff) {
  CHECK_GT(options_.max_queued_messages_per_peer, 0u);
}

StreamSender::~StreamSender() { Stop(); }

void StreamSender::Start() {
  CHECK(!thread_.joinable()) << "StreamSender started twice";
  thread_ = std::thread([this] { Run(); });
}

void StreamSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamSender::Enqueue(std::vector<raft::Message> messages) {
  bool dropped = false;
  bool oversized = false;
  Call* write = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    for (raft::Message& m : messages) {
      if (!accepting_ || control_.size() + data_.size() >= options_.max_queued_messages_per_peer) {
        dropped = true;
      } else if (IsDataMessage(m.type)) {
        data_.push_back(std::move(m));
      } else {
        control_.push_back(std::move(m));
      }
    }
    write = TakeWriteLocked(&oversized);
  }
  if (dropped || oversized) notifier_->Unreachable(peer_);
  if (write != nullptr) write->StartWrite(&write->envelope);
}

void StreamSender::UpdateTargets(std::vector<std::string> targets) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets_ = std::move(targets);
    target_index_ = 0;
    retarget_ = true;
  }
  cv_.notify_all();
}

void StreamSender::PeerIsBack() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (accepting_) return;  // not in a backoff: the stream is up or being opened
    peer_back_ = true;
  }
  cv_.notify_all();
}

void StreamSender::Run() {
  while (true) {
    if (!Open()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      OnFailure(OkStatus());  // no usable URL: drop and report, as for a peer that is down
      continue;
    }
    bool ended_by_itself;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || retarget_ || call_done_; });
      ended_by_itself = call_done_;
    }
    if (!ended_by_itself) CloseCall();
    // A stream that ended by itself failed a write: its status is the peer's (a refusal, or
    // why the stream broke), not masked by a cancel of ours.
    Status refusal = AwaitCallDone();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      if (!ended_by_itself) continue;  // retargeted: open the new address at once
    }
    OnFailure(std::move(refusal));
  }
}

bool StreamSender::Open() {
  std::string target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || targets_.empty()) return false;
    target = targets_[target_index_ % targets_.size()];
    retarget_ = false;
  }
  if (stub_ == nullptr || channel_target_ != target) {
    channel_ = NewPeerChannel(target, options_, ChannelKind::kStream);
    channel_target_ = target;
    stub_ = peer::Peer::NewStub(channel_);
  }
  Call* call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    call_ = std::make_unique<Call>(this);
    call = call_.get();
    writing_ = true;  // the greeting below
    broken_ = false;
    hold_released_ = false;
    call_done_ = false;
    NewEnvelopeLocked();
  }
  stub_->async()->Stream(&call->context, &call->ack, call);  // binds the reactor
  // Our hold keeps the call (and so call_) alive between writes until CloseCall or a failed
  // write releases it.
  call->AddHold();
  call->StartWrite(&call->envelope);
  call->StartCall();
  return true;
}

void StreamSender::CloseCall() {
  Call* call;
  bool release;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = call_.get();
    broken_ = true;
    // With a write in flight, its OnWriteDone releases the hold instead.
    release = !writing_ && ReleaseHoldLocked();
  }
  // Outside mu_: cancelling can run the call's callbacks on this thread.
  call->context.TryCancel();
  if (release) call->RemoveHold();
}

Status StreamSender::AwaitCallDone() {
  std::unique_ptr<Call> call;
  grpc::Status status;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return call_done_; });
    call = std::move(call_);
    status = call_status_;
    writing_ = false;
    broken_ = false;
    call_done_ = false;
  }
  return RefusalOf(call->context, status);
}

void StreamSender::OnWriteDone(bool ok) {
  Call* call;
  Call* write = nullptr;
  bool release = false;
  bool oversized = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = call_.get();
    writing_ = false;
    if (!ok) broken_ = true;
    if (broken_) {
      release = ReleaseHoldLocked();
    } else {
      backoff_ = options_.min_backoff;
      write = TakeWriteLocked(&oversized);
    }
  }
  if (oversized) notifier_->Unreachable(peer_);
  if (write != nullptr) write->StartWrite(&write->envelope);
  if (release) call->RemoveHold();
}

void StreamSender::OnCallDone(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  call_done_ = true;
  call_status_ = status;
  cv_.notify_all();
}

StreamSender::Call* StreamSender::TakeWriteLocked(bool* oversized) {
  if (call_ == nullptr || writing_ || broken_ || (control_.empty() && data_.empty())) {
    return nullptr;
  }
  NewEnvelopeLocked();
  peer::Envelope& envelope = call_->envelope;
  const size_t header_bytes = envelope.ByteSizeLong();
  size_t bytes = header_bytes;
  size_t estimate = 0;
  // Encodes the front of `queue` into the envelope; false if it does not fit (it stays queued).
  auto add_front = [&](std::deque<raft::Message>& queue) {
    peer::Message* wire = envelope.add_messages();
    EncodeMessage(queue.front(), wire);
    const size_t size = wire->ByteSizeLong() + kFieldOverhead;
    if (header_bytes + size > options_.max_envelope_bytes) {
      // The receiver would refuse it: drop it alone, like a message to a down peer (Raft's
      // MaxSizePerMsg keeps real appends far below the limit).
      envelope.mutable_messages()->RemoveLast();
      queue.pop_front();
      *oversized = true;
      return true;
    }
    if (bytes + size > options_.max_envelope_bytes) {
      envelope.mutable_messages()->RemoveLast();
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
    if (envelope.messages_size() > 0 &&
        estimate + ApproxEncodedBytes(data_.front()) > options_.max_batch_bytes) {
      break;
    }
    if (!add_front(data_)) break;
  }
  if (envelope.messages_size() == 0) return nullptr;  // only oversized messages were queued
  writing_ = true;
  return call_.get();
}

bool StreamSender::ReleaseHoldLocked() { return !std::exchange(hold_released_, true); }

void StreamSender::NewEnvelopeLocked() {
  peer::Envelope& envelope = call_->envelope;
  envelope.Clear();
  envelope.mutable_header()->set_cluster_id(options_.cluster_id.value());
  envelope.mutable_header()->set_from(options_.self.value());
  envelope.mutable_header()->set_to(peer_.value());
}

void StreamSender::OnFailure(Status refusal) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return;  // the stream was cancelled by Stop, not lost
  if (!refusal.ok()) notifier_->Refused(peer_, std::move(refusal));
  notifier_->Unreachable(peer_);
  DropQueuedLocked();
  accepting_ = false;
  ++target_index_;  // the next attempt tries the peer's next URL
  cv_.wait_for(lock, backoff_, [this] { return stopping_ || retarget_ || peer_back_; });
  if (std::exchange(peer_back_, false)) {
    backoff_ = options_.min_backoff;
    // The old channel may sit in gRPC's own reconnect backoff; a new one dials at once.
    channel_.reset();
    stub_.reset();
  } else {
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  }
  accepting_ = true;
}

void StreamSender::DropQueuedLocked() {
  control_.clear();
  data_.clear();
}

}  // namespace dolmen::transport
