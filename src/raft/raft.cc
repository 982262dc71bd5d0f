#include "raft/raft.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "raft/index_math.h"

namespace dolmen::raft {

namespace {

// Marks vote requests of a leader transfer: they may disrupt a leader lease (thesis §3.10).
constexpr std::string_view kTransferContext = "transfer";

MessageType VoteResponseType(MessageType request) {
  return request == MessageType::kPreVote ? MessageType::kPreVoteResp : MessageType::kVoteResp;
}

uint64_t PayloadBytes(const std::vector<Entry>& entries) {
  uint64_t n = 0;
  for (const Entry& e : entries) n += e.data.size();
  return n;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

Raft::Raft(const Config& config)
    : id_(config.id),
      log_(config.storage, config.max_committed_size_per_ready_bytes),
      tracker_(config.max_inflight_msgs, config.max_inflight_bytes),
      reads_(config.max_pending_read_index),
      election_timeout_(config.election_ticks),
      heartbeat_timeout_(config.heartbeat_ticks),
      randomized_election_timeout_(config.election_ticks),
      config_(config),
      random_(config.random_seed ^ (config.id.value() * 0x9E3779B97F4A7C15ull)) {
  auto initial = config.storage->GetInitialState();
  CHECK(initial.ok()) << "raft storage initial state: " << initial.status().ToString();
  tracker_.Reset(initial->conf_state, log_.LastIndex() + 1);
  const HardState& hs = initial->hard_state;
  if (!hs.IsEmpty()) {
    CHECK_LE(hs.commit.value(), log_.LastIndex().value()) << "persisted commit beyond the log";
    log_.CommitTo(hs.commit);
    term_ = hs.term;
    vote_ = hs.vote;
  }
  if (config.applied.value() > 0) log_.AppliedTo(config.applied);
  BecomeFollower(term_, kNoMember);
}

bool Raft::Promotable() const {
  return tracker_.IsVoter(id_) && !log_.UnstableSnapshot().has_value();
}

HardState Raft::GetHardState() const { return HardState{term_, vote_, log_.committed()}; }

std::vector<Message> Raft::TakeMessages() {
  std::vector<Message> out = std::move(msgs_);
  msgs_.clear();
  return out;
}

std::vector<ReadState> Raft::TakeReadStates() {
  std::vector<ReadState> out = std::move(read_states_);
  read_states_.clear();
  return out;
}

void Raft::ReduceUncommittedSize(const std::vector<Entry>& committed) {
  if (role_ != Role::kLeader) return;
  const uint64_t n = PayloadBytes(committed);
  // The counter is an estimate (a new term resets it), so it saturates at zero.
  uncommitted_size_ = n > uncommitted_size_ ? 0 : uncommitted_size_ - n;
}

void Raft::AppliedTo(Index index) {
  log_.AppliedTo(index);
  MaybeLeaveJoint();
}

void Raft::MaybeLeaveJoint() {
  // Joint consensus, second step: once the joint configuration is applied here, the leader
  // proposes the final one by itself (unless the application asked to do it).
  if (role_ != Role::kLeader || !tracker_.IsJoint() || !tracker_.auto_leave()) return;
  if (log_.applied() < pending_conf_index_) return;
  Entry leave{Term(), Index(), EntryType::kConfChange, EncodeConfChangeV2(ConfChangeV2{})};
  if (!AppendEntries({std::move(leave)}).ok()) return;  // full: retried at the next apply
  pending_conf_index_ = log_.LastIndex();
  BroadcastAppend();
}

void Raft::Send(Message m) {
  m.from = id_;
  const bool vote_related = m.type == MessageType::kVote || m.type == MessageType::kPreVote ||
                            m.type == MessageType::kVoteResp || m.type == MessageType::kPreVoteResp;
  if (vote_related) {
    // Vote messages carry the term being campaigned for, which is not always ours.
    CHECK_NE(m.term.value(), 0u) << "vote message without a term";
  } else if (m.type != MessageType::kProp && m.type != MessageType::kReadIndex) {
    // Proposals and reads are forwarded to whoever leads, whatever its term.
    m.term = term_;
  }
  // msgs_ is drained by every Ready; per step it grows by at most one message per peer times
  // the inflight window.
  msgs_.push_back(std::move(m));
}

// ---- Role transitions ----

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoMember;
  }
  lead_ = kNoMember;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  tracker_.ResetVotes();
  for (auto& [id, pr] : tracker_.progress()) {
    pr.ResetTo(log_.LastIndex() + 1);
    if (id == id_) pr.match = log_.LastIndex();
  }
  pending_conf_index_ = Index(0);
  uncommitted_size_ = 0;
  reads_.Reset();
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_timeout_ +
      static_cast<int>(random_.Uniform(static_cast<uint64_t>(election_timeout_)));
}

void Raft::BecomeFollower(Term term, MemberId lead) {
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Raft::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "a leader cannot become pre-candidate";
  // §9.6: no term change and no vote, so a pre-election that fails leaves no trace.
  tracker_.ResetVotes();
  lead_ = kNoMember;
  role_ = Role::kPreCandidate;
}

void Raft::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "a leader cannot become candidate";
  Reset(Term(term_.value() + 1));
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  CHECK(role_ != Role::kFollower) << "a follower cannot become leader directly";
  Reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  if (Progress* self = tracker_.Get(id_)) {
    self->BecomeReplicate();
    self->recent_active = true;
    // Only what we have persisted counts towards the quorum (see AppendEntries).
    self->MaybeUpdate(log_.PersistedLastIndex());
  }
  // An empty entry of the new term: once it commits, everything before it is committed too
  // (§5.4.2 forbids counting replicas of older entries), and ReadIndex may be served (§6.4).
  Status s = AppendEntries({Entry{}});
  CHECK(s.ok()) << "appending the leader's empty entry: " << s.ToString();
  // No conf change until this entry is applied: earlier entries may hold an unapplied change,
  // and a leader must commit an entry of its own term before changing the configuration, or
  // two single-member changes from different terms could yield disjoint majorities (the bug
  // in the original single-server change algorithm, Ongaro, raft-dev 2015).
  pending_conf_index_ = log_.LastIndex();
}

