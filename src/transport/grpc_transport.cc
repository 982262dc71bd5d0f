// The real Transport: a gRPC server for the Peer service on the listen URLs, and per peer a
// StreamSender and a SnapshotSender. See docs/transport.md.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <utility>

#include "transport/channel.h"
#include "transport/forward.h"
#include "transport/notifier.h"
#include "transport/peer_listener.h"
#include "transport/peer_service.h"
#include "transport/peer_tls.h"
#include "transport/snapshot_sender.h"
#include "transport/stream_sender.h"
#include "transport/transport.h"
#include "transport/url.h"

namespace dolmen::transport {
namespace {

// Stop waits this long for handlers in flight before cancelling their calls.
constexpr std::chrono::milliseconds kShutdownGrace{100};

struct PeerLink {
  std::unique_ptr<StreamSender> stream;
  std::unique_ptr<SnapshotSender> snapshot;
  ForwardChannels forward;  // one per dialable URL, for requests forwarded to this peer
};

// The URLs we can dial. The others (a URL that slipped past validation into the replicated
// membership) are skipped rather than trusted: a peer left with none is kept, and every
// message to it is dropped and reported unreachable.
std::vector<DialTarget> Targets(const Peer& p) {
  std::vector<DialTarget> targets;
  for (const std::string& url : p.urls) {
    Result<DialTarget> target = PeerUrlToDialTarget(url);
    if (target.ok()) targets.push_back(std::move(target).value());
  }
  return targets;
}

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(const Options& options, Handler* handler, std::shared_ptr<const PeerTls> tls)
      : options_(options),
        handler_(handler),
        tls_(std::move(tls)),
        notifier_(this),
        service_(options, handler),
        listener_(options, handler, tls_) {
    listener_.SetOnPeerStream([this](MemberId from) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = peers_.find(from);
      if (it != peers_.end()) it->second.stream->PeerIsBack();
    });
  }
  ~GrpcTransport() override { Stop(); }

  Status Start() override;
  void Stop() override;
  void AddPeer(const Peer& p) override;
  void RemovePeer(MemberId id) override;
  void UpdatePeer(const Peer& p) override;
  void Send(std::vector<raft::Message> messages) override;
  void SendSnapshot(raft::Message message, std::string db_path) override;
  Result<int64_t> ForwardLeaseRenew(MemberId to, int64_t lease_id,
                                    Handler::Deadline deadline) override;
  Result<std::vector<Result<int64_t>>> ForwardLeaseRenewBatch(MemberId to,
                                                              const std::vector<int64_t>& lease_ids,
                                                              Handler::Deadline deadline) override;
  Result<Handler::LeaseTtl> ForwardLeaseTimeToLive(MemberId to, int64_t lease_id, bool keys,
                                                   Handler::Deadline deadline) override;
  Result<std::vector<Handler::MemberInfo>> ForwardPromoteMember(
      MemberId to, MemberId learner, Handler::Deadline deadline) override;
  Result<Handler::HashKv> PeerHashKv(MemberId to, int64_t revision,
                                     Handler::Deadline deadline) override;

 private:
  ForwardChannels ForwardChannelsFor(const std::vector<DialTarget>& targets) const;
  // The channels to `to` and the header for it, or kUnavailable for an unknown peer.
  Result<std::pair<ForwardChannels, peer::Header>> ForwardTo(MemberId to);

  const Options options_;
  Handler* const handler_;
  const std::shared_ptr<const PeerTls> tls_;
  Notifier notifier_;
  PeerService service_;
  PeerListener listener_;  // the peer port: the message stream, and gRPC's connections
  std::unique_ptr<grpc::Server> server_;

  // Taken by the Raft owner thread in Send: held only for map lookups and queue pushes.
  std::mutex mu_;
  std::map<MemberId, PeerLink> peers_;  // guarded by mu_
  bool started_ = false;                // guarded by mu_
  bool stopped_ = false;                // guarded by mu_
};

