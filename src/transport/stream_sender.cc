#include "transport/stream_sender.h"

#include <utility>

#include "transport/channel.h"
#include "transport/codec.h"

namespace dolmen::transport {
namespace {

bool IsDataMessage(raft::MessageType type) {
  return type == raft::MessageType::kApp || type == raft::MessageType::kProp;
}

}  // namespace

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
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamSender::Enqueue(raft::Message message) {
  bool dropped = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    if (!accepting_ || control_.size() + data_.size() >= options_.max_queued_messages_per_peer) {
      dropped = true;
    } else if (IsDataMessage(message.type)) {
      data_.push_back(std::move(message));
    } else {
      control_.push_back(std::move(message));
    }
  }
  if (dropped) {
    notifier_->Unreachable(peer_);
  } else {
    cv_.notify_one();
  }
}

void StreamSender::UpdateTargets(std::vector<std::string> targets) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets_ = std::move(targets);
    target_index_ = 0;
    retarget_ = true;
    // A stream blocked in Write to the old address must give way.
    if (context_ != nullptr) context_->TryCancel();
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
  while (!Stopping()) {
    if (writer_ == nullptr) {
      if (!Open()) {
        OnFailure(OkStatus());  // no usable URL: drop and report, as for a peer that is down
        continue;
      }
      if (!Greet()) {
        OnFailure(Close(/*cancel=*/false));
        continue;
      }
    }
    std::vector<raft::Message> batch = TakeBatch();
    if (TakeRetarget()) {
      // The batch was taken for the old address; it is still good for the peer.
      Close(/*cancel=*/true).IgnoreError();
      if (!Open()) continue;
      if (!Greet()) {
        OnFailure(Close(/*cancel=*/false));
        continue;
      }
    }
    if (batch.empty()) continue;
    if (WriteBatch(std::move(batch))) {
      backoff_ = options_.min_backoff;
      continue;
    }
    // A failed Write means the call is over: Finish returns the peer's status (a refusal, or
    // why the stream broke) without cancelling first, which could mask it.
    OnFailure(Close(/*cancel=*/false));
  }
  Close(/*cancel=*/true).IgnoreError();
}

bool StreamSender::Greet() {
  peer::Envelope hello;
  hello.mutable_header()->set_cluster_id(options_.cluster_id.value());
  hello.mutable_header()->set_from(options_.self.value());
  hello.mutable_header()->set_to(peer_.value());
  return writer_->Write(hello);
}

bool StreamSender::WriteBatch(std::vector<raft::Message> batch) {
  // Protobuf framing of one repeated field: a tag and a length varint.
  constexpr size_t kFieldOverhead = 11;
  peer::Envelope envelope;
  auto reset = [&] {
    envelope.Clear();
    envelope.mutable_header()->set_cluster_id(options_.cluster_id.value());
    envelope.mutable_header()->set_from(options_.self.value());
    envelope.mutable_header()->set_to(peer_.value());
  };
  reset();
  size_t bytes = envelope.ByteSizeLong();
  for (const raft::Message& m : batch) {
    peer::Message wire;
    EncodeMessage(m, &wire);
    size_t size = wire.ByteSizeLong() + kFieldOverhead;
    if (size + envelope.header().ByteSizeLong() + kFieldOverhead > options_.max_envelope_bytes) {
      // The receiver would refuse it: drop it alone, like a message to a down peer (Raft's
      // MaxSizePerMsg keeps real appends far below the limit).
      notifier_->Unreachable(peer_);
      continue;
    }
    if (bytes + size > options_.max_envelope_bytes) {
      if (!writer_->Write(envelope)) return false;
      reset();
      bytes = envelope.ByteSizeLong();
    }
    *envelope.add_messages() = std::move(wire);
    bytes += size;
  }
  return envelope.messages_size() == 0 || writer_->Write(envelope);
}

bool StreamSender::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool StreamSender::TakeRetarget() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(retarget_, false);
}

bool StreamSender::Open() {
  std::string target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || targets_.empty()) return false;
    target = targets_[target_index_ % targets_.size()];
    retarget_ = false;
  }
  if (channel_ == nullptr || channel_target_ != target) {
    channel_ = NewPeerChannel(target, options_, ChannelKind::kStream);
    channel_target_ = target;
  }
  owned_context_ = std::make_unique<grpc::ClientContext>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    context_ = owned_context_.get();
  }
  auto stub = peer::Peer::NewStub(channel_);
  // Blocks until the call is started (or fails); Stop cancels it through context_.
  writer_ = stub->Stream(owned_context_.get(), &ack_);
  return true;
}

Status StreamSender::Close(bool cancel) {
  if (writer_ == nullptr) return OkStatus();
  if (cancel) {
    std::lock_guard<std::mutex> lock(mu_);
    context_->TryCancel();
  }
  grpc::Status status = writer_->Finish();
  Status refusal = RefusalOf(*owned_context_, status);
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
  }
  writer_.reset();
  owned_context_.reset();
  return refusal;
}

std::vector<raft::Message> StreamSender::TakeBatch() {
  std::vector<raft::Message> batch;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopping_ || retarget_ || !control_.empty() || !data_.empty(); });
  if (stopping_) return batch;
  size_t bytes = 0;
  while (!control_.empty() && bytes < options_.max_batch_bytes) {
    bytes += ApproxEncodedBytes(control_.front());
    batch.push_back(std::move(control_.front()));
    control_.pop_front();
  }
  while (!data_.empty()) {
    size_t next = ApproxEncodedBytes(data_.front());
    if (!batch.empty() && bytes + next > options_.max_batch_bytes) break;
    bytes += next;
    batch.push_back(std::move(data_.front()));
    data_.pop_front();
  }
  return batch;
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