// ---- Step ----

Status Raft::Step(const Message& m) {
  if (!StepTermCheck(m)) return OkStatus();
  switch (m.type) {
    case MessageType::kHup:
      Hup(config_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
      return OkStatus();
    case MessageType::kVote:
    case MessageType::kPreVote:
      StepVoteRequest(m);
      return OkStatus();
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader:
      return StepLeader(m);
    case Role::kPreCandidate:
    case Role::kCandidate:
      return StepCandidate(m);
    case Role::kFollower:
      return StepFollower(m);
  }
  return OkStatus();
}

bool Raft::StepTermCheck(const Message& m) {
  if (m.term.value() == 0) return true;  // local, or a forwarded proposal or read
  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      const bool forced = m.context == kTransferContext;
      // Thesis §4.2.3: while we hear from a leader, a vote request is a disruption (e.g. a
      // removed or partitioned node), not a sign the leader is gone.
      const bool in_lease =
          config_.check_quorum && lead_ != kNoMember && election_elapsed_ < election_timeout_;
      if (!forced && in_lease) return false;
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote asks about a future term; answering it changes nothing here (§9.6).
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // A granted pre-vote carries the term we will campaign for; we move to it only when a
      // quorum grants.
    } else if (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnap) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoMember);
    }
    return true;
  }
  if (m.term < term_) {
    if (m.type == MessageType::kHeartbeat || m.type == MessageType::kApp) {
      // §5.1: answer with our term, so a stale leader (e.g. back from a partition) learns it
      // was deposed. Otherwise it may never learn: with pre-vote or check-quorum our vote
      // requests cannot depose it, and a member that does not yet know it is a voter (it has
      // not caught up on the configuration) never sends any.
      Message resp;
      resp.type = MessageType::kAppResp;
      resp.to = m.from;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
      // §5.1: reject with our term, so the candidate catches up at once. Ignoring it instead
      // lets a candidate trail a node that keeps campaigning (e.g. one that has not learnt
      // the current configuration and cannot win) through a long random walk of terms.
      Message resp;
      resp.type = VoteResponseType(m.type);
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    return false;
  }
  return true;
}