// Partial snapshot files are never complete snapshots (see docs/formats/peer.md); ones left by
// a crash mid-transfer would otherwise pile up.
Status PrepareSnapshotDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return InvalidArgument("snapshot dir " + dir + " is not a directory");
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("snap-") && name.ends_with(".db.part")) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  if (ec) return IoError("snapshot dir " + dir + ": " + ec.message());
  return OkStatus();
}

Status GrpcTransport::Start() {
  CHECK(handler_ != nullptr);
  if (options_.listen_urls.empty()) return InvalidArgument("no peer listen URL");
  RETURN_IF_ERROR(PrepareSnapshotDir(options_.snapshot_dir));
  RETURN_IF_ERROR(listener_.Bind());
  // The gRPC server has no port of its own: the listener hands it the connections that speak
  // HTTP/2 on the peer port.
  grpc::ServerBuilder builder;
  ConfigurePeerServer(options_, &builder);
  builder.RegisterService(&service_);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return Internal("the peer gRPC server did not start");
  RETURN_IF_ERROR(listener_.Start(server.get()));
  std::lock_guard<std::mutex> lock(mu_);
  CHECK(!started_) << "Transport started twice";
  server_ = std::move(server);
  started_ = true;
  notifier_.Start();
  for (auto& [id, link] : peers_) {
    link.stream->Start();
    link.snapshot->Start();
  }
  return OkStatus();
}

void GrpcTransport::Stop() {
  std::map<MemberId, PeerLink> peers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    peers = std::move(peers_);
    peers_.clear();
  }
  // Senders first: nothing more goes out. Their destructors cancel and join.
  peers.clear();
  // Then inbound streams (their threads are joined), before the server they hand sockets to.
  listener_.Stop();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server_->Wait();
  }
  notifier_.Stop();
}

void GrpcTransport::AddPeer(const Peer& p) {
  CHECK_NE(p.id, options_.self) << "a member is not its own peer";
  std::vector<DialTarget> targets = Targets(p);
  PeerLink link{std::make_unique<StreamSender>(options_, p.id, targets, &notifier_, tls_),
                std::make_unique<SnapshotSender>(options_, p.id, targets, &notifier_, tls_),
                ForwardChannelsFor(targets)};
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || peers_.count(p.id) != 0) return;
  if (started_) {
    link.stream->Start();
    link.snapshot->Start();
  }
  peers_.emplace(p.id, std::move(link));
}

void GrpcTransport::RemovePeer(MemberId id) {
  PeerLink link;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    link = std::move(it->second);
    peers_.erase(it);
  }
  // Destroyed outside the lock: joining the threads must not hold up Send.
}

void GrpcTransport::UpdatePeer(const Peer& p) {
  std::vector<DialTarget> targets = Targets(p);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(p.id);
  if (it == peers_.end()) return;
  it->second.stream->UpdateTargets(targets);
  it->second.forward = ForwardChannelsFor(targets);
  it->second.snapshot->UpdateTargets(std::move(targets));
}

ForwardChannels GrpcTransport::ForwardChannelsFor(const std::vector<DialTarget>& targets) const {
  // Channels connect lazily: one that is never used costs nothing.
  ForwardChannels channels;
  for (const DialTarget& target : targets) {
    channels.push_back(NewPeerChannel(target, options_, ChannelKind::kForward, *tls_));
  }
  return channels;
}

Result<std::pair<ForwardChannels, peer::Header>> GrpcTransport::ForwardTo(MemberId to) {
  peer::Header header;
  header.set_cluster_id(options_.cluster_id.value());
  header.set_from(options_.self.value());
  header.set_to(to.value());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(to);
  if (stopped_ || it == peers_.end()) {
    return Unavailable("member " + IdHex(to.value()) + " is not a known peer");
  }
  // Copies of the shared channels: the call runs without the lock.
  return std::make_pair(it->second.forward, header);
}

Result<int64_t> GrpcTransport::ForwardLeaseRenew(MemberId to, int64_t lease_id,
                                                 Handler::Deadline deadline) {
  ASSIGN_OR_RETURN(auto target, ForwardTo(to));
  return CallLeaseRenew(target.first, target.second, lease_id, deadline);
}

