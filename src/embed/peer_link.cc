#include "embed/peer_link.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>

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
  server_->SetLeaderClient(this);
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

Result<int64_t> PeerLink::ServeLeaseRenew(int64_t lease_id, Deadline) {
  return server_->LeaseRenewHere(LeaseId(lease_id));
}

Result<transport::Handler::LeaseTtl> PeerLink::ServeLeaseTimeToLive(int64_t lease_id, bool keys,
                                                                    Deadline) {
  etcdserverpb::LeaseTimeToLiveRequest r;
  r.set_id(lease_id);
  r.set_keys(keys);
  ASSIGN_OR_RETURN(etcdserverpb::LeaseTimeToLiveResponse answer, server_->LeaseTimeToLiveHere(r));
  LeaseTtl out;
  out.ttl_seconds = answer.ttl();
  out.granted_ttl_seconds = answer.grantedttl();
  out.keys.assign(answer.keys().begin(), answer.keys().end());
  return out;
}

Result<std::vector<transport::Handler::MemberInfo>> PeerLink::ServePromoteMember(
    MemberId learner, Deadline deadline) {
  etcdserverpb::MemberPromoteRequest r;
  r.set_id(learner.value());
  // The promotion is answered on the driver thread once applied; this transport thread waits
  // for it, never past the follower's deadline.
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> answer = promise->get_future();
  server_->MemberPromoteHere(r, [promise](Result<etcdserverpb::MemberPromoteResponse> result) {
    promise->set_value(result.status());
  });
  if (answer.wait_until(deadline) != std::future_status::ready) {
    return Status(Code::kTimeout, "request timed out");
  }
  RETURN_IF_ERROR(answer.get());
  return Members();
}

Result<int64_t> PeerLink::LeaseRenew(MemberId leader, LeaseId id, server::Deadline deadline) {
  return transport_->ForwardLeaseRenew(leader, id.value(), deadline);
}

Result<etcdserverpb::LeaseTimeToLiveResponse> PeerLink::LeaseTimeToLive(
    MemberId leader, const etcdserverpb::LeaseTimeToLiveRequest& r, server::Deadline deadline) {
  ASSIGN_OR_RETURN(LeaseTtl ttl,
                   transport_->ForwardLeaseTimeToLive(leader, r.id(), r.keys(), deadline));
  etcdserverpb::LeaseTimeToLiveResponse out;
  out.set_id(r.id());
  out.set_ttl(ttl.ttl_seconds);
  out.set_grantedttl(ttl.granted_ttl_seconds);
  for (auto& key : ttl.keys) out.add_keys(std::move(key));
  return out;
}

Result<std::vector<internal::Member>> PeerLink::MemberPromote(MemberId leader, MemberId learner,
                                                              server::Deadline deadline) {
  ASSIGN_OR_RETURN(std::vector<MemberInfo> members,
                   transport_->ForwardPromoteMember(leader, learner, deadline));
  std::vector<internal::Member> out;
  for (const MemberInfo& info : members) {
    internal::Member m;
    m.set_id(info.id.value());
    m.set_name(info.name);
    for (const auto& u : info.peer_urls) m.add_peer_urls(u);
    for (const auto& u : info.client_urls) m.add_client_urls(u);
    m.set_is_learner(info.is_learner);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace dolmen::embed