void Raft::StepVoteRequest(const Message& m) {
  // §5.2: one vote per term, first come first served; a repeated request gets the same answer.
  // A pre-vote for a later term binds nothing, so it only needs the log check.
  const bool can_vote = vote_ == m.from || (vote_ == kNoMember && lead_ == kNoMember) ||
                        (m.type == MessageType::kPreVote && m.term > term_);
  Message resp;
  resp.type = VoteResponseType(m.type);
  resp.to = m.from;
  // §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
  if (can_vote && log_.IsUpToDate(m.index, m.log_term)) {
    resp.term = m.term;
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  Send(std::move(resp));
}

// ---- Elections ----

bool Raft::HasUnappliedConfChanges() const {
  if (log_.committed() <= log_.applied()) return false;
  const Index lo = std::max(log_.applied() + 1, log_.FirstIndex());
  auto entries = log_.Slice(lo, log_.committed() + 1, std::numeric_limits<uint64_t>::max());
  if (!entries.ok()) return false;
  return std::any_of(entries->begin(), entries->end(),
                     [](const Entry& e) { return e.type == EntryType::kConfChange; });
}

void Raft::Hup(CampaignType type) {
  if (role_ == Role::kLeader) return;
  if (!Promotable()) return;
  // A committed conf change we have not applied may change whether we are a voter at all.
  if (HasUnappliedConfChanges()) return;
  Campaign(type);
}

void Raft::Campaign(CampaignType type) {
  MessageType request;
  Term vote_term;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    request = MessageType::kPreVote;
    vote_term = Term(term_.value() + 1);
  } else {
    BecomeCandidate();
    request = MessageType::kVote;
    vote_term = term_;
  }
  // Our own vote may already be a majority (a single voter).
  if (Poll(id_, true) == VoteResult::kWon) {
    if (type == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (const auto& [voter, pr] : tracker_.progress()) {
    if (voter == id_ || !tracker_.IsVoter(voter)) continue;
    Message m;
    m.type = request;
    m.to = voter;
    m.term = vote_term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (type == CampaignType::kTransfer) m.context = std::string(kTransferContext);
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(MemberId from, bool granted) {
  tracker_.RecordVote(from, granted);
  return tracker_.TallyVotes();
}

Status Raft::StepCandidate(const Message& m) {
  const MessageType my_response =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  switch (m.type) {
    case MessageType::kProp:
      return Status(Code::kNoLeader, "no leader: proposal dropped");
    case MessageType::kReadIndex:
      return Status(Code::kNoLeader, "no leader: read index dropped");
    case MessageType::kApp:
      // Someone won this term (§5.2).
      BecomeFollower(m.term, m.from);
      HandleAppendEntries(m);
      return OkStatus();
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return OkStatus();
    case MessageType::kSnap:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return OkStatus();
    case MessageType::kPreVoteResp:
    case MessageType::kVoteResp: {
      if (m.type != my_response) return OkStatus();  // a late answer to an earlier phase
      switch (Poll(m.from, !m.reject)) {
        case VoteResult::kWon:
          if (role_ == Role::kPreCandidate) {
            Campaign(CampaignType::kElection);
          } else {
            BecomeLeader();
            BroadcastAppend();
          }
          break;
        case VoteResult::kLost:
          BecomeFollower(term_, kNoMember);
          break;
        case VoteResult::kPending:
          break;
      }
      return OkStatus();
    }
    default:
      return OkStatus();
  }
}

Status Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kProp: {
      if (lead_ == kNoMember) return Status(Code::kNoLeader, "no leader: proposal dropped");
      if (config_.disable_proposal_forwarding) {
        return Status(Code::kNotLeader, "not the leader and forwarding is disabled");
      }
      Message fwd = m;
      fwd.to = lead_;
      Send(std::move(fwd));
      return OkStatus();
    }
    case MessageType::kApp:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppendEntries(m);
      return OkStatus();
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      return OkStatus();
    case MessageType::kSnap:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshot(m);
      return OkStatus();
    case MessageType::kTransferLeader: {
      if (lead_ == kNoMember) return Status(Code::kNoLeader, "no leader: transfer dropped");
      Message fwd = m;
      fwd.to = lead_;
      Send(std::move(fwd));
      return OkStatus();
    }
    case MessageType::kTimeoutNow:
      // The leader chose us (leader transfer): campaign at once, skipping pre-vote, with the
      // transfer context so that followers' leases do not refuse us.
      Hup(CampaignType::kTransfer);
      return OkStatus();
    case MessageType::kReadIndex: {
      if (lead_ == kNoMember) return Status(Code::kNoLeader, "no leader: read index dropped");
      Message fwd = m;
      fwd.to = lead_;
      Send(std::move(fwd));
      return OkStatus();
    }
    case MessageType::kReadIndexResp:
      read_states_.push_back(ReadState{m.index, m.context});
      return OkStatus();
    default:
      return OkStatus();
  }
}

// ---- Leader ----

Status Raft::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kBeat:
      BroadcastHeartbeat();
      return OkStatus();
    case MessageType::kCheckQuorum:
      // A leader that cannot reach a quorum steps down, so that clients go elsewhere and its
      // lease-based answers stop (thesis §6.2).
      if (!tracker_.QuorumActive(id_)) BecomeFollower(term_, kNoMember);
      for (auto& [id, pr] : tracker_.progress()) {
        if (id != id_) pr.recent_active = false;
      }
      return OkStatus();
    case MessageType::kProp:
      return Propose(m);
    case MessageType::kReadIndex:
      return HandleReadIndex(m);
    case MessageType::kTransferLeader:
      HandleTransferLeader(m);
      return OkStatus();
    default:
      break;
  }
  Progress* pr = tracker_.Get(m.from);
  if (pr == nullptr) return OkStatus();  // not (or no longer) a member
  switch (m.type) {
    case MessageType::kAppResp:
      HandleAppendResponse(m, pr);
      break;
    case MessageType::kHeartbeatResp:
      HandleHeartbeatResponse(m, pr);
      break;
    case MessageType::kSnapStatus:
      if (pr->state != ProgressState::kSnapshot) break;
      if (m.reject) pr->pending_snapshot = Index(0);
      pr->BecomeProbe();
      // Wait for a heartbeat response before probing: the follower may still be applying it.
      pr->probe_sent = true;
      break;
    case MessageType::kUnreachable:
      // Stop streaming optimistically into a link that drops messages.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      break;
    default:
      break;
  }
  return OkStatus();
}

