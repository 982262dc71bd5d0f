#include "embed/peer_link.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>

#include "embed/member_record.h"
#include "log/log.h"

namespace dolmen::embed {

Status PeerLink::Start(transport::Options options) {
  ASSIGN_OR_RETURN(transport_, transport::NewGrpcTransport(options, this));
  transport_->on_unreachable = [this](MemberId id) { server_->driver()->ReportUnreachable(id); };
  transport_->on_snapshot_status = [this](MemberId id, bool ok) { SnapshotSent(id, ok); };
  transport_->on_refused = [this](MemberId peer, Status why) {
    std::string& logged = logged_refusals_[peer];
    if (logged != why.message()) {
      logged = why.message();
      log::Warn("a peer refused this member",
                {{"remote-peer-id", log::Hex(peer.value())}, {"error", why.message()}});
    }
    if (why.code() == Code::kRemoved && on_removed_) on_removed_(why);
  };
  RETURN_IF_ERROR(transport_->Start());
  image_writer_ = std::thread([this] { RunImageWriter(); });
  server_->SetPeerSender(this);
  server_->SetLeaderClient(this);
  server_->SetPeerHasher(this);
  SetPeers(server_->membership().List());
  return OkStatus();
}

void PeerLink::Stop() {
  {
    std::lock_guard lock(image_mu_);
    image_writer_stopping_ = true;
  }
  image_cv_.notify_all();
  if (image_writer_.joinable()) image_writer_.join();
  if (transport_) transport_->Stop();
  std::lock_guard lock(image_mu_);
  for (const auto& [to, path] : images_in_flight_) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  images_in_flight_.clear();
}

void PeerLink::Send(std::vector<raft::Message> messages) { transport_->Send(std::move(messages)); }

void PeerLink::SendSnapshot(raft::Message message) {
  {
    std::lock_guard lock(image_mu_);
    if (!image_writer_stopping_) {
      images_to_write_.push_back(std::move(message));
      image_cv_.notify_one();
      return;
    }
  }
  server_->driver()->ReportSnapshot(message.to, false);
}

void PeerLink::RunImageWriter() {
  for (;;) {
    raft::Message message;
    {
      std::unique_lock lock(image_mu_);
      image_cv_.wait(lock, [this] { return image_writer_stopping_ || !images_to_write_.empty(); });
      if (image_writer_stopping_) {
        for (const raft::Message& m : images_to_write_)
          server_->driver()->ReportSnapshot(m.to, false);
        images_to_write_.clear();
        return;
      }
      message = std::move(images_to_write_.front());
      images_to_write_.pop_front();
    }
    const MemberId to = message.to;
    Result<std::string> path = server_->WriteSnapshotImage(to);
    if (!path.ok()) {
      log::Warn("cannot write the snapshot image for a follower",
                {{"remote-peer-id", log::Hex(to.value())}, {"error", path.status().ToString()}});
      server_->driver()->ReportSnapshot(to, false);
      continue;
    }
    {
      std::lock_guard lock(image_mu_);
      images_in_flight_[to] = *path;
    }
    transport_->SendSnapshot(std::move(message), *path);
  }
}

void PeerLink::SnapshotSent(MemberId to, bool ok) {
  std::string path;
  {
    std::lock_guard lock(image_mu_);
    auto it = images_in_flight_.find(to);
    if (it != images_in_flight_.end()) {
      path = std::move(it->second);
      images_in_flight_.erase(it);
    }
  }
  if (!path.empty()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  server_->driver()->ReportSnapshot(to, ok);
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
  const uint64_t index = message.snapshot ? message.snapshot->metadata.index.value() : 0;
  Status s = server_->ReceiveSnapshot(std::move(message), db_path);
  if (!s.ok()) {
    log::Warn("refused the snapshot from the leader",
              {{"snapshot-index", index}, {"error", s.ToString()}});
  }
}

std::vector<transport::Handler::MemberInfo> PeerLink::Members() {
  std::vector<MemberInfo> out;
  for (const auto& m : server_->membership().List()) out.push_back(ToMemberInfo(m));
  return out;
}

bool PeerLink::IsRemoved(MemberId from) { return server_->membership().IsRemoved(from); }

Result<int64_t> PeerLink::ServeLeaseRenew(int64_t lease_id, Deadline deadline) {
  return server_->LeaseRenewAsLeaderBy(LeaseId(lease_id), deadline);
}

Result<std::vector<Result<int64_t>>> PeerLink::ServeLeaseRenewBatch(
    const std::vector<int64_t>& lease_ids, Deadline deadline) {
  std::vector<LeaseId> ids;
  ids.reserve(lease_ids.size());
  for (int64_t id : lease_ids) ids.emplace_back(id);
  return server_->LeaseRenewBatchAsLeaderBy(ids, deadline);
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

Result<std::vector<Result<int64_t>>> PeerLink::LeaseRenewBatch(MemberId leader,
                                                               const std::vector<LeaseId>& ids,
                                                               server::Deadline deadline) {
  std::vector<int64_t> lease_ids;
  lease_ids.reserve(ids.size());
  for (LeaseId id : ids) lease_ids.push_back(id.value());
  Result<std::vector<Result<int64_t>>> batch =
      transport_->ForwardLeaseRenewBatch(leader, lease_ids, deadline);
  if (batch.ok() || batch.status().code() != Code::kUnimplemented) return batch;
  return server::LeaderClient::LeaseRenewBatch(leader, ids, deadline);  // one at a time
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
  for (const MemberInfo& info : members) out.push_back(ToMember(info));
  return out;
}

Result<transport::Handler::HashKv> PeerLink::ServeHashKv(int64_t revision) {
  ASSIGN_OR_RETURN(server::KvHash h, server_->ServeHashKv(Revision(revision)));
  HashKv out;
  out.member = server_->member_id();
  out.hash = h.hash;
  out.compact_revision = h.compact_revision.value();
  out.hash_revision = h.hash_revision.value();
  out.revision = h.revision.value();
  return out;
}

Result<server::KvHash> PeerLink::PeerHashKv(MemberId peer, Revision revision,
                                            server::Deadline deadline) {
  ASSIGN_OR_RETURN(HashKv h, transport_->PeerHashKv(peer, revision.value(), deadline));
  if (h.member != peer) {
    return Status(Code::kFailedPrecondition, "asked member " + server::MemberHex(peer) +
                                                 " for its hash, member " +
                                                 server::MemberHex(h.member) + " answered");
  }
  return server::KvHash{h.hash, Revision(h.compact_revision), Revision(h.hash_revision),
                        Revision(h.revision)};
}

}  // namespace dolmen::embed
