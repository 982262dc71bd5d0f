// The member core's turn: events in, Raft driven, callers answered. The Ready handling is in
// member_core_ready.cc, the apply of committed entries in member_core_apply.cc.
#include "server/member_core.h"

#include <utility>

#include "base/check.h"
#include "server/server_metrics.h"

namespace dolmen::server {

MemberCore::MemberCore(Deps deps, std::unique_ptr<raft::RawNode> node, MemberId self,
                       const DriverOptions& options)
    : deps_(std::move(deps)),
      node_(std::move(node)),
      self_(self),
      options_(options),
      waiters_(options),
      reads_(options, deps_.read_context_start),
      checkpointer_(Checkpointer::Deps{deps_.wal, deps_.store, deps_.storage, deps_.stopwatch},
                    options) {
  applied_.store(deps_.store->ConsistentIndex().value());
  auto initial = deps_.storage->GetInitialState();
  CHECK(initial.ok()) << initial.status().ToString();
  conf_state_ = initial->conf_state;
  term_.store(initial->hard_state.term.value());
  commit_.store(initial->hard_state.commit.value());
}

void MemberCore::Start(TimePoint now) {
  checkpointer_.Start(now);
  next_tick_ = now + options_.tick_interval;
  if (conf_state_.voters.size() == 1 && conf_state_.voters[0] == self_) {
    // Alone: no one to wait for, lead at once.
    (void)node_->Campaign();
  } else if (options_.initial_election_tick_advance) {
    // Like etcd's initial election tick advance: a restarted cluster elects a leader after
    // one tick rather than a whole election timeout.
    for (int i = 0; i + 1 < options_.election_ticks; ++i) node_->Tick();
  }
}

dolmen::Status MemberCore::Turn(InboxBatch events, TimePoint now) {
  Tick(now);
  TakeEvents(events, now);
  for (const SyncDone& d : events.synced) {
    if (d.status.ok() && persist_.snapshot) {
      // A snapshot from the leader is being written (its marker may be in the log already)
      // and is past anything applied here: it supersedes this checkpoint, whose older marker
      // would go back in the log.
      checkpointer_.SyncNotStarted();
      continue;
    }
    RETURN_IF_ERROR(checkpointer_.Finish(d.applied, d.status));
  }
  if (events.persisted) RETURN_IF_ERROR(Persisted(events.persisted->status, now));
  // Twice: a turn that elects a leader can propose what waited for one right away.
  for (int round = 0; round < 2; ++round) {
    ProposeAndIssue();
    RETURN_IF_ERROR(HandleReadies(now));
    if (!waiters_.has_waiting() && !reads_.has_unissued()) break;
  }
  waiters_.LeaderIs(leader());
  reads_.Release(applied_.load());
  // Tasks wait while a WAL write is outstanding: they see everything the member could do with
  // what it had when they were queued (a lone member's election, a proposal queued before
  // them), as TurnBarrier in test_support.h relies on. The driver performs each write right
  // after the turn, so there they run in that write's turn; in the simulator, after a stall.
  std::vector<Task> tasks = unpersisted_ ? std::vector<Task>{} : std::exchange(tasks_, {});
  // Tasks (hash and client snapshots) see a backend that holds every applied entry.
  dolmen::Status committed =
      tasks.empty() ? checkpointer_.MaybeCommitBatch(now) : checkpointer_.CommitBatch();
  if (!committed.ok()) {
    tasks_ = std::move(tasks);  // answered by FailAll
    return committed;
  }
  for (Task& t : tasks) t(OkStatus());
  const dolmen::Status why = WhyExpired();
  waiters_.Expire(now, why);
  reads_.Expire(now, why);
  metric::ProposalsPending().Set(static_cast<double>(waiters_.proposals()));
  ASSIGN_OR_RETURN(std::optional<uint64_t> sync,
                   checkpointer_.MaybeBegin(now, applied_.load(), conf_state_));
  if (sync) sync_request_ = sync;
  return OkStatus();
}

void MemberCore::Tick(TimePoint now) {
  if (now < next_tick_) return;
  node_->Tick();
  next_tick_ += options_.tick_interval;
  // After a long stall, do not replay every missed tick in a burst (that would start a
  // needless election); Raft only needs time to move forward.
  if (next_tick_ < now) next_tick_ = now + options_.tick_interval;
}

void MemberCore::TakeEvents(InboxBatch& events, TimePoint now) {
  for (const raft::Message& m : events.messages) {
    peer_contact_.Heard(m.from, now);
    (void)node_->Step(m);  // a stale or foreign message is Raft's to ignore
  }
  for (const PeerReport& r : events.reports) {
    if (r.kind == PeerReport::Kind::kUnreachable) {
      node_->ReportUnreachable(r.peer);
    } else {
      node_->ReportSnapshot(r.peer, r.kind == PeerReport::Kind::kSnapshotDone);
    }
  }
  for (MemberId t : events.transfers) node_->TransferLeader(t);
  for (Proposal& p : events.proposals) waiters_.Add(std::move(p));
  for (ConfProposal& c : events.conf_changes) waiters_.Add(std::move(c));
  for (Waiter& r : events.reads) reads_.Add(std::move(r));
  for (Task& t : events.tasks) tasks_.push_back(std::move(t));
}

void MemberCore::ProposeAndIssue() {
  waiters_.ProposeWaiting(*node_);
  (void)reads_.Issue(*node_);  // refused without a leader: the reads wait for the next turn
}

TimePoint MemberCore::NextWake() const {
  std::optional<TimePoint> commit = checkpointer_.CommitDue();
  return commit ? std::min(next_tick_, *commit) : next_tick_;
}

Backlog MemberCore::held() const {
  return Backlog{waiters_.proposals(), reads_.size(), waiters_.conf_changes()};
}

dolmen::Status MemberCore::WhyExpired() const {
  return leader_.load() == 0 ? dolmen::Status(Code::kNoLeader, "no leader")
                             : dolmen::Status(Code::kTimeout, "request timed out");
}

void MemberCore::FailAll(const dolmen::Status& s, InboxBatch rest) {
  std::vector<Task> tasks = std::exchange(tasks_, {});
  for (Task& t : rest.tasks) tasks.push_back(std::move(t));
  for (Task& t : tasks) t(s);
  for (Proposal& p : rest.proposals) p.done(ApplyResult{s, {}});
  for (ConfProposal& c : rest.conf_changes) c.done(s);
  for (Waiter& r : rest.reads) r.done(s);
  waiters_.FailAll(s);
  reads_.FailAll(s);
  metric::ProposalsPending().Set(0);
}

dolmen::Status MemberCore::CheckpointNow(TimePoint now,
                                         const std::function<dolmen::Status()>& sync) {
  ASSIGN_OR_RETURN(std::optional<uint64_t> applied,
                   checkpointer_.Begin(now, applied_.load(), conf_state_));
  if (!applied) return OkStatus();
  return checkpointer_.Finish(*applied, sync());
}

dolmen::Status MemberCore::CheckLearnerReady(MemberId learner) const {
  const raft::Raft& r = node_->raft();
  if (r.role() != raft::Role::kLeader) return dolmen::Status(Code::kNotLeader, "not leader");
  const raft::Progress* learner_pr = r.tracker().Get(learner);
  const raft::Progress* leader_pr = r.tracker().Get(self_);
  // etcd's rule: a learner is ready once it has matched 90% of the leader's log.
  if (learner_pr == nullptr || leader_pr == nullptr ||
      static_cast<double>(learner_pr->match.value()) <
          0.9 * static_cast<double>(leader_pr->match.value())) {
    return dolmen::Status(Code::kFailedPrecondition,
                          "can only promote a learner member which is in sync with leader");
  }
  return OkStatus();
}

void MemberCore::MoveLeader(MemberId transferee, Waiter done) {
  const raft::Raft& r = node_->raft();
  if (r.role() != raft::Role::kLeader) {
    return done.done(dolmen::Status(Code::kNotLeader, "not leader"));
  }
  if (!r.tracker().IsVoter(transferee)) {
    return done.done(dolmen::Status(Code::kFailedPrecondition, "bad leader transferee"));
  }
  if (transferee == self_) return done.done(OkStatus());
  node_->TransferLeader(transferee);
  waiters_.AddLeaderWait(transferee, std::move(done));
}

}  // namespace dolmen::server