Status Raft::ValidateConfChange(const ConfChangeV2& cc) const {
  ProgressTracker copy = tracker_;
  return copy.Apply(cc, Index(0));
}

Status Raft::Propose(const Message& m) {
  CHECK(!m.entries.empty()) << "empty proposal";
  if (!tracker_.IsMember(id_)) {
    return Status(Code::kNotLeader, "this leader was removed from the cluster; proposal dropped");
  }
  if (lead_transferee_ != kNoMember) {
    return Status(Code::kLeaderChanged, "leadership transfer in progress; proposal dropped");
  }
  std::vector<Entry> entries = m.entries;
  const bool local = m.from == id_ || m.from == kNoMember;
  for (size_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    if (e.type != EntryType::kConfChange) continue;
    Status refused;
    if (pending_conf_index_ > log_.applied()) {
      refused = Status(Code::kFailedPrecondition,
                       "a membership change is already in progress; try again when it is applied");
    } else if (auto cc = DecodeConfChangeV2(e.data); !cc.ok()) {
      refused = cc.status();
    } else {
      refused = ValidateConfChange(*cc);  // e.g. no new change while joint
    }
    if (!refused.ok()) {
      if (local) return refused;
      // A forwarded proposal cannot be answered; it becomes a no-op so that the log stays
      // one change at a time. The proposer sees the change never apply and retries.
      e = Entry{};
      continue;
    }
    pending_conf_index_ = log_.LastIndex() + (i + 1);
  }
  RETURN_IF_ERROR(AppendEntries(std::move(entries)));
  BroadcastAppend();
  return OkStatus();
}

