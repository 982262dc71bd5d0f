#include "server/force_new_cluster.h"

#include <algorithm>
#include <set>

#include "raft/conf_change.h"

namespace dolmen::server {
namespace {

// The members of the configuration at the end of `entries` (all after the snapshot).
Result<std::set<MemberId>> MembersAtEnd(const wal::Recovered& recovered,
                                        const std::vector<raft::Entry>& entries) {
  std::set<MemberId> ids;
  if (recovered.snapshot) {
    const raft::ConfState& cs = recovered.snapshot->conf_state;
    if (!cs.voters_outgoing.empty() || !cs.learners_next.empty()) {
      return InvalidArgument(
          "--force-new-cluster: the last snapshot's configuration is joint, which this "
          "version of dolmen never writes; refusing to rewrite a log it does not understand");
    }
    ids.insert(cs.voters.begin(), cs.voters.end());
    // etcd 3.4 keeps the snapshot's learners (it reads only Voters); a one-member cluster
    // should not keep a learner it cannot reach, so they are removed too.
    ids.insert(cs.learners.begin(), cs.learners.end());
  }
  for (const raft::Entry& e : entries) {
    if (e.type != raft::EntryType::kConfChange) continue;
    auto cc = raft::DecodeConfChange(e.data);
    if (!cc.ok()) {
      return Corruption("--force-new-cluster: conf change at index " +
                        std::to_string(e.index.value()) +
                        " does not decode: " + cc.status().message());
    }
    switch (cc->type) {
      case raft::ConfChangeType::kAddNode:
      case raft::ConfChangeType::kAddLearner:
        ids.insert(cc->node_id);
        break;
      case raft::ConfChangeType::kRemoveNode:
        ids.erase(cc->node_id);
        break;
    }
  }
  return ids;
}

raft::Entry ConfChangeEntry(raft::ConfChangeType type, MemberId id, std::string context, Term term,
                            Index index) {
  raft::ConfChange cc;
  cc.type = type;
  cc.node_id = id;
  cc.context = std::move(context);
  raft::Entry e;
  e.term = term;
  e.index = index;
  e.type = raft::EntryType::kConfChange;
  e.data = raft::EncodeConfChange(cc);
  return e;
}

}  // namespace

Result<StandaloneRestart> PlanStandaloneRestart(wal::Recovered* recovered, Index applied,
                                                MemberId self,
                                                const internal::Member& self_record) {
  StandaloneRestart plan;
  if (recovered->entries.empty() && !recovered->snapshot) {
    return Status(Code::kFailedPrecondition,
                  "--force-new-cluster: the write-ahead log holds no entries (this member never "
                  "received its cluster's log), so there is no data to keep");
  }
  const Index snapshot_index = recovered->snapshot ? recovered->snapshot->index : Index(0);
  // Committed entries are never dropped; the backend's applied index is committed too, even
  // if the logged hard state lags it.
  const Index keep_to = std::max({recovered->hard_state.commit, applied, snapshot_index});
  std::vector<raft::Entry> kept;
  for (raft::Entry& e : recovered->entries) {
    if (e.index <= snapshot_index) continue;  // covered by the snapshot's configuration
    if (e.index > keep_to) {
      ++plan.discarded_entries;
      continue;
    }
    kept.push_back(std::move(e));
  }
  const Index last = kept.empty() ? snapshot_index : kept.back().index;
  if (last < keep_to) {
    return Corruption("--force-new-cluster: the log's committed entries end at index " +
                      std::to_string(last.value()) + " but index " +
                      std::to_string(keep_to.value()) + " is committed");
  }
  ASSIGN_OR_RETURN(std::set<MemberId> members, MembersAtEnd(*recovered, kept));

  // etcd uses the logged term; a log with entries but no hard state (never voted) takes the
  // last entry's.
  Term term = recovered->hard_state.term;
  if (!kept.empty()) term = std::max(term, kept.back().term);
  if (recovered->snapshot) term = std::max(term, recovered->snapshot->term);
  Index next = Index(last.value() + 1);
  if (members.count(self) == 0) {
    internal::Member ctx = self_record;
    ctx.set_id(self.value());
    ctx.clear_name();
    kept.push_back(
        ConfChangeEntry(raft::ConfChangeType::kAddNode, self, ctx.SerializeAsString(), term, next));
    plan.appended.push_back(kept.back());
    plan.added_self = true;
    next = Index(next.value() + 1);
  }
  for (MemberId id : members) {
    if (id == self) continue;
    kept.push_back(ConfChangeEntry(raft::ConfChangeType::kRemoveNode, id, "", term, next));
    plan.appended.push_back(kept.back());
    plan.removed.push_back(id);
    next = Index(next.value() + 1);
  }
  plan.commit = kept.empty() ? snapshot_index : kept.back().index;
  recovered->entries = std::move(kept);
  recovered->hard_state.term = term;
  recovered->hard_state.commit = plan.commit;
  return plan;
}

}  // namespace dolmen::server
