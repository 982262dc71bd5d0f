// Server's lease entry points and lease start-up (docs/lease.md). Kept apart from server.cc:
// the lease glue is one concern, the member's storage and driver another.
#include <future>
#include <memory>
#include <utility>

#include "server/lease_apply.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

// The answer of a logged lease request, with the header the server fills.
template <typename Response>
void Reply(Server* server, ApplyResult result, const Callback<Response>& done) {
  if (!result.status.ok()) return done(result.status);
  Response* response = std::get_if<Response>(&result.response);
  CHECK(response != nullptr) << "lease apply returned another response type";
  server->FillHeader(response->mutable_header());
  done(std::move(*response));
}

}  // namespace

Status Server::OpenLeases() {
  clock_ = config_.clock != nullptr ? config_.clock : &system_clock_;
  lease::LessorOptions options;
  options.min_ttl_seconds = MinLeaseTtlSeconds(config_.driver);
  lessor_ = std::make_unique<lease::Lessor>(options);
  RETURN_IF_ERROR(ReloadLeases());
  LeaseExpiryOptions expiry = config_.lease_expiry;
  expiry.promote_extension = PromoteExtension(config_.driver);
  lease_expiry_ = std::make_unique<LeaseExpiryChecker>(
      lessor_.get(), clock_, expiry, [this] { return IsLeader(); },
      [this](LeaseId id) {
        etcdserverpb::LeaseRevokeRequest r;
        r.set_id(id.value());
        // A failed revoke is retried: the lessor hands the lease out again later.
        LeaseRevoke(r, [](Result<etcdserverpb::LeaseRevokeResponse>) {});
      });
  return OkStatus();
}

Status Server::ReloadLeases() { return LoadLeases(lessor_.get(), backend_.get(), store_.get()); }

void Server::StartLeases() { lease_expiry_->Start(); }

void Server::StopLeases() {
  if (lease_expiry_) lease_expiry_->Stop();
}

bool Server::IsLeader() const { return driver_->leader() == member_id_; }

void Server::LeaseGrant(const etcdserverpb::LeaseGrantRequest& r,
                        Callback<etcdserverpb::LeaseGrantResponse> done) {
  // Refused here as well as at apply: no log entry for a request that cannot succeed.
  if (r.ttl() > lease::kMaxTtlSeconds) {
    return done(Status(Code::kLeaseTtlTooLarge, "too large lease TTL"));
  }
  // A member elected moments ago promotes its lessor before the grant applies, so the new
  // lease gets an expiry like on any leader (etcd promotes before it applies client entries).
  if (IsLeader()) lease_expiry_->FollowLeadership();
  internal::InternalRequest request;
  auto* grant = request.mutable_lease_grant();
  *grant = r;
  // The id is chosen before proposing, so every member applies the same one. etcd draws it
  // from the request id generator (member id bits, then a clock-seeded counter), positive.
  while (grant->id() == 0 || (r.id() == 0 && lessor_->Exists(LeaseId(grant->id())))) {
    grant->set_id(static_cast<int64_t>(next_request_id_.fetch_add(1) & ((1ull << 63) - 1)));
  }
  Propose(std::move(request), [this, done = std::move(done)](ApplyResult result) {
    Reply(this, std::move(result), done);
  });
}

void Server::LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& r,
                         Callback<etcdserverpb::LeaseRevokeResponse> done, const Caller& caller) {
  internal::InternalRequest request;
  *request.mutable_lease_revoke() = r;
  StampCaller(&request, caller);
  Propose(std::move(request), [this, done = std::move(done)](ApplyResult result) {
    Reply(this, std::move(result), done);
  });
}

Status Server::LeaderOnly() {
  if (IsLeader()) {
    // Elected moments ago: promote now rather than at the checker's next round.
    lease_expiry_->FollowLeadership();
    if (lessor_->primary()) return OkStatus();
  }
  if (driver_->leader().value() == 0) return Status(Code::kNoLeader, "no leader");
  return Status(Code::kNotLeader, "not leader");
}

void Server::ForwardToLeader(Forwarder::Attempt attempt, Forwarder::IsFinal is_final,
                             std::function<void(Status)> finish) {
  if (forwarder_ == nullptr || leader_client_ == nullptr) {
    // Nobody to forward to (a member without peers, or not started): answer as the leader.
    return finish(driver_->leader().value() == 0 ? Status(Code::kNoLeader, "no leader")
                                                 : Status(Code::kNotLeader, "not leader"));
  }
  forwarder_->Run(std::move(attempt), std::move(is_final), std::move(finish));
}

Result<int64_t> Server::LeaseRenewHere(LeaseId id) {
  RETURN_IF_ERROR(LeaderOnly());
  return lessor_->Renew(id, clock_->Now());
}