Status Raft::AppendEntries(std::vector<Entry> entries) {
  const Index last = log_.LastIndex();
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].term = term_;
    entries[i].index = last + (i + 1);
  }
  const uint64_t bytes = PayloadBytes(entries);
  // The first proposal always fits, so that one entry larger than the bound can still commit.
  if (uncommitted_size_ > 0 && bytes > 0 &&
      uncommitted_size_ + bytes > config_.max_uncommitted_entries_bytes) {
    return Status(Code::kResourceExhausted,
                  "too many uncommitted bytes at the leader; proposal dropped");
  }
  uncommitted_size_ += bytes;
  log_.Append(entries);
  // Our own copy counts towards the quorum only once persisted (OnPersisted), so the leader
  // may send these entries to followers while it writes them itself (thesis section 10.2.1):
  // the quorum that commits an entry always holds it durably.
  return OkStatus();
}

void Raft::OnPersisted(Index last) {
  if (role_ != Role::kLeader) return;
  Progress* self = tracker_.Get(id_);
  if (self == nullptr || !self->MaybeUpdate(std::min(last, log_.PersistedLastIndex()))) return;
  // Followers learn the new commit index at once rather than at the next heartbeat.
  if (MaybeCommit()) BroadcastAppend();
}

bool Raft::MaybeCommit() {
  const bool had_current_term_commit = CommittedEntryInCurrentTerm();
  // §5.4.2: count replicas only for an entry of the current term; older entries commit with it.
  const bool committed = log_.MaybeCommit(tracker_.QuorumCommitted(), term_,
                                          config_.testing_unsafe_commit_previous_term);
  if (committed && !had_current_term_commit && CommittedEntryInCurrentTerm()) {
    // Reads waited for the first commit of the term: before it, our commit index may lag
    // behind what an earlier leader committed (thesis §6.4).
    MaybeStartReadRound();
  }
  return committed;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.ZeroTermOnError(log_.committed()) == term_;
}

