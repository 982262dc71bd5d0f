// The client load and its recorded history (cluster_sim_run.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "sim/cluster_sim_run.h"

namespace dolmen::sim {

std::optional<size_t> ClusterSim::RandomServingNode() {
  std::vector<size_t> serving;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    SimMember& m = *nodes_[i].member;
    if (!m.up()) continue;
    // Server::RefuseIfLearner: a learner (or a member that does not know itself yet) serves
    // no writes and no linearizable reads.
    std::optional<internal::Member> self = m.membership().Get(m.id());
    if (self && !self->is_learner()) serving.push_back(i);
  }
  if (serving.empty()) return std::nullopt;
  return serving[random_.Uniform(serving.size())];
}

std::optional<size_t> ClusterSim::RandomUpNode() {
  std::vector<size_t> up;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].member->up()) up.push_back(i);
  }
  if (up.empty()) return std::nullopt;
  return up[random_.Uniform(up.size())];
}

void ClusterSim::Clients() {
  if (phase_ != Phase::kChaos) return;
  for (size_t c = 0; c < clients_.size(); ++c) {
    Client& client = clients_[c];
    if (client.busy || client.next_at > now_) continue;
    if (o_.leases && random_.Uniform(100) < 8 && IssueLeaseOp(static_cast<int>(c))) continue;
    const uint64_t dice = random_.Uniform(100);
    const Kind kind = dice < 35   ? Kind::kPut
                      : dice < 55 ? Kind::kCas
                      : dice < 65 ? Kind::kDelete
                                  : Kind::kRead;
    const std::string key = "k" + std::to_string(random_.Uniform(o_.keys));
    if (!Issue(static_cast<int>(c), kind, key)) client.next_at = now_ + 10;
  }
}

