// The checks after every step and at the end of a run (cluster_sim_run.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "sim/cluster_sim_run.h"

namespace dolmen::sim {

void ClusterSim::Check() {
  if (!result_.ok) return;
  if (!o_.step_checks) return;
  CheckLeaders();
  for (Node& n : nodes_) {
    if (!result_.ok) return;
    if (!n.member->up()) continue;
    CheckCommitted(n);
    CheckHash(n);
    if (o_.leases) CheckLeases(n);
  }
  if (applied_violation_) return Fail(*applied_violation_);
  PumpWatches(/*force=*/false);
}

// Election safety (Raft Figure 3): at most one leader per term.
void ClusterSim::CheckLeaders() {
  for (const Node& n : nodes_) {
    const SimMember& m = *n.member;
    if (!m.up() || m.core().leader() != m.id()) continue;
    auto [it, fresh] = leaders_.emplace(m.core().term().value(), m.id());
    if (!fresh && it->second != m.id()) {
      return Fail("two leaders in term " + std::to_string(it->first) + ": members " +
                  std::to_string(it->second.value()) + " and " + std::to_string(m.id().value()));
    }
  }
}

// State machine safety: an entry once committed anywhere is the entry at its index everywhere
// it is committed, crashes included.
void ClusterSim::CheckCommitted(Node& n) {
  SimMember& m = *n.member;
  const uint64_t commit = m.core().commit_index().value();
  const uint64_t first = m.raft_storage().FirstIndex().value();
  for (uint64_t i = std::max(n.checked_commit + 1, first); i <= commit; ++i) {
    Result<Term> term = m.raft_storage().TermAt(Index(i));
    if (!term.ok()) continue;  // compacted away
    auto [it, fresh] = committed_terms_.emplace(i, term->value());
    if (!fresh && it->second != term->value()) {
      return Fail("committed entry " + std::to_string(i) + " changed: term " +
                  std::to_string(it->second) + " before, term " + std::to_string(term->value()) +
                  " on member " + std::to_string(m.id().value()));
    }
  }
  n.checked_commit = std::max(n.checked_commit, commit);
}

// Members agree: the same applied index, the same store (etcd's HashKV, as the corruption
// check compares it).
void ClusterSim::CheckHash(Node& n) {
  SimMember& m = *n.member;
  const uint64_t applied = m.StateIndex();
  if (applied == n.hashed_applied) return;
  n.hashed_applied = applied;
  Result<mvcc::Store::HashKvResult> h = m.store().HashKv(Revision(0));
  if (!h.ok())
    return Fail("HashKV on member " + std::to_string(m.id().value()) + ": " +
                h.status().ToString());
  auto [it, fresh] = hash_at_.emplace(applied, std::make_pair(h->hash, m.id()));
  if (fresh) return;
  ++result_.hash_checks;
  if (it->second.first != h->hash) {
    Fail("members disagree at applied index " + std::to_string(applied) + ": member " +
         std::to_string(it->second.second.value()) + " hashed " + std::to_string(it->second.first) +
         ", member " + std::to_string(m.id().value()) + " hashed " + std::to_string(h->hash));
  }
}

// The nodes the leader's membership lists (removed members that never learned it, and
// learners whose addition never applied, are left out).
std::vector<ClusterSim::Node*> ClusterSim::CurrentMembers(size_t leader) {
  std::vector<Node*> out;
  for (const internal::Member& m : nodes_[leader].member->membership().List()) {
    if (m.id() >= 1 && m.id() <= nodes_.size()) out.push_back(&nodes_[m.id() - 1]);
  }
  return out;
}

void ClusterSim::FinalChecks() {
  // Every member at the same index: the same store.
  const std::vector<Node*> members = CurrentMembers(final_leader_);
  for (Node* n : members) {
    n->hashed_applied = UINT64_MAX;
    CheckHash(*n);
    if (!result_.ok) return;
  }
  // No acknowledged write lost: each is in every member's store at its revision, unless a
  // compaction removed that revision since.
  for (const ClientOp& op : ops_) {
    if (op.outcome != Outcome::kOk || !op.wrote || op.kind == Kind::kDelete) continue;
    for (Node* member : members) {
      Node& n = *member;
      mvcc::RangeOptions range;
      range.key = op.key;
      range.revision = Revision(op.revision);
      Result<mvcc::RangeResult> rr = n.member->store().Range(range);
      if (!rr.ok() && rr.status().code() == Code::kCompacted) continue;
      const bool there = rr.ok() && rr->kvs.size() == 1 && rr->kvs[0].value == op.value &&
                         rr->kvs[0].mod_revision.value() == op.revision;
      if (!there) {
        return Fail("acknowledged write lost on member " + std::to_string(n.member->id().value()) +
                    ": " + op.Describe() + " (the store holds " +
                    (!rr.ok()          ? rr.status().ToString()
                     : rr->kvs.empty() ? std::string("nothing")
                                       : rr->kvs[0].value + "@" +
                                             std::to_string(rr->kvs[0].mod_revision.value())) +
                    ")");
      }
    }
  }
  HistoryChecker checker(ops_);
  if (std::optional<std::string> violation = checker.Check()) {
    return Fail("not linearizable: " + *violation);
  }
  if (o_.leases) FinalLeaseChecks(members);
  if (o_.watches && o_.step_checks && result_.ok) FinalWatchChecks(members);
}

}  // namespace dolmen::sim