bool Raft::MaybeSendAppend(MemberId to, bool send_if_empty) {
  Progress* pr = tracker_.Get(to);
  CHECK(pr != nullptr) << "sending to unknown member " << to;
  if (pr->IsPaused()) return false;
  const Index prev = pr->next - 1;
  auto prev_term = log_.TermAt(prev);
  auto entries = log_.EntriesFrom(pr->next, config_.max_size_per_msg_bytes);
  // What the follower needs next is compacted away: only a snapshot can catch it up.
  if (!prev_term.ok() || !entries.ok()) return SendSnapshot(to, pr);
  if (entries->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kApp;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  if (!entries->empty()) {
    uint64_t bytes = 0;
    for (const Entry& e : *entries) bytes += EntrySizeBytes(e);
    pr->SentEntries(entries->size(), entries->back().index, bytes);
  }
  m.entries = std::move(*entries);
  pr->sent_commit = std::max(pr->sent_commit, m.commit);
  Send(std::move(m));
  return true;
}

bool Raft::SendSnapshot(MemberId to, Progress* pr) {
  // A snapshot is expensive; send it only to a follower that is answering.
  if (!pr->recent_active) return false;
  auto snapshot = log_.GetSnapshot();
  if (!snapshot.ok()) {
    CHECK(snapshot.status().code() == Code::kUnavailable)
        << "storage snapshot: " << snapshot.status().ToString();
    return false;  // being produced; a later heartbeat response retries
  }
  CHECK(!snapshot->IsEmpty()) << "the log is compacted but there is no snapshot";
  pr->BecomeSnapshot(snapshot->metadata.index);
  Message m;
  m.type = MessageType::kSnap;
  m.to = to;
  m.snapshot = std::move(*snapshot);
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(MemberId to, const std::string& context) {
  Progress* pr = tracker_.Get(to);
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // The follower may not hold our log past match yet; committing beyond its log would be wrong.
  m.commit = std::min(pr->match, log_.committed());
  pr->sent_commit = std::max(pr->sent_commit, m.commit);
  m.context = context;
  Send(std::move(m));
}

void Raft::BroadcastAppend() {
  for (auto& [id, pr] : tracker_.progress()) {
    if (id != id_) MaybeSendAppend(id, true);
  }
}

void Raft::BroadcastHeartbeat() {
  const std::string context = reads_.RoundContext();
  for (auto& [id, pr] : tracker_.progress()) {
    if (id != id_) SendHeartbeat(id, context);
  }
}

void Raft::HandleAppendResponse(const Message& m, Progress* pr) {
  pr->recent_active = true;
  if (m.reject) {
    // Fast backtracking: the follower told us its term at reject_hint; skip every index where
    // our log certainly differs from its log (thesis §5.3 optimisation).
    Index next_probe = m.reject_hint;
    if (m.log_term.value() > 0)
      next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
    if (pr->MaybeDecreaseTo(m.index, next_probe)) {
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      MaybeSendAppend(m.from, true);
    }
    return;
  }
  const bool updated = pr->MaybeUpdate(m.index);
  if (!updated && !(pr->match == m.index && pr->state == ProgressState::kProbe)) return;
  switch (pr->state) {
    case ProgressState::kProbe:
      pr->BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      // The follower caught up past our compaction point (from the snapshot or otherwise).
      if (pr->match + 1 >= log_.FirstIndex()) {
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr->inflights.FreeLE(m.index);
      break;
  }
  if (MaybeCommit()) {
    // Followers learn the new commit index from the next append.
    BroadcastAppend();
  }
  // Fill the window opened by this acknowledgement.
  bool sent = false;
  while (MaybeSendAppend(m.from, false)) sent = true;
  // Nothing new to send, but the follower has not heard the latest commit index (its window
  // was full when the commit advanced): tell it now rather than at the next heartbeat.
  if (!sent && pr->sent_commit < log_.committed()) MaybeSendAppend(m.from, true);
  if (m.from == lead_transferee_ && pr->match == log_.LastIndex()) SendTimeoutNow(m.from);
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress* pr) {
  pr->recent_active = true;
  pr->probe_sent = false;
  if (pr->state == ProgressState::kReplicate && pr->inflights.Full()) pr->inflights.FreeFirstOne();
  if (pr->match < log_.LastIndex()) MaybeSendAppend(m.from, true);
  if (config_.read_only_option != ReadOnlyOption::kSafe || m.context.empty()) return;
  if (const std::set<MemberId>* acks = reads_.Ack(m.from, m.context)) MaybeFinishReadRound(*acks);
}

void Raft::HandleTransferLeader(const Message& m) {
  const MemberId target = m.transferee;
  const Progress* pr = tracker_.Get(target);
  if (pr == nullptr || pr->is_learner) return;
  if (lead_transferee_ != kNoMember) {
    if (lead_transferee_ == target) return;  // already in progress
    AbortLeaderTransfer();
  }
  if (target == id_) return;
  // The transfer must finish within one election timeout, or it is abandoned (Tick).
  election_elapsed_ = 0;
  lead_transferee_ = target;
  // Thesis §3.10: bring the target up to date, then tell it to campaign.
  if (pr->match == log_.LastIndex()) {
    SendTimeoutNow(target);
  } else {
    MaybeSendAppend(target, true);
  }
}

void Raft::SendTimeoutNow(MemberId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

// ---- Reads ----

Status Raft::HandleReadIndex(const Message& m) {
  if (config_.read_only_option == ReadOnlyOption::kLeaseBased && CommittedEntryInCurrentTerm()) {
    // CheckQuorum keeps this leader's lease: no other leader can exist before it steps down.
    RespondToRead(ReadRequest{m.from, m.context}, log_.committed());
    return OkStatus();
  }
  RETURN_IF_ERROR(reads_.Add(ReadRequest{m.from, m.context}));
  MaybeStartReadRound();
  return OkStatus();
}

void Raft::MaybeStartReadRound() {
  if (role_ != Role::kLeader || reads_.RoundInFlight() || !reads_.HasPending()) return;
  if (!CommittedEntryInCurrentTerm()) return;  // started again on the term's first commit
  reads_.StartRound(log_.committed());
  MaybeFinishReadRound({});  // a single voter needs no acknowledgement
  if (reads_.RoundInFlight()) BroadcastHeartbeat();
}

void Raft::MaybeFinishReadRound(const std::set<MemberId>& acks) {
  const bool confirmed =
      tracker_.HasQuorum([&](MemberId id) { return id == id_ || acks.count(id) > 0; });
  if (!confirmed) return;
  auto [index, reads] = reads_.FinishRound();
  for (const ReadRequest& r : reads) RespondToRead(r, index);
  MaybeStartReadRound();
}

void Raft::RespondToRead(const ReadRequest& request, Index index) {
  if (request.from == id_ || request.from == kNoMember) {
    read_states_.push_back(ReadState{index, request.context});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResp;
  m.to = request.from;
  m.index = index;
  m.context = request.context;
  Send(std::move(m));
}

// ---- Follower ----

void Raft::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index matches the leader (Log Matching); say so.
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  if (auto last_new = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries)) {
    resp.index = *last_new;
    Send(std::move(resp));
    return;
  }
  // §5.3: reject, with a hint: the largest index at or before m.index whose term is at most
  // m.log_term. The leader skips straight past everything that cannot match.
  auto [hint_index, hint_term] =
      log_.FindConflictByTerm(std::min(m.index, log_.LastIndex()), m.log_term);
  resp.index = m.index;
  resp.reject = true;
  resp.reject_hint = hint_index;
  resp.log_term = hint_term;
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(m.commit);
  Message resp;
  resp.type = MessageType::kHeartbeatResp;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  if (m.snapshot && Restore(*m.snapshot)) {
    resp.index = log_.LastIndex();
  } else {
    resp.index = log_.committed();
  }
  Send(std::move(resp));
}

bool Raft::Restore(const Snapshot& s) {
  if (s.metadata.index <= log_.committed()) return false;
  CHECK(role_ == Role::kFollower) << "restoring a snapshot as " << RoleName(role_);
  if (log_.MatchTerm(s.metadata.index, s.metadata.term)) {
    // We already hold the snapshot's last entry, hence (Log Matching) everything before it:
    // just learn that it is committed.
    log_.CommitTo(s.metadata.index);
    return false;
  }
  log_.Restore(s);
  tracker_.Reset(s.metadata.conf_state, log_.LastIndex() + 1);
  return true;
}

// ---- Configuration ----

ConfState Raft::ApplyConfChange(const ConfChangeV2& cc) {
  // Every node applies the same committed entries in order, so a change that is invalid here is
  // invalid everywhere and is skipped everywhere.
  Status s = tracker_.Apply(cc, log_.LastIndex() + 1);
  if (!s.ok()) return tracker_.GetConfState();
  if (role_ != Role::kLeader) return tracker_.GetConfState();
  if (!tracker_.IsVoter(id_)) {
    // Removed or demoted: a leader must be a voter. The others elect a new leader.
    BecomeFollower(term_, kNoMember);
    return tracker_.GetConfState();
  }
  if (lead_transferee_ != kNoMember && !tracker_.IsVoter(lead_transferee_)) AbortLeaderTransfer();
  // The quorum changed: something may now be committed. New members need the log.
  if (MaybeCommit()) {
    BroadcastAppend();
  } else {
    for (const ConfChangeSingle& c : cc.changes) {
      const Progress* pr = tracker_.Get(c.node_id);
      if (c.node_id != id_ && pr != nullptr && pr->match.value() == 0) {
        MaybeSendAppend(c.node_id, true);
      }
    }
  }
  return tracker_.GetConfState();
}

// ---- Time ----

void Raft::Tick() {
  if (role_ != Role::kLeader) {
    ++election_elapsed_;
    if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
      election_elapsed_ = 0;
      Message hup;
      hup.type = MessageType::kHup;
      hup.from = id_;
      Step(hup).IgnoreError();  // local messages never fail
    }
    return;
  }
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      Message check;
      check.type = MessageType::kCheckQuorum;
      check.from = id_;
      Step(check).IgnoreError();
    }
    if (role_ == Role::kLeader && lead_transferee_ != kNoMember) AbortLeaderTransfer();
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    Message beat;
    beat.type = MessageType::kBeat;
    beat.from = id_;
    Step(beat).IgnoreError();
  }
}

}  // namespace dolmen::raft
