#include "raft/raw_node.h"

#include <utility>

namespace dolmen::raft {

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& config) {
  RETURN_IF_ERROR(config.Validate());
  auto initial = config.storage->GetInitialState();
  if (!initial.ok()) return initial.status();
  const Index committed = initial->hard_state.commit;
  if (committed > config.storage->LastIndex()) {
    return Corruption("raft: persisted commit index is beyond the persisted log");
  }
  if (config.applied.value() > 0 &&
      config.applied > std::max(committed, config.storage->FirstIndex() - 1)) {
    return InvalidArgument("raft: applied index is beyond the commit index");
  }
  return std::unique_ptr<RawNode>(new RawNode(config));
}

RawNode::RawNode(const Config& config) : raft_(std::make_unique<Raft>(config)) {
  prev_soft_state_ = CurrentSoftState();
  prev_hard_state_ = raft_->GetHardState();
}

void RawNode::Tick() { raft_->Tick(); }

Status RawNode::Campaign() {
  Message m;
  m.type = MessageType::kHup;
  m.from = raft_->id();
  return raft_->Step(m);
}

Status RawNode::Propose(std::string data) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_->id();
  m.entries.push_back(Entry{Term(), Index(), EntryType::kNormal, std::move(data)});
  return raft_->Step(m);
}

Status RawNode::ProposeBatch(std::vector<std::string> data) {
  if (data.empty()) return OkStatus();
  if (data.size() > kMaxEntriesPerProposal) {
    return InvalidArgument("raft: too many entries in one proposal");
  }
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_->id();
  m.entries.reserve(data.size());
  for (std::string& d : data) {
    m.entries.push_back(Entry{Term(), Index(), EntryType::kNormal, std::move(d)});
  }
  return raft_->Step(m);
}

Status RawNode::ProposeConfChange(const ConfChange& cc) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_->id();
  m.entries.push_back(Entry{Term(), Index(), EntryType::kConfChange, EncodeConfChange(cc)});
  return raft_->Step(m);
}

Status RawNode::ProposeConfChangeV2(const ConfChangeV2& cc) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_->id();
  m.entries.push_back(Entry{Term(), Index(), EntryType::kConfChange, EncodeConfChangeV2(cc)});
  return raft_->Step(m);
}

ConfState RawNode::ApplyConfChange(const ConfChange& cc) {
  return raft_->ApplyConfChange(ToV2(cc));
}

ConfState RawNode::ApplyConfChangeV2(const ConfChangeV2& cc) { return raft_->ApplyConfChange(cc); }

Status RawNode::Step(const Message& m) {
  if (IsLocalMessage(m.type)) return InvalidArgument("raft: local message type from a peer");
  // Responses from members we no longer know are stale; nothing can use them.
  if (IsResponseMessage(m.type) && !raft_->tracker().IsMember(m.from)) return OkStatus();
  return raft_->Step(m);
}

Status RawNode::ReadIndex(std::string context) {
  Message m;
  m.type = MessageType::kReadIndex;
  m.from = raft_->id();
  m.context = std::move(context);
  return raft_->Step(m);
}

void RawNode::TransferLeader(MemberId transferee) {
  Message m;
  m.type = MessageType::kTransferLeader;
  m.from = raft_->id();
  m.transferee = transferee;
  raft_->Step(m).IgnoreError();  // best effort: MoveLeader watches who leads afterwards
}

void RawNode::ReportUnreachable(MemberId id) {
  Message m;
  m.type = MessageType::kUnreachable;
  m.from = id;
  raft_->Step(m).IgnoreError();
}

void RawNode::ReportSnapshot(MemberId id, bool ok) {
  Message m;
  m.type = MessageType::kSnapStatus;
  m.from = id;
  m.reject = !ok;
  raft_->Step(m).IgnoreError();
}

bool RawNode::HasReady() const {
  if (ready_outstanding_) return false;
  if (CurrentSoftState() != prev_soft_state_) return true;
  const HardState hs = raft_->GetHardState();
  if (!hs.IsEmpty() && hs != prev_hard_state_) return true;
  const RaftLog& log = raft_->log();
  return !log.UnstableEntries().empty() || log.UnstableSnapshot().has_value() ||
         raft_->HasMessages() || raft_->HasReadStates() || log.HasNextCommittedEntries();
}

Ready RawNode::GetReady() {
  CHECK(!ready_outstanding_) << "GetReady called again before Advance";
  ready_outstanding_ = true;
  Ready rd;
  const SoftState ss = CurrentSoftState();
  if (ss != prev_soft_state_) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  const HardState hs = raft_->GetHardState();
  rd.send_before_persist = raft_->role() == Role::kLeader && hs.term == prev_hard_state_.term &&
                           hs.vote == prev_hard_state_.vote;
  if (!hs.IsEmpty() && hs != prev_hard_state_) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != prev_hard_state_.term || hs.vote != prev_hard_state_.vote;
    prev_hard_state_ = hs;
  }
  const RaftLog& log = raft_->log();
  rd.entries = log.UnstableEntries();
  rd.snapshot = log.UnstableSnapshot();
  rd.committed_entries = log.NextCommittedEntries();
  rd.messages = raft_->TakeMessages();
  rd.read_states = raft_->TakeReadStates();
  if (!rd.entries.empty() || rd.snapshot) rd.must_sync = true;
  return rd;
}

void RawNode::Advance(const Ready& rd) {
  CHECK(ready_outstanding_) << "Advance without GetReady";
  ready_outstanding_ = false;
  RaftLog& log = raft_->mutable_log();
  if (!rd.entries.empty()) {
    log.StableTo(rd.entries.back().index, rd.entries.back().term);
    raft_->OnPersisted(rd.entries.back().index);
  }
  if (rd.snapshot) {
    log.StableSnapshotTo(rd.snapshot->metadata.index);
    raft_->AppliedTo(rd.snapshot->metadata.index);
  }
  if (!rd.committed_entries.empty()) {
    raft_->AppliedTo(rd.committed_entries.back().index);
    raft_->ReduceUncommittedSize(rd.committed_entries);
  }
}

NodeStatus RawNode::GetStatus() const {
  NodeStatus s;
  s.id = raft_->id();
  s.hard_state = raft_->GetHardState();
  s.soft_state = CurrentSoftState();
  s.applied = raft_->log().applied();
  s.last_index = raft_->log().LastIndex();
  s.lead_transferee = raft_->lead_transferee();
  if (raft_->role() == Role::kLeader) {
    for (const auto& [id, pr] : raft_->tracker().progress()) s.progress[id] = pr.DebugString();
  }
  return s;
}

}  // namespace dolmen::raft
