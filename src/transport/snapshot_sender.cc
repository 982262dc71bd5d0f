#include "transport/snapshot_sender.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/crc32c.h"
#include "dolmen/peer.grpc.pb.h"
#include "transport/channel.h"
#include "transport/codec.h"

namespace dolmen::transport {
namespace {

// Closes a file descriptor on every path out of Transfer.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads up to n bytes, retrying interrupted and short reads; returns bytes read or -1.
ssize_t ReadFull(int fd, char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(fd, buf + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace

SnapshotSender::SnapshotSender(const Options& options, MemberId peer,
                               std::vector<DialTarget> targets, Notifier* notifier,
                               std::shared_ptr<const PeerTls> tls)
    : options_(options),
      peer_(peer),
      notifier_(notifier),
      tls_(std::move(tls)),
      targets_(std::move(targets)) {
  CHECK_GT(options_.snapshot_chunk_bytes, 0u);
}

SnapshotSender::~SnapshotSender() { Stop(); }

void SnapshotSender::Start() {
  CHECK(!thread_.joinable()) << "SnapshotSender started twice";
  thread_ = std::thread([this] { Run(); });
}

void SnapshotSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SnapshotSender::Send(raft::Message message, std::string db_path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && !busy_) {
      busy_ = true;
      job_ = Job{std::move(message), std::move(db_path)};
      cv_.notify_one();
      return;
    }
  }
  notifier_->SnapshotStatus(peer_, false);
}

void SnapshotSender::UpdateTargets(std::vector<DialTarget> targets) {
  std::lock_guard<std::mutex> lock(mu_);
  targets_ = std::move(targets);  // a transfer in flight finishes on its old address
}

void SnapshotSender::Run() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || job_.has_value(); });
      if (stopping_) return;
      job = std::move(*job_);
      job_.reset();
    }
    Status status = Transfer(job);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      stopping = stopping_;
    }
    if (stopping) return;
    notifier_->SnapshotStatus(peer_, status.ok());
    if (!status.ok()) notifier_->Unreachable(peer_);
  }
}

Status SnapshotSender::Transfer(const Job& job) {
  Fd fd(::open(job.db_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return IoError("open snapshot " + job.db_path + ": " + std::strerror(errno));
  }
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0 || ::lseek(fd.get(), 0, SEEK_SET) < 0) {
    return IoError("seek snapshot " + job.db_path + ": " + std::strerror(errno));
  }

  DialTarget target;
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status(Code::kCancelled, "stopping");
    if (targets_.empty())
      return Unavailable("peer " + std::to_string(peer_.value()) + " has no URL");
    target = targets_.front();
    context_ = &context;
  }
  // context_ must not outlive `context`: cleared on every path below.
  struct ClearContext {
    SnapshotSender* self;
    ~ClearContext() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->context_ = nullptr;
    }
  } clear{this};

  auto stub = peer::Peer::NewStub(NewPeerChannel(target, options_, ChannelKind::kSnapshot, *tls_));
  peer::SnapshotAck ack;
  std::unique_ptr<grpc::ClientWriter<peer::SnapshotChunk>> writer = stub->Snapshot(&context, &ack);

  peer::SnapshotChunk chunk;
  peer::SnapshotBegin* begin = chunk.mutable_begin();
  begin->mutable_header()->set_cluster_id(options_.cluster_id.value());
  begin->mutable_header()->set_from(options_.self.value());
  begin->mutable_header()->set_to(peer_.value());
  EncodeMessage(job.message, begin->mutable_message());
  begin->set_size_bytes(static_cast<uint64_t>(size));
  bool ok = writer->Write(chunk);

  std::string buf(options_.snapshot_chunk_bytes, '\0');
  uint32_t crc = 0;
  uint64_t sent = 0;
  Status local_error;
  while (ok && sent < static_cast<uint64_t>(size)) {
    ssize_t n = ReadFull(fd.get(), buf.data(), buf.size());
    if (n <= 0) {
      // The file shrank or failed under us: abandon the call so the receiver discards it.
      local_error = IoError("read snapshot " + job.db_path + " at " + std::to_string(sent));
      context.TryCancel();
      break;
    }
    crc = crc32c::Extend(crc, buf.data(), static_cast<size_t>(n));
    chunk.Clear();
    chunk.set_data(buf.data(), static_cast<size_t>(n));
    ok = writer->Write(chunk);
    sent += static_cast<uint64_t>(n);
  }
  if (ok && local_error.ok()) {
    chunk.Clear();
    chunk.mutable_end()->set_crc32c(crc);
    ok = writer->Write(chunk) && writer->WritesDone();
  }
  grpc::Status status = writer->Finish();
  if (!local_error.ok()) return local_error;
  Status refusal = RefusalOf(context, status);
  if (!refusal.ok()) {
    notifier_->Refused(peer_, refusal);
    return refusal;
  }
  if (!status.ok()) {
    return Unavailable("snapshot to " + target.address + ": " + status.error_message());
  }
  return OkStatus();
}

}  // namespace dolmen::transport