size_t ClusterSim::NewOp(int client, Kind kind, const std::string& key) {
  ClientOp op;
  op.id = ops_.size() + 1;
  op.client = client;
  op.kind = kind;
  op.key = key;
  op.invoked_ms = now_;
  if (kind == Kind::kPut || kind == Kind::kCas) {
    op.value = "c" + std::to_string(client) + "-" + std::to_string(op.id);
  }
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

void ClusterSim::Propose(size_t node, internal::InternalRequest request,
                         server::ProposalDone done) {
  const uint64_t id = next_request_id_++;
  request.set_id(id);
  nodes_[node].inbox.proposals.push_back(server::Proposal{
      id, request.SerializeAsString(), std::move(done), At(now_ + kRequestTimeoutMs)});
}

// As the server's front-end (Server::Put, Txn, DeleteRange, Range): writes are proposals
// answered once applied on the member asked; a linearizable read passes the read barrier and
// then reads that member's store.
bool ClusterSim::Issue(int client, Kind kind, const std::string& key) {
  const std::optional<size_t> node = RandomServingNode();
  if (!node) return false;
  if (client >= 0) clients_[static_cast<size_t>(client)].busy = true;
  const size_t op = NewOp(client, kind, key);
  auto done = [this, op](server::ApplyResult r) { Complete(op, r); };
  internal::InternalRequest request;
  switch (kind) {
    case Kind::kPut: {
      request.mutable_put()->set_key(key);
      request.mutable_put()->set_value(ops_[op].value);
      ops_[op].lease = LeaseForPut(client);
      request.mutable_put()->set_lease(ops_[op].lease);
      Propose(*node, std::move(request), std::move(done));
      return true;
    }
    case Kind::kCas: {
      std::string expected;
      if (client >= 0) expected = clients_[static_cast<size_t>(client)].known[key];
      ops_[op].expected = expected;
      etcdserverpb::TxnRequest* txn = request.mutable_txn();
      etcdserverpb::Compare* cmp = txn->add_compare();
      cmp->set_key(key);
      if (expected.empty()) {
        cmp->set_target(etcdserverpb::Compare::VERSION);
        cmp->set_version(0);
      } else {
        cmp->set_target(etcdserverpb::Compare::VALUE);
        cmp->set_value(expected);
      }
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(ops_[op].value);
      txn->add_failure()->mutable_request_range()->set_key(key);
      Propose(*node, std::move(request), std::move(done));
      return true;
    }
    case Kind::kDelete: {
      request.mutable_delete_range()->set_key(key);
      Propose(*node, std::move(request), std::move(done));
      return true;
    }
    case Kind::kGrant:
    case Kind::kRevoke:
      break;  // IssueLeaseOp
    case Kind::kRead: {
      nodes_[*node].inbox.reads.push_back(server::Waiter{
          [this, op, node = *node](Status barrier) { CompleteRead(op, node, barrier); },
          At(now_ + kRequestTimeoutMs)});
      return true;
    }
  }
  return false;
}

void ClusterSim::Complete(size_t index, const server::ApplyResult& r) {
  ClientOp& op = ops_[index];
  if (op.kind == Kind::kGrant || op.kind == Kind::kRevoke) {
    CompleteLeaseOp(op, r);
    return Finish(index);
  }
  if (op.lease != 0) {
    if (r.status.ok()) {
      ++result_.leased_puts;
      if (auto violation = leases_.CheckLeasedPut(op.lease, op.invoked_ms)) Fail(*violation);
    } else if (r.status.code() == Code::kLeaseNotFound) {
      ++result_.leased_puts_refused;
      leases_.Revoked(op.lease, now_);  // gone: the client stops using it
    }
  }
  if (!r.status.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = r.status.ToString();
    return Finish(index);
  }
  op.outcome = Outcome::kOk;
  if (const auto* put = std::get_if<etcdserverpb::PutResponse>(&r.response)) {
    op.revision = put->header().revision();
    op.wrote = true;
  } else if (const auto* txn = std::get_if<etcdserverpb::TxnResponse>(&r.response)) {
    op.revision = txn->header().revision();
    op.wrote = txn->succeeded();
    if (!txn->succeeded()) {
      op.observed = true;
      if (txn->responses_size() == 1 && txn->responses(0).response_range().kvs_size() == 1) {
        const mvccpb::KeyValue& kv = txn->responses(0).response_range().kvs(0);
        op.found = true;
        op.read_value = kv.value();
        op.mod_revision = kv.mod_revision();
      }
    }
  } else if (const auto* del = std::get_if<etcdserverpb::DeleteRangeResponse>(&r.response)) {
    op.revision = del->header().revision();
    op.wrote = del->deleted() > 0;
    op.observed = !op.wrote;  // deleted nothing: the key was absent at that revision
  } else {
    op.outcome = Outcome::kFailed;
    op.error = "unexpected response type";
  }
  Finish(index);
}

void ClusterSim::CompleteRead(size_t index, size_t node, const Status& barrier) {
  ClientOp& op = ops_[index];
  if (!barrier.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = barrier.ToString();
    return Finish(index);
  }
  mvcc::RangeOptions range;
  range.key = op.key;
  Result<mvcc::RangeResult> rr = nodes_[node].member->store().Range(range);
  if (!rr.ok()) {
    op.outcome = Outcome::kFailed;
    op.error = rr.status().ToString();
    return Finish(index);
  }
  op.outcome = Outcome::kOk;
  op.observed = true;
  op.revision = rr->revision.value();
  if (!rr->kvs.empty()) {
    op.found = true;
    op.read_value = rr->kvs[0].value;
    op.mod_revision = rr->kvs[0].mod_revision.value();
  }
  Finish(index);
}

void ClusterSim::Finish(size_t index) {
  ClientOp& op = ops_[index];
  op.completed_ms = now_;
  if (op.outcome == Outcome::kFailed) Trace("failed: " + op.Describe());
  if (op.client == kLeaderClient) return;
  if (op.client < 0) {
    // A final read: done once one succeeds per key.
    final_read_op_.erase(op.key);
    if (op.outcome == Outcome::kOk) final_reads_pending_.erase(op.key);
    return;
  }
  Client& c = clients_[static_cast<size_t>(op.client)];
  c.busy = false;
  c.next_at = now_ + random_.Uniform(20);
  if (op.outcome != Outcome::kOk) return;
  if (op.wrote) {
    c.known[op.key] = op.kind == Kind::kDelete ? "" : op.value;
  } else if (op.observed) {
    c.known[op.key] = op.found ? op.read_value : "";
  }
}

}  // namespace dolmen::sim
