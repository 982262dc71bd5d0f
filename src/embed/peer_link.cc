#include "embed/peer_link.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace dolmen::embed {
namespace {

void Log(const std::string& line) { std::fprintf(stderr, "dolmen: %s\n", line.c_str()); }

}  // namespace

Status PeerLink::Start(transport::Options options) {
  ASSIGN_OR_RETURN(transport_, transport::NewGrpcTransport(options, this));
  transport_->on_unreachable = [this](MemberId id) { server_->driver()->ReportUnreachable(id); };
  transport_->on_snapshot_status = [this](MemberId id, bool ok) {
    server_->driver()->ReportSnapshot(id, ok);
  };
  transport_->on_refused = [this](MemberId peer, Status why) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(peer.value()));
    Log(std::string("peer ") + hex + " refused this member: " + why.message());
    if (why.code() == Code::kStopped && on_removed_) on_removed_(why);
  };
  RETURN_IF_ERROR(transport_->Start());
  server_->SetPeerSender(this);
  SetPeers(server_->membership().List());
  return OkStatus();
}

void PeerLink::Stop() {
  if (transport_) transport_->Stop();
}

void PeerLink::Send(std::vector<raft::Message> messages) { transport_->Send(std::move(messages)); }

void PeerLink::SendSnapshot(raft::Message message) {
  // Sending the backend image to a follower that fell behind the compacted log is not wired
  // yet; Raft hears that it failed and retries later.
  MemberId to = message.to;
  server_->driver()->ReportSnapshot(to, false);
}

void PeerLink::SetPeers(const std::vector<internal::Member>& members) {
  std::vector<MemberId> present;
  for (const auto& m : members) {
    MemberId id(m.id());
    if (id == server_->member_id()) continue;
    present.push_back(id);
    transport::Peer p;
    p.id = id;
    p.urls.assign(m.peer_urls().begin(), m.peer_urls().end());
    if (std::find(known_.begin(), known_.end(), id) == known_.end()) {
      transport_->AddPeer(p);
    } else {
      transport_->UpdatePeer(p);
    }
  }
  for (MemberId id : known_) {
    if (std::find(present.begin(), present.end(), id) == present.end()) {
      transport_->RemovePeer(id);
    }
  }
  known_ = std::move(present);
}

void PeerLink::OnMessages(std::vector<raft::Message> messages) {
  server_->driver()->Step(std::move(messages));
}

void PeerLink::OnSnapshot(raft::Message message, std::string db_path) {
  Log("a snapshot from the leader arrived (index " +
      std::to_string(message.snapshot ? message.snapshot->metadata.index.value() : 0) +
      "), but installing snapshots is not supported yet");
  std::error_code ec;
  std::filesystem::remove(db_path, ec);
}

std::vector<transport::Handler::MemberInfo> PeerLink::Members() {
  std::vector<MemberInfo> out;
  for (const auto& m : server_->membership().List()) {
    MemberInfo info;
    info.id = MemberId(m.id());
    info.name = m.name();
    info.peer_urls.assign(m.peer_urls().begin(), m.peer_urls().end());
    info.client_urls.assign(m.client_urls().begin(), m.client_urls().end());
    info.is_learner = m.is_learner();
    out.push_back(std::move(info));
  }
  return out;
}

bool PeerLink::IsRemoved(MemberId from) { return server_->membership().IsRemoved(from); }

}  // namespace dolmen::embed