void Server::LeaseRenewAsLeader(LeaseId id, Callback<int64_t> done) {
  if (Status s = LeaderOnly(); !s.ok()) return done(s);
  ReadBarrier(/*serializable=*/false, [this, id, done = std::move(done)](Status confirmed) {
    // A barrier that failed (the leader changed, no quorum in time) renews nothing: the client
    // tries again, through whichever member leads by then.
    if (!confirmed.ok()) return done(confirmed);
    done(LeaseRenewHere(id));
  });
}

// A keep-alive forwarded alone (by a follower of an earlier version): a batch of one.
Result<int64_t> Server::LeaseRenewAsLeaderBy(LeaseId id, Deadline deadline) {
  ASSIGN_OR_RETURN(std::vector<Result<int64_t>> renewed, LeaseRenewBatchAsLeaderBy({id}, deadline));
  return std::move(renewed.front());
}

Result<std::vector<Result<int64_t>>> Server::LeaseRenewBatchAsLeaderBy(
    const std::vector<LeaseId>& ids, Deadline deadline) {
  using Renewals = std::vector<Result<int64_t>>;
  if (Status s = LeaderOnly(); !s.ok()) return s;
  auto answer = std::make_shared<std::promise<Result<Renewals>>>();
  std::future<Result<Renewals>> got = answer->get_future();
  ReadBarrier(/*serializable=*/false, [this, ids, answer](Status confirmed) {
    if (!confirmed.ok()) return answer->set_value(confirmed);
    Renewals renewals;
    renewals.reserve(ids.size());
    for (LeaseId id : ids) renewals.push_back(LeaseRenewHere(id));
    answer->set_value(std::move(renewals));
  });
  if (got.wait_until(deadline) != std::future_status::ready) {
    return Status(Code::kTimeout, "request timed out");
  }
  return got.get();
}

LeaseRenewBatcher::Send Server::RenewBatchAtLeader() {
  return [this](MemberId leader, const std::vector<LeaseId>& ids,
                Deadline deadline) -> Result<std::vector<Result<int64_t>>> {
    Result<std::vector<Result<int64_t>>> r =
        leader == member_id_ ? LeaseRenewBatchAsLeaderBy(ids, deadline)
                             : leader_client_->LeaseRenewBatch(leader, ids, deadline);
    if (!r.ok()) return r;
    // A lease's own failure other than "not found" (the leader stepped down between the round
    // and the renewal) sends the whole batch again, perhaps to the next leader: renewing a
    // lease twice is harmless.
    for (const Result<int64_t>& one : *r) {
      if (!one.ok() && one.status().code() != Code::kLeaseNotFound) return one.status();
    }
    return r;
  };
}

void Server::LeaseRenew(LeaseId id, Callback<int64_t> done) {
  if (IsLeader()) return LeaseRenewAsLeader(id, std::move(done));
  // etcd's EtcdServer.LeaseRenew: renewals do not go through Raft; a follower asks the leader,
  // here in batches (lease_renew_batcher.h).
  renew_batcher_->Renew(id, std::move(done));
}

Result<etcdserverpb::LeaseTimeToLiveResponse> Server::LeaseTimeToLiveHere(
    const etcdserverpb::LeaseTimeToLiveRequest& r) {
  RETURN_IF_ERROR(LeaderOnly());
  ASSIGN_OR_RETURN(lease::TimeToLiveInfo info,
                   lessor_->TimeToLive(LeaseId(r.id()), r.keys(), clock_->Now()));
  etcdserverpb::LeaseTimeToLiveResponse out;
  FillHeader(out.mutable_header());
  out.mutable_header()->set_revision(store_->CurrentRevision().value());
  out.set_id(r.id());
  out.set_ttl(info.remaining_seconds);
  out.set_grantedttl(info.granted_ttl_seconds);
  for (auto& key : info.keys) out.add_keys(std::move(key));
  return out;
}

void Server::LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& r,
                             Callback<etcdserverpb::LeaseTimeToLiveResponse> done) {
  if (IsLeader()) return done(LeaseTimeToLiveHere(r));
  auto out = std::make_shared<etcdserverpb::LeaseTimeToLiveResponse>();
  ForwardToLeader(
      [this, r, out](MemberId leader, Deadline deadline) -> Status {
        auto answer = leader == member_id_ ? LeaseTimeToLiveHere(r)
                                           : leader_client_->LeaseTimeToLive(leader, r, deadline);
        if (answer.ok()) *out = std::move(answer).value();
        return answer.status();
      },
      [](const Status& s) { return s.code() == Code::kLeaseNotFound; },
      [this, r, out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        // This member's header, as etcd's LeaseServer fills it on the member that answers.
        FillHeader(out->mutable_header());
        out->mutable_header()->set_revision(store_->CurrentRevision().value());
        out->set_id(r.id());
        done(std::move(*out));
      });
}

etcdserverpb::LeaseLeasesResponse Server::LeaseLeases() {
  etcdserverpb::LeaseLeasesResponse out;
  FillHeader(out.mutable_header());
  out.mutable_header()->set_revision(store_->CurrentRevision().value());
  for (LeaseId id : lessor_->Leases()) out.add_leases()->set_id(id.value());
  return out;
}

}  // namespace dolmen::server
