// The ready loop: one raft::Ready handled in the order the Ready contract requires (docs/raft.md,
// raw_node.h), split at its WAL write, which the shell performs (PersistRequest) and reports
// as a WalPersisted event: the leader's own appends sent before the write, so followers write
// in parallel (Raft counts the leader's copy only once Advance says it is persisted; thesis
// section 10.2.1); everything else after it: messages that promise durable state (votes,
// acknowledgements), the snapshot installed, confirmed read indexes handed to the read barrier,
// committed entries applied in log order, and Advance.
#include <string>
#include <utility>

#include "base/check.h"
#include "log/log.h"
#include "server/member_core.h"
#include "server/server_metrics.h"

namespace dolmen::server {

dolmen::Status MemberCore::HandleReadies(TimePoint now) {
  // RawNode offers no Ready between GetReady and Advance, so the loop also stops there.
  while (!unpersisted_ && node_->HasReady()) RETURN_IF_ERROR(StartReady(now));
  return OkStatus();
}

dolmen::Status MemberCore::StartReady(TimePoint now) {
  raft::Ready rd = node_->GetReady();
  const bool has_snapshot = rd.snapshot && !rd.snapshot->IsEmpty();
  if (has_snapshot && !deps_.install_snapshot) {
    return Unimplemented("this member cannot install a snapshot from the leader (index " +
                         std::to_string(rd.snapshot->metadata.index.value()) + ")");
  }
  if (rd.send_before_persist) SendMessages(std::exchange(rd.messages, {}));
  if (!has_snapshot && rd.entries.empty() && !rd.hard_state) {
    return FinishReady(std::move(rd), now);  // nothing to write
  }
  persist_ = PersistRequest{};
  if (has_snapshot) persist_.snapshot = rd.snapshot->metadata;
  persist_.entries = std::move(rd.entries);  // back into the Ready once written (Persisted)
  persist_.hard_state = rd.hard_state;
  persist_.sync = rd.must_sync;
  persist_taken_ = false;
  unpersisted_ = std::move(rd);
  return OkStatus();
}

const PersistRequest* MemberCore::TakePersistRequest() {
  if (!unpersisted_ || persist_taken_) return nullptr;
  persist_taken_ = true;
  return &persist_;
}

dolmen::Status MemberCore::Persisted(const dolmen::Status& status, TimePoint now) {
  CHECK(unpersisted_) << "a WalPersisted event with no WAL write outstanding";
  // A failed write or fdatasync leaves the durable state unknown: the member stops (the Wal
  // refuses every later call too) and nothing that depended on the write happens.
  if (!status.ok()) return status;
  raft::Ready rd = std::move(*unpersisted_);
  unpersisted_.reset();
  rd.entries = std::move(persist_.entries);
  persist_ = PersistRequest{};
  return FinishReady(std::move(rd), now);
}

dolmen::Status MemberCore::FinishReady(raft::Ready rd, TimePoint now) {
  const bool has_snapshot = rd.snapshot && !rd.snapshot->IsEmpty();
  if (has_snapshot) RETURN_IF_ERROR(deps_.storage->ApplySnapshot(*rd.snapshot));
  RETURN_IF_ERROR(MirrorPersisted(rd));
  // Published once durable, with Raft's storage: a reader of commit_index() finds the entries
  // up to it there, never the older ones a pending write is about to replace, and a new
  // leader's term() is the one it was elected in.
  if (rd.soft_state) NoteSoftState(*rd.soft_state);
  if (rd.hard_state) {
    term_.store(rd.hard_state->term.value());
    commit_.store(rd.hard_state->commit.value());
  }
  SendMessages(std::move(rd.messages));  // empty if they left before the write
  if (has_snapshot) RETURN_IF_ERROR(ApplySnapshot(*rd.snapshot, now));
  reads_.Confirmed(rd.read_states);
  RETURN_IF_ERROR(ApplyCommitted(rd.committed_entries, now));
  node_->Advance(rd);
  // Raft refuses to campaign while a conf change is unapplied, so the lone voter's election
  // waits until after Advance.
  if (conf_state_.voters.size() == 1 && conf_state_.voters[0] == self_ && leader_.load() == 0) {
    (void)node_->Campaign();
  }
  return OkStatus();
}

// Raft's storage mirrors the WAL, and only what the WAL holds durably: it is updated once the
// write completed and before Advance, which drops the entries from Raft's unstable log, after
// which Raft reads them from here (to send them to followers, to apply them). Updated before
// the write, a checkpoint's compaction or a snapshot for a follower could rest on entries a
// crash then loses.
dolmen::Status MemberCore::MirrorPersisted(const raft::Ready& rd) {
  if (!rd.entries.empty()) RETURN_IF_ERROR(deps_.storage->Append(rd.entries));
  if (rd.hard_state) deps_.storage->SetHardState(*rd.hard_state);
  return OkStatus();
}

void MemberCore::NoteSoftState(const raft::SoftState& soft) {
  LogSoftState(soft);
  if (soft.lead.value() == leader_.load()) return;
  leader_.store(soft.lead.value());
  if (observers_.leader) observers_.leader(soft.lead);
  // A read index asked of the old leader may never be answered: fail those reads now with
  // etcd's "leader changed" (the client retries) instead of at their deadline. Reads that
  // already hold a read index stay valid. As etcd, only a new leader (not its loss) counts.
  if (soft.lead.value() != 0) {
    metric::LeaderChanges().Inc();
    reads_.LeaderChanged(soft.lead);
  }
}

// As etcd's raft logs them ("became leader at term 2", "raft.node: ... elected leader ...",
// "changed leader from ... to ...", "lost leader ..."), once per change, with the term.
void MemberCore::LogSoftState(const raft::SoftState& now) {
  const raft::SoftState before = logged_soft_state_;
  logged_soft_state_ = now;
  const uint64_t term = node_->raft().term().value();
  const std::string self = log::Hex(self_.value());
  if (now.role != before.role) {
    if (now.role == raft::Role::kLeader) {
      log::Info("became leader", {{"local-member-id", self}, {"term", term}});
    } else {
      log::Debug("changed role", {{"local-member-id", self},
                                  {"from", raft::RoleName(before.role)},
                                  {"to", raft::RoleName(now.role)},
                                  {"term", term}});
    }
  }
  // This member winning is "became leader" above: one line per change.
  if (now.lead == before.lead || now.lead == self_) return;
  if (now.lead.value() == 0) {
    log::Info("lost leader", {{"local-member-id", self},
                              {"lost-leader-id", log::Hex(before.lead.value())},
                              {"term", term}});
  } else if (before.lead.value() == 0) {
    log::Info(
        "elected leader",
        {{"local-member-id", self}, {"leader-id", log::Hex(now.lead.value())}, {"term", term}});
  } else {
    log::Info("changed leader", {{"local-member-id", self},
                                 {"from", log::Hex(before.lead.value())},
                                 {"to", log::Hex(now.lead.value())},
                                 {"term", term}});
  }
}

dolmen::Status MemberCore::ApplySnapshot(const raft::Snapshot& snapshot, TimePoint now) {
  const raft::SnapshotMetadata& meta = snapshot.metadata;
  // Installing replaces the backend's contents in one txn: nothing may be left uncommitted.
  RETURN_IF_ERROR(checkpointer_.CommitBatch());
  RETURN_IF_ERROR(deps_.install_snapshot(meta));
  conf_state_ = meta.conf_state;
  applied_.store(std::max(applied_.load(), meta.index.value()));
  checkpointer_.SnapshotInstalled(meta.index.value(), now);
  // The installed backend is synced and holds everything up to the snapshot.
  if (dolmen::Status s = deps_.wal->ReleaseTo(Index(meta.index.value() + 1)); !s.ok()) {
    log::Warn("releasing the log below the snapshot failed",
              {{"snapshot-index", meta.index.value()}, {"error", s.ToString()}});
  }
  if (deps_.peers) deps_.peers->SetPeers(deps_.membership->List());
  if (observers_.restored) observers_.restored(deps_.store->CurrentRevision());
  return OkStatus();
}

void MemberCore::SendMessages(std::vector<raft::Message> messages) {
  if (messages.empty() || deps_.peers == nullptr) return;
  std::vector<raft::Message> normal;
  normal.reserve(messages.size());
  for (raft::Message& m : messages) {
    if (m.type == raft::MessageType::kSnap) {
      deps_.peers->SendSnapshot(std::move(m));
    } else {
      normal.push_back(std::move(m));
    }
  }
  if (!normal.empty()) deps_.peers->Send(std::move(normal));
}

}  // namespace dolmen::server