Result<std::vector<Result<int64_t>>> GrpcTransport::ForwardLeaseRenewBatch(
    MemberId to, const std::vector<int64_t>& lease_ids, Handler::Deadline deadline) {
  ASSIGN_OR_RETURN(auto target, ForwardTo(to));
  return CallLeaseRenewBatch(target.first, target.second, lease_ids, deadline);
}

Result<Handler::LeaseTtl> GrpcTransport::ForwardLeaseTimeToLive(MemberId to, int64_t lease_id,
                                                                bool keys,
                                                                Handler::Deadline deadline) {
  ASSIGN_OR_RETURN(auto target, ForwardTo(to));
  return CallLeaseTimeToLive(target.first, target.second, lease_id, keys, deadline);
}

Result<std::vector<Handler::MemberInfo>> GrpcTransport::ForwardPromoteMember(
    MemberId to, MemberId learner, Handler::Deadline deadline) {
  ASSIGN_OR_RETURN(auto target, ForwardTo(to));
  return CallPromoteMember(target.first, target.second, learner, deadline);
}

Result<Handler::HashKv> GrpcTransport::PeerHashKv(MemberId to, int64_t revision,
                                                  Handler::Deadline deadline) {
  ASSIGN_OR_RETURN(auto target, ForwardTo(to));
  return CallHashKv(target.first, target.second, revision, deadline);
}

void GrpcTransport::Send(std::vector<raft::Message> messages) {
  // Each peer gets its messages in one call, so that an idle stream carries them in one
  // envelope (one write) instead of one write each.
  std::map<MemberId, std::vector<raft::Message>> by_peer;
  for (raft::Message& m : messages) {
    CHECK(!raft::IsLocalMessage(m.type)) << "local message " << MessageTypeName(m.type) << " sent";
    CHECK(m.type != raft::MessageType::kSnap) << "kSnap goes through SendSnapshot";
    by_peer[m.to].push_back(std::move(m));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [to, batch] : by_peer) {
    auto it = peers_.find(to);
    if (it == peers_.end()) continue;  // removed or not yet added: Raft retries or forgets
    it->second.stream->Enqueue(std::move(batch));
  }
}

void GrpcTransport::SendSnapshot(raft::Message message, std::string db_path) {
  CHECK(message.type == raft::MessageType::kSnap) << MessageTypeName(message.type);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(message.to);
  if (it == peers_.end()) {
    notifier_.SnapshotStatus(message.to, false);
    return;
  }
  it->second.snapshot->Send(std::move(message), std::move(db_path));
}

}  // namespace

Result<std::unique_ptr<Transport>> NewGrpcTransport(const Options& options, Handler* handler) {
  if (handler == nullptr) return InvalidArgument("transport needs a handler");
  if (options.self.value() == 0) return InvalidArgument("transport needs a member id");
  if (options.snapshot_dir.empty()) return InvalidArgument("transport needs a snapshot dir");
  if (options.max_queued_messages_per_peer == 0 || options.max_batch_bytes == 0 ||
      options.snapshot_chunk_bytes == 0 || options.snapshot_chunk_bytes > (4u << 20) ||
      options.min_backoff.count() <= 0 || options.max_backoff < options.min_backoff) {
    return InvalidArgument("transport options out of range");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<PeerTls> tls, PeerTls::New(options.tls));
  for (const std::string& url : options.listen_urls) {
    ASSIGN_OR_RETURN(DialTarget target, PeerUrlToDialTarget(url));
    if (target.tls && !tls->has_certificate()) {
      // etcd's words (pkg/transport/listener_tls.go).
      return InvalidArgument("cannot listen on TLS for " + target.address +
                             ": KeyFile and CertFile are not presented");
    }
  }
  return std::unique_ptr<Transport>(new GrpcTransport(options, handler, std::move(tls)));
}

}  // namespace dolmen::transport
