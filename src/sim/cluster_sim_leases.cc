// Leases in the run (cluster_sim_run.h): clients grant leases with TTLs of 1 or 2 virtual seconds,
// attach puts to them, keep about half alive (a keep-alive every third of the TTL, as etcd's
// client does) and revoke some; the leader's expiry checker proposes revokes for the rest; the
// rules of sim_leases.h are checked as they happen and at the end.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "sim/cluster_sim_run.h"

namespace dolmen::sim {
namespace {

// The leases `client` may still use: granted, not revoked, not refused.
std::vector<int64_t> UsableLeases(const LeaseBook& book, int client) {
  std::vector<int64_t> out;
  for (const auto& [id, r] : book.all()) {
    if (r.client == client && r.granted && !r.dead) out.push_back(id);
  }
  return out;
}

}  // namespace

// etcd's LeaseGrant and LeaseRevoke through the log (Server::LeaseGrant picks the id before
// proposing; here the client does, so every id is known to the checks).
bool ClusterSim::IssueLeaseOp(int client) {
  const std::vector<int64_t> usable = UsableLeases(leases_, client);
  const bool grant = usable.size() < 3 && random_.Uniform(10) < 7;
  if (!grant && usable.empty()) return false;
  const std::optional<size_t> node = RandomServingNode();
  if (!node) return false;
  clients_[static_cast<size_t>(client)].busy = true;
  const size_t op = NewOp(client, grant ? Kind::kGrant : Kind::kRevoke, "");
  internal::InternalRequest request;
  if (grant) {
    const int64_t id = next_lease_id_++;
    ops_[op].lease = id;
    // Mostly the minimum, 1 s: every lease must be revoked before a run ends.
    ops_[op].ttl_seconds = random_.Uniform(5) == 0 ? 2 : 1;
    LeaseRecord& r = leases_.New(id, client, ops_[op].ttl_seconds, now_);
    r.keep_alive = random_.Uniform(2) == 0;
    request.mutable_lease_grant()->set_id(id);
    request.mutable_lease_grant()->set_ttl(ops_[op].ttl_seconds);
  } else {
    const int64_t id = usable[random_.Uniform(usable.size())];
    ops_[op].lease = id;
    leases_.Find(id)->dead = true;  // the client stops using it now
    request.mutable_lease_revoke()->set_id(id);
  }
  Propose(*node, std::move(request), [this, op](server::ApplyResult r) { Complete(op, r); });
  return true;
}

int64_t ClusterSim::LeaseForPut(int client) {
  if (!o_.leases || client < 0 || random_.Uniform(3) != 0) return 0;
  if (random_.Uniform(8) == 0) {
    // Now and then a lease the client saw revoked: the put must fail with "requested lease
    // not found" (LeaseBook::CheckLeasedPut).
    std::vector<int64_t> revoked;
    for (const auto& [id, r] : leases_.all()) {
      if (r.client == client && r.revoked_ms) revoked.push_back(id);
    }
    if (!revoked.empty()) return revoked[random_.Uniform(revoked.size())];
  }
  const std::vector<int64_t> usable = UsableLeases(leases_, client);
  return usable.empty() ? 0 : usable[random_.Uniform(usable.size())];
}

void ClusterSim::CompleteLeaseOp(ClientOp& op, const server::ApplyResult& r) {
  if (!r.status.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = r.status.ToString();
    // Refused because the lease is gone: a revoke applied before this one did.
    if (op.kind == Kind::kRevoke && r.status.code() == Code::kLeaseNotFound) {
      leases_.Revoked(op.lease, now_);
    }
    return;
  }
  op.outcome = Outcome::kOk;
  if (const auto* grant = std::get_if<etcdserverpb::LeaseGrantResponse>(&r.response)) {
    op.revision = grant->header().revision();
    op.ttl_seconds = grant->ttl();
    leases_.Granted(op.lease, grant->ttl());
    LeaseRecord* rec = leases_.Find(op.lease);
    rec->next_keep_alive_ms = now_ + static_cast<uint64_t>(grant->ttl()) * 1000 / 3;
    ++result_.lease_grants;
  } else if (const auto* revoke = std::get_if<etcdserverpb::LeaseRevokeResponse>(&r.response)) {
    op.revision = revoke->header().revision();
    leases_.Revoked(op.lease, now_);
    if (op.client >= 0) ++result_.lease_revokes;
  } else {
    op.outcome = Outcome::kFailed;
    op.error = "unexpected response type";
  }
}

std::optional<uint64_t> ClusterSim::NextLeaseEvent() const {
  if (!o_.leases) return std::nullopt;
  uint64_t next = next_expiry_check_at_;
  if (phase_ == Phase::kChaos) {
    for (const auto& [id, r] : leases_.all()) {
      if (r.keep_alive && r.granted && !r.dead) next = std::min(next, r.next_keep_alive_ms);
    }
  }
  return next;
}

// etcd's LeaseKeepAlive: not through the log. The member asked forwards to the leader it knows
// (Server::LeaseRenew), here at once; the leader renews once a ReadIndex round confirmed its
// leadership (Server::LeaseRenewAsLeader), so it is a read barrier in the leader's inbox. A
// keep-alive in flight is not sent again.
void ClusterSim::KeepAlives() {
  if (!o_.leases || phase_ != Phase::kChaos) return;
  for (const auto& [id, rec] : leases_.all()) {
    if (!rec.keep_alive || !rec.granted || rec.dead || rec.next_keep_alive_ms > now_) continue;
    LeaseRecord& r = *leases_.Find(id);
    const std::optional<size_t> asked = RandomUpNode();
    std::optional<size_t> leader_node;
    if (asked) {
      const MemberId leader = nodes_[*asked].member->core().leader();
      if (leader.value() != 0 && leader.value() <= nodes_.size() &&
          nodes_[leader.value() - 1].member->up()) {
        leader_node = leader.value() - 1;
      }
    }
    if (!leader_node) {
      r.next_keep_alive_ms = now_ + 50;  // no leader known: retry soon
      continue;
    }
    r.next_keep_alive_ms = UINT64_MAX;  // in flight
    const uint64_t sent = now_;
    nodes_[*leader_node].inbox.reads.push_back(
        server::Waiter{[this, id = id, sent, node = *leader_node](Status confirmed) {
                         KeepAliveAnswered(id, sent, node, confirmed);
                       },
                       At(now_ + kRequestTimeoutMs)});
  }
}

void ClusterSim::KeepAliveAnswered(int64_t id, uint64_t sent, size_t node, Status confirmed) {
  LeaseRecord& r = *leases_.Find(id);
  SimMember& l = *nodes_[node].member;
  Result<int64_t> renewed =
      confirmed.ok() ? l.services().RenewHere(LeaseId(id), l.core().leader()) : confirmed;
  if (renewed.ok()) {
    // The client knows the lease lives until the keep-alive's start plus the TTL it returned.
    leases_.KeptAlive(id, *renewed, sent);
    r.next_keep_alive_ms = now_ + static_cast<uint64_t>(*renewed) * 1000 / 3;
    ++result_.lease_keepalives;
  } else if (renewed.status().code() == Code::kLeaseNotFound) {
    Trace("keep-alive of lease " + std::to_string(id) + " refused: expired");
    r.dead = true;  // expired: etcd's client gives up on it
  } else {
    r.next_keep_alive_ms = now_ + 50;  // not the leader any more, stopped: retry soon
  }
}

// The leader's expiry checker, every check interval on every member (only a primary lessor
// hands out expired leases), each revoke proposed as Server's expiry callback does.
void ClusterSim::ExpireLeases() {
  if (!o_.leases || now_ < next_expiry_check_at_) return;
  const uint64_t interval = kLeaseCheckInterval.count();
  while (next_expiry_check_at_ <= now_) next_expiry_check_at_ += interval;
  for (size_t i = 0; i < nodes_.size() && result_.ok; ++i) {
    SimMember& m = *nodes_[i].member;
    if (!m.up()) continue;
    for (LeaseId id : m.services().ExpireLeases()) {
      Trace("member " + std::to_string(i + 1) + " revokes expired lease " +
            std::to_string(id.value()));
      if (o_.step_checks) {
        if (auto violation = leases_.CheckExpiry(id.value(), now_, m.id())) return Fail(*violation);
      }
      ++result_.lease_expiries;
      const size_t op = NewOp(kLeaderClient, Kind::kRevoke, "");
      ops_[op].lease = id.value();
      internal::InternalRequest request;
      request.mutable_lease_revoke()->set_id(id.value());
      Propose(i, std::move(request), [this, op](server::ApplyResult r) { Complete(op, r); });
    }
  }
}

// After every step: the member's keys and leases agree, and members at one applied index hold
// the same leases.
void ClusterSim::CheckLeases(Node& n) {
  SimMember& m = *n.member;
  const uint64_t applied = m.StateIndex();
  if (applied == n.leases_checked) return;
  n.leases_checked = applied;
  Result<uint64_t> digest = LeaseDigest(m.services().lessor(), m.store());
  if (!digest.ok()) {
    return Fail("member " + std::to_string(m.id().value()) + " at applied index " +
                std::to_string(applied) + ": " + digest.status().message());
  }
  auto [it, fresh] = lease_digest_at_.emplace(applied, std::make_pair(*digest, m.id()));
  if (fresh) return;
  ++result_.lease_checks;
  if (it->second.first != *digest) {
    Fail("members disagree on the leases at applied index " + std::to_string(applied) +
         ": member " + std::to_string(it->second.second.value()) + " and member " +
         std::to_string(m.id().value()));
  }
}

// Once healed and idle: every lease expired and was revoked everywhere, and no key is left
// attached to one.
void ClusterSim::FinalLeaseChecks(const std::vector<Node*>& members) {
  for (Node* n : members) {
    SimMember& m = *n->member;
    Result<uint64_t> digest = LeaseDigest(m.services().lessor(), m.store());
    if (!digest.ok()) {
      return Fail("member " + std::to_string(m.id().value()) +
                  " at the end: " + digest.status().message());
    }
    const std::vector<LeaseId> left = m.services().lessor().Leases();
    if (!left.empty()) {
      return Fail("liveness: lease " + std::to_string(left.front().value()) + " (of " +
                  std::to_string(left.size()) + ") still held by member " +
                  std::to_string(m.id().value()) + " after every lease expired");
    }
  }
}

}  // namespace dolmen::sim
