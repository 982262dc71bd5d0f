// Apply: committed entries in log order, through the Applier (one MVCC revision per request) or,
// for conf changes, into Raft's configuration and the replicated membership; the callers who
// proposed them here are answered once the batch is visible to readers, and watchers hear of it
// after that. Entries at or below the backend's applied index were applied before a restart and
// are skipped (conf changes only rebuild Raft's configuration).
#include <algorithm>
#include <string>
#include <utility>

#include "dolmen/internal.pb.h"
#include "log/log.h"
#include "raft/conf_change.h"
#include "server/conf_change_rules.h"
#include "server/member_core.h"
#include "server/server_metrics.h"

namespace dolmen::server {

dolmen::Status MemberCore::ApplyCommitted(const std::vector<raft::Entry>& entries, TimePoint now) {
  if (entries.empty()) return OkStatus();
  metric::ApplyBatchEntries().Observe(static_cast<double>(entries.size()));
  const uint64_t consistent = deps_.store->ConsistentIndex().value();
  std::vector<mvcc::Event> events;
  std::vector<std::pair<ProposalDone, ApplyResult>> done;
  deps_.applier->set_event_sink(observers_.applied ? &events : nullptr);
  dolmen::Status status;
  uint64_t last = 0;
  for (const raft::Entry& e : entries) {
    last = e.index.value();
    if (e.type == raft::EntryType::kConfChange) {
      // Raft's configuration is rebuilt from the log at every start, so conf changes are
      // re-applied even below the backend's index; there the membership in the backend already
      // holds their effect and that of every later entry up to that index, so it is left alone.
      status = ApplyConfChange(e, /*in_backend=*/e.index.value() <= consistent);
    } else if (e.index.value() > consistent && !e.data.empty()) {
      const TimePoint started = deps_.stopwatch ? deps_.stopwatch->Now() : TimePoint();
      status = ApplyNormal(e, &done);
      if (deps_.stopwatch) {
        const auto took = deps_.stopwatch->Now() - started;
        metric::ApplySeconds().Observe(std::chrono::duration<double>(took).count());
        WarnIfSlowApply(e, took);
      }
    }
    if (!status.ok()) break;
  }
  deps_.applier->set_event_sink(nullptr);
  // A removal of this member ends the batch at its conf change: what came before it is
  // committed and answered, and the removal is reported after.
  const bool removed = status.code() == Code::kRemoved;
  if (status.ok() || removed) {
    // Answered now, committed to the backend later: every entry here is already in this
    // member's synced log, which keeps it until a checkpoint made the backend durable past it.
    // A removal ends the member, so what came before it is committed at once.
    dolmen::Status committed =
        checkpointer_.Applied(entries, last, consistent, now, /*commit_now=*/removed);
    if (!committed.ok()) status = committed;
  }
  if (!status.ok() && status.code() != Code::kRemoved) {
    // Nothing of this batch is acknowledged, but every caller hears so: a reply dropped here
    // would hold its RPC, and with it the gRPC server's shutdown, forever.
    const dolmen::Status stopped(Code::kStopped, "server stopped: " + status.ToString());
    for (auto& [d, result] : done) d(ApplyResult{stopped, {}});
    return status;
  }
  applied_.store(std::max(applied_.load(), last));
  for (auto& [d, result] : done) d(std::move(result));
  // Watchers hear of a batch only once readers can see it.
  if (observers_.applied && !events.empty()) {
    observers_.applied(std::move(events), deps_.store->CurrentRevision());
  }
  return status;  // OK, or this member's removal
}

void MemberCore::WarnIfSlowApply(const raft::Entry& e, std::chrono::nanoseconds took) const {
  if (took <= options_.warning_apply_duration) return;
  metric::SlowApplies().Inc();
  // etcd logs the whole request; values can be large or secret, so the kind and index do here.
  internal::InternalRequest request;
  std::string kind = "unknown";
  if (request.ParseFromString(e.data)) {
    const auto* oneof = request.GetDescriptor()->FindOneofByName("request");
    const auto* field = request.GetReflection()->GetOneofFieldDescriptor(request, oneof);
    if (field != nullptr) kind = field->name();
  }
  log::Warn("apply request took too long", {{"took", took},
                                            {"expected-duration", options_.warning_apply_duration},
                                            {"index", e.index.value()},
                                            {"request", kind}});
}

dolmen::Status MemberCore::ApplyNormal(const raft::Entry& e,
                                       std::vector<std::pair<ProposalDone, ApplyResult>>* done) {
  internal::InternalRequest request;
  if (!request.ParseFromString(e.data)) {
    return Corruption("committed entry " + std::to_string(e.index.value()) + " does not decode");
  }
  ApplyResult result;
  if (request.has_member_attributes() || request.has_member_update()) {
    ASSIGN_OR_RETURN(backend::WriteTxn * txn, deps_.store->BatchTxn());
    result.status = request.has_member_attributes()
                        ? deps_.membership->SetAttributes(request.member_attributes(), txn)
                        : deps_.membership->UpdatePeerUrls(request.member_update(), txn);
    if (!result.status.ok()) return result.status;
    LogMemberUpdate(request);
    if (deps_.peers) deps_.peers->SetPeers(deps_.membership->List());
  } else {
    result = deps_.applier->Apply(request, e.index);
    if (deps_.applier->storage_failed()) {
      return dolmen::Status(Code::kIoError, "the store failed applying index " +
                                                std::to_string(e.index.value()) + ": " +
                                                result.status.ToString());
    }
  }
  if (std::optional<ProposalDone> caller = waiters_.TakeApplied(request.id())) {
    done->emplace_back(std::move(*caller), std::move(result));
  }
  return OkStatus();
}

// Membership changes are logged where they are applied, once: entries replayed at start (already
// in the backend) are not logged again. Field names are etcd's (membership/cluster.go).
void MemberCore::LogMemberAdded(const internal::Member& member, Index index) {
  const std::vector<std::string> urls(member.peer_urls().begin(), member.peer_urls().end());
  log::Info("added member", {{"local-member-id", log::Hex(self_.value())},
                             {"added-peer-id", log::Hex(member.id())},
                             {"added-peer-peer-urls", urls},
                             {"added-peer-is-learner", member.is_learner()},
                             {"index", index.value()}});
}

void MemberCore::LogMemberUpdate(const internal::InternalRequest& request) {
  if (request.has_member_attributes()) {
    const auto& a = request.member_attributes();
    const std::vector<std::string> urls(a.client_urls().begin(), a.client_urls().end());
    log::Info("published member attributes", {{"local-member-id", log::Hex(self_.value())},
                                              {"member-id", log::Hex(a.id())},
                                              {"name", a.name()},
                                              {"client-urls", urls}});
    return;
  }
  const auto& u = request.member_update();
  const std::vector<std::string> urls(u.peer_urls().begin(), u.peer_urls().end());
  log::Info("updated member", {{"local-member-id", log::Hex(self_.value())},
                               {"updated-remote-peer-id", log::Hex(u.id())},
                               {"updated-remote-peer-urls", urls}});
}

dolmen::Status MemberCore::ApplyConfChange(const raft::Entry& e, bool in_backend) {
  ASSIGN_OR_RETURN(raft::ConfChange cc, raft::DecodeConfChange(e.data));
  if (in_backend) {
    // Replayed at start: only Raft's configuration was missing, except for a change refused
    // when it was applied. A member that was removed then is told so again, now.
    if (TookEffect(cc, *deps_.membership)) conf_state_ = node_->ApplyConfChange(cc);
    if (cc.type == raft::ConfChangeType::kRemoveNode && cc.node_id == self_) {
      return dolmen::Status(Code::kRemoved, "this member has been removed from the cluster");
    }
    return OkStatus();
  }
  internal::Member member;
  if (!cc.context.empty() && !member.ParseFromString(cc.context)) {
    return Corruption("conf change at index " + std::to_string(e.index.value()) +
                      " carries an unreadable member record");
  }
  member.set_id(cc.node_id.value());
  if (dolmen::Status refused =
          CheckLearnerAddAtApply(cc, member, *deps_.membership, options_.max_learners);
      !refused.ok()) {
    // Skipped by every member alike; Raft's configuration does not change either.
    log::Warn("membership change refused at apply", {{"local-member-id", log::Hex(self_.value())},
                                                     {"member-id", log::Hex(cc.node_id.value())},
                                                     {"index", e.index.value()},
                                                     {"reason", refused.message()}});
    if (std::optional<StatusDone> caller = waiters_.TakeAppliedConfChange(cc)) (*caller)(refused);
    return OkStatus();
  }
  conf_state_ = node_->ApplyConfChange(cc);
  ASSIGN_OR_RETURN(backend::WriteTxn * txn, deps_.store->BatchTxn());
  switch (cc.type) {
    case raft::ConfChangeType::kAddNode: {
      auto existing = deps_.membership->Get(cc.node_id);
      if (existing && existing->is_learner()) {
        RETURN_IF_ERROR(deps_.membership->Promote(cc.node_id, txn));
        log::Info("promote member", {{"local-member-id", log::Hex(self_.value())},
                                     {"promoted-member-id", log::Hex(cc.node_id.value())},
                                     {"index", e.index.value()}});
      } else {
        member.set_is_learner(false);
        RETURN_IF_ERROR(deps_.membership->Add(member, txn));
        LogMemberAdded(member, e.index);
      }
      break;
    }
    case raft::ConfChangeType::kAddLearner:
      member.set_is_learner(true);
      RETURN_IF_ERROR(deps_.membership->Add(member, txn));
      LogMemberAdded(member, e.index);
      break;
    case raft::ConfChangeType::kRemoveNode:
      RETURN_IF_ERROR(deps_.membership->Remove(cc.node_id, txn));
      log::Info("removed member", {{"local-member-id", log::Hex(self_.value())},
                                   {"removed-remote-peer-id", log::Hex(cc.node_id.value())},
                                   {"index", e.index.value()}});
      break;
  }
  if (deps_.peers) deps_.peers->SetPeers(deps_.membership->List());
  if (std::optional<StatusDone> caller = waiters_.TakeAppliedConfChange(cc)) (*caller)(OkStatus());
  if (cc.type == raft::ConfChangeType::kRemoveNode && cc.node_id == self_) {
    return dolmen::Status(Code::kRemoved, "this member has been removed from the cluster");
  }
  return OkStatus();
}

}  // namespace dolmen::server
