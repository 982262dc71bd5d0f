#include "server/driver.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "dolmen/internal.pb.h"
#include "log/log.h"
#include "raft/conf_change.h"
#include "server/conf_change_rules.h"
#include "server/server_metrics.h"

namespace dolmen::server {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

dolmen::Status TooManyRequests() {
  return dolmen::Status(Code::kTooManyRequests, "too many requests");
}

bool SameChange(const raft::ConfChange& a, const raft::ConfChange& b) {
  return a.type == b.type && a.node_id == b.node_id;
}

}  // namespace

Driver::Driver(Deps deps, std::unique_ptr<raft::RawNode> node, MemberId self, DriverOptions options,
               FatalHandler on_fatal)
    : deps_(deps),
      clock_(deps.clock != nullptr ? deps.clock : &system_clock_),
      node_(std::move(node)),
      self_(self),
      options_(options),
      on_fatal_(std::move(on_fatal)),
      syncer_(std::make_unique<ReadPool>(/*threads=*/1, /*max_queued=*/1)) {
  applied_.store(deps_.store->ConsistentIndex().value());
  auto initial = deps_.storage->GetInitialState();
  CHECK(initial.ok()) << initial.status().ToString();
  conf_state_ = initial->conf_state;
  term_.store(initial->hard_state.term.value());
  commit_.store(initial->hard_state.commit.value());
}

Driver::~Driver() { Stop(); }

void Driver::Start() {
  CHECK(!thread_.joinable());
  last_checkpoint_ = Now();
  next_tick_ = Now() + options_.tick_interval;
  if (conf_state_.voters.size() == 1 && conf_state_.voters[0] == self_) {
    // Alone: no one to wait for, lead at once.
    (void)node_->Campaign();
  } else if (options_.initial_election_tick_advance) {
    // Like etcd's initial election tick advance: a restarted cluster elects a leader after
    // one tick rather than a whole election timeout.
    for (int i = 0; i + 1 < options_.election_ticks; ++i) node_->Tick();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Driver::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.SignalAll();
  const bool ran = thread_.joinable();
  if (ran) thread_.join();
  syncer_->Stop();  // a sync in flight ends; its SyncDone is dropped (Checkpoint below redoes it)
  FailEverything(dolmen::Status(Code::kStopped, "server stopped"));
  // A clean stop ends with a checkpoint, so the next start replays no log (a member restarted
  // after a stop is back in tens of milliseconds instead of re-reading the log since the last
  // periodic checkpoint). The owner thread has exited: its state is ours now.
  if (ran && !failed_.load() && options_.checkpoint_at_stop) {
    Checkpoint().IgnoreError();  // logged; the next start replays the log instead
  }
}

void Driver::Propose(uint64_t id, std::string data, Done done) {
  Propose(id, std::move(data), std::move(done), options_.request_timeout);
}

void Driver::Propose(uint64_t id, std::string data, Done done, std::chrono::milliseconds timeout) {
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (stopping_ || failed_.load()) {
      lock.Release();
      done(ApplyResult{dolmen::Status(Code::kStopped, "server stopped"), {}});
      return;
    }
    if (inbox_.proposals.size() + held_proposals_.load() >= options_.max_pending) {
      lock.Release();
      done(ApplyResult{TooManyRequests(), {}});
      return;
    }
    inbox_.proposals.push_back(Proposal{id, std::move(data), std::move(done), Now() + timeout});
  }
  cv_.Signal();
}

void Driver::ProposeConfChange(raft::ConfChange cc, std::function<void(dolmen::Status)> done) {
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (stopping_ || failed_.load()) {
      lock.Release();
      done(dolmen::Status(Code::kStopped, "server stopped"));
      return;
    }
    if (inbox_.conf_changes.size() + held_conf_changes_.load() >=
        options_.max_pending_conf_changes) {
      lock.Release();
      done(TooManyRequests());
      return;
    }
    inbox_.conf_changes.push_back(
        ConfProposal{std::move(cc), std::move(done), Now() + options_.request_timeout});
  }
  cv_.Signal();
}

void Driver::ReadIndex(std::function<void(dolmen::Status)> done) {
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (stopping_ || failed_.load()) {
      lock.Release();
      done(dolmen::Status(Code::kStopped, "server stopped"));
      return;
    }
    if (inbox_.reads.size() + held_reads_.load() >= options_.max_pending_reads) {
      lock.Release();
      done(TooManyRequests());
      return;
    }
    inbox_.reads.push_back(Read{std::move(done), Now() + options_.request_timeout});
  }
  cv_.Signal();
}

void Driver::RunInOrder(Task task) {
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (stopping_ || failed_.load()) {
      lock.Release();
      task(dolmen::Status(Code::kStopped, "server stopped"));
      return;
    }
    // Tasks are taken out of the inbox only between turns, so the inbox is their whole queue.
    if (inbox_.tasks.size() >= options_.max_pending_tasks) {
      lock.Release();
      task(TooManyRequests());
      return;
    }
    inbox_.tasks.push_back(std::move(task));
  }
  cv_.Signal();
}

void Driver::Step(std::vector<raft::Message> messages) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (auto& m : messages) inbox_.messages.push_back(std::move(m));
  }
  cv_.Signal();
}

void Driver::ReportUnreachable(MemberId id) {
  {
    absl::MutexLock lock(&mu_);
    inbox_.reports.emplace_back(id, -1);
  }
  cv_.Signal();
}

void Driver::ReportSnapshot(MemberId id, bool ok) {
  {
    absl::MutexLock lock(&mu_);
    inbox_.reports.emplace_back(id, ok ? 1 : 0);
  }
  cv_.Signal();
}

void Driver::TransferLeader(MemberId transferee) {
  {
    absl::MutexLock lock(&mu_);
    inbox_.transfers.push_back(transferee);
  }
  cv_.Signal();
}

void Driver::CheckLearnerReady(MemberId learner, std::function<void(dolmen::Status)> done) {
  RunInOrder([this, learner, done](dolmen::Status stopped) {
    if (!stopped.ok()) return done(stopped);
    const raft::Raft& r = node_->raft();
    if (r.role() != raft::Role::kLeader) {
      done(dolmen::Status(Code::kNotLeader, "not leader"));
      return;
    }
    const raft::Progress* learner_pr = r.tracker().Get(learner);
    const raft::Progress* leader_pr = r.tracker().Get(self_);
    // etcd's rule: a learner is ready once it has matched 90% of the leader's log.
    if (learner_pr == nullptr || leader_pr == nullptr ||
        static_cast<double>(learner_pr->match.value()) <
            0.9 * static_cast<double>(leader_pr->match.value())) {
      done(dolmen::Status(Code::kFailedPrecondition,
                          "can only promote a learner member which is in sync with leader"));
      return;
    }
    done(OkStatus());
  });
}

void Driver::MoveLeader(MemberId transferee, std::function<void(dolmen::Status)> done) {
  RunInOrder([this, transferee, done](dolmen::Status stopped) {
    if (!stopped.ok()) return done(stopped);
    const raft::Raft& r = node_->raft();
    if (r.role() != raft::Role::kLeader) {
      done(dolmen::Status(Code::kNotLeader, "not leader"));
      return;
    }
    if (!r.tracker().IsVoter(transferee)) {
      done(dolmen::Status(Code::kFailedPrecondition, "bad leader transferee"));
      return;
    }
    if (transferee == self_) {
      done(OkStatus());
      return;
    }
    node_->TransferLeader(transferee);
    leader_waits_.emplace_back(transferee, Read{done, Now() + options_.request_timeout});
  });
}

void Driver::Loop() {
  while (true) {
    Inbox inbox;
    if (!WaitForWork(&inbox)) return;
    TickIfDue();
    HandleInbox(inbox);
    for (const SyncDone& d : inbox.synced) {
      if (dolmen::Status s = FinishCheckpoint(d.applied, d.status); !s.ok()) {
        Fail(s);
        return;
      }
    }
    // Twice: a turn that elects a leader can propose what waited for one right away.
    for (int round = 0; round < 2; ++round) {
      ProposeWaiting();
      IssueReadIndex();
      while (node_->HasReady()) {
        if (dolmen::Status s = HandleReady(); !s.ok()) {
          Fail(s);
          return;
        }
      }
      if (waiting_.empty() && reads_unissued_.empty()) break;
    }
    ServeReads();
    std::vector<Task> tasks;
    tasks.swap(tasks_);
    // Tasks (hashes, defragmentation, snapshots) see a backend that holds every applied entry.
    dolmen::Status committed = tasks.empty() ? MaybeCommitBatch() : CommitBatch();
    if (!committed.ok()) {
      tasks_ = std::move(tasks);  // answered by Fail
      Fail(committed);
      return;
    }
    for (Task& t : tasks) t(OkStatus());
    ExpireDeadlines();
    PublishBacklog();
    if (dolmen::Status s = MaybeCheckpoint(); !s.ok()) {
      Fail(s);
      return;
    }
  }
}

bool Driver::WaitForWork(Inbox* inbox) {
  absl::ReleasableMutexLock lock(&mu_);
  auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !inbox_.proposals.empty() || !inbox_.conf_changes.empty() ||
           !inbox_.reads.empty() || !inbox_.messages.empty() || !inbox_.reports.empty() ||
           !inbox_.tasks.empty() || !inbox_.transfers.empty() || !inbox_.synced.empty();
  };
  const TimePoint wake = NextWake();
  while (!has_work()) {
    const auto left = wake - Now();
    if (left <= TimePoint::duration::zero()) break;
    cv_.WaitWithTimeout(&mu_, absl::FromChrono(left));
  }
  if (stopping_) return false;
  std::swap(*inbox, inbox_);
  return true;
}

void Driver::Wake() {
  // Under mu_: the owner computes its sleep and starts it under mu_ too, so this signal cannot
  // fall between the two and be lost.
  absl::MutexLock lock(&mu_);
  cv_.Signal();
}

void Driver::TickIfDue() {
  auto now = Now();
  if (now < next_tick_) return;
  node_->Tick();
  next_tick_ += options_.tick_interval;
  // After a long stall, do not replay every missed tick in a burst (that would start a
  // needless election); Raft only needs time to move forward.
  if (next_tick_ < now) next_tick_ = now + options_.tick_interval;
}

void Driver::HandleInbox(Inbox& inbox) {
  const auto now = Now();
  for (const raft::Message& m : inbox.messages) {
    peer_contact_.Heard(m.from, now);
    (void)node_->Step(m);  // a stale or foreign message is Raft's to ignore
  }
  for (auto [id, what] : inbox.reports) {
    if (what < 0) {
      node_->ReportUnreachable(id);
    } else {
      node_->ReportSnapshot(id, what == 1);
    }
  }
  for (MemberId t : inbox.transfers) node_->TransferLeader(t);
  for (auto& p : inbox.proposals) waiting_.push_back(std::move(p));
  for (auto& c : inbox.conf_changes) conf_waiting_.push_back(std::move(c));
  for (auto& r : inbox.reads) reads_unissued_.push_back(std::move(r));
  for (auto& t : inbox.tasks) tasks_.push_back(std::move(t));
  PublishBacklog();  // the inbox is empty now: its requests count as held
}

void Driver::ProposeWaiting() {
  while (!waiting_.empty()) {
    std::vector<std::string> batch;
    size_t bytes = 0;
    size_t n = 0;
    size_t limit = std::min(options_.max_batch_entries, raft::RawNode::kMaxEntriesPerProposal);
    while (n < waiting_.size() && n < limit &&
           (n == 0 || bytes + waiting_[n].data.size() <= options_.max_batch_bytes)) {
      bytes += waiting_[n].data.size();
      batch.push_back(waiting_[n].data);
      ++n;
    }
    dolmen::Status s = node_->ProposeBatch(std::move(batch));
    if (!s.ok()) {
      // No leader yet, a transfer in progress, or a full uncommitted log: keep the requests
      // and try again next turn, until their deadline.
      break;
    }
    for (size_t i = 0; i < n; ++i) {
      Proposal p = std::move(waiting_.front());
      waiting_.pop_front();
      uint64_t id = p.id;
      in_flight_.emplace(id, std::move(p));
    }
  }
  if (!conf_waiting_.empty() && conf_in_flight_.empty()) {
    dolmen::Status s = node_->ProposeConfChange(conf_waiting_.front().cc);
    if (s.ok()) {
      conf_in_flight_.push_back(std::move(conf_waiting_.front()));
      conf_waiting_.pop_front();
    }
  }
}

void Driver::IssueReadIndex() {
  if (reads_unissued_.empty()) return;
  std::string context = std::to_string(next_read_context_);
  if (!node_->ReadIndex(context).ok()) return;  // no leader yet: retry next turn
  ++next_read_context_;
  read_leader_[context] = node_->raft().lead().value();
  reads_issued_[context] = std::move(reads_unissued_);
  reads_unissued_.clear();
}

// As etcd's raft logs them ("became leader at term 2", "raft.node: ... elected leader ...",
// "changed leader from ... to ...", "lost leader ..."), once per change, with the term.
void Driver::LogSoftState(const raft::SoftState& now) {
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

dolmen::Status Driver::HandleReady() {
  raft::Ready rd = node_->GetReady();
  if (rd.soft_state) LogSoftState(*rd.soft_state);
  if (rd.soft_state && rd.soft_state->lead.value() != leader_.load()) {
    leader_.store(rd.soft_state->lead.value());
    if (leader_observer_) leader_observer_(rd.soft_state->lead);
    // A read index asked of the old leader may never be answered: fail those reads now with
    // etcd's "leader changed" (the client retries) instead of at their deadline. Reads that
    // already hold a read index stay valid. As etcd, only a new leader (not its loss) counts.
    const uint64_t lead = rd.soft_state->lead.value();
    if (lead != 0) {
      metric::LeaderChanges().Inc();
      for (auto it = reads_issued_.begin(); it != reads_issued_.end();) {
        auto asked = read_leader_.find(it->first);
        // Asked of this very leader (Raft knew it before this Ready told us): still good.
        if (asked != read_leader_.end() && asked->second == lead) {
          ++it;
          continue;
        }
        for (Read& r : it->second) r.done(dolmen::Status(Code::kLeaderChanged, "leader changed"));
        if (asked != read_leader_.end()) read_leader_.erase(asked);
        it = reads_issued_.erase(it);
      }
    }
  }
  if (rd.hard_state) {
    term_.store(rd.hard_state->term.value());
    commit_.store(rd.hard_state->commit.value());
  }
  const bool has_snapshot = rd.snapshot && !rd.snapshot->IsEmpty();
  // The leader's appends go out first, so followers write them while the leader does: one
  // fdatasync of latency per write instead of two in a row. Raft counts the leader's own copy
  // only once persisted (Advance), and everyone else's message waits for the disk.
  const bool send_first = rd.send_before_persist;
  if (send_first) SendMessages(std::move(rd.messages));
  if (has_snapshot) RETURN_IF_ERROR(PersistSnapshot(*rd.snapshot));
  RETURN_IF_ERROR(Persist(rd));
  if (!send_first) SendMessages(std::move(rd.messages));
  if (has_snapshot) RETURN_IF_ERROR(ApplySnapshot(*rd.snapshot));
  for (const raft::ReadState& rs : rd.read_states) {
    auto it = reads_issued_.find(rs.context);
    if (it == reads_issued_.end()) continue;
    for (Read& r : it->second) reads_ready_.emplace(rs.index.value(), std::move(r));
    read_leader_.erase(it->first);
    reads_issued_.erase(it);
  }
  RETURN_IF_ERROR(ApplyCommitted(rd.committed_entries));
  node_->Advance(rd);
  // Raft refuses to campaign while a conf change is unapplied, so the lone voter's election
  // waits until after Advance.
  if (conf_state_.voters.size() == 1 && conf_state_.voters[0] == self_ && leader_.load() == 0) {
    (void)node_->Campaign();
  }
  return OkStatus();
}

dolmen::Status Driver::Persist(const raft::Ready& rd) {
  if (rd.entries.empty() && !rd.hard_state) return OkStatus();
  RETURN_IF_ERROR(deps_.wal->Append(rd.entries, rd.hard_state.value_or(raft::HardState{})));
  if (rd.must_sync) RETURN_IF_ERROR(deps_.wal->Sync());
  if (!rd.entries.empty()) RETURN_IF_ERROR(deps_.storage->Append(rd.entries));
  if (rd.hard_state) deps_.storage->SetHardState(*rd.hard_state);
  return OkStatus();
}

dolmen::Status Driver::PersistSnapshot(const raft::Snapshot& snapshot) {
  if (!deps_.install_snapshot) {
    return Unimplemented("this member cannot install a snapshot from the leader (index " +
                         std::to_string(snapshot.metadata.index.value()) + ")");
  }
  // The marker goes into the log (synced) before the image reaches the backend; the image
  // stays on disk until then, so a crash in between installs it at the next start.
  RETURN_IF_ERROR(deps_.wal->SaveSnapshot(snapshot.metadata));
  return deps_.storage->ApplySnapshot(snapshot);
}

dolmen::Status Driver::ApplySnapshot(const raft::Snapshot& snapshot) {
  const raft::SnapshotMetadata& meta = snapshot.metadata;
  // Installing replaces the backend's contents in one txn: nothing may be left uncommitted.
  RETURN_IF_ERROR(CommitBatch());
  RETURN_IF_ERROR(deps_.install_snapshot(meta));
  conf_state_ = meta.conf_state;
  applied_.store(std::max(applied_.load(), meta.index.value()));
  last_checkpoint_index_ = meta.index.value();
  entries_since_checkpoint_ = 0;
  last_checkpoint_ = Now();
  // The installed backend is synced and holds everything up to the snapshot.
  if (dolmen::Status s = deps_.wal->ReleaseTo(Index(meta.index.value() + 1)); !s.ok()) {
    log::Warn("releasing the log below the snapshot failed",
              {{"snapshot-index", meta.index.value()}, {"error", s.ToString()}});
  }
  if (deps_.peers) deps_.peers->SetPeers(deps_.membership->List());
  if (restore_observer_) restore_observer_(deps_.store->CurrentRevision());
  return OkStatus();
}

void Driver::SendMessages(std::vector<raft::Message> messages) {
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

dolmen::Status Driver::ApplyCommitted(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return OkStatus();
  metric::ApplyBatchEntries().Observe(static_cast<double>(entries.size()));
  const uint64_t consistent = deps_.store->ConsistentIndex().value();
  std::vector<mvcc::Event> events;
  std::vector<std::pair<Done, ApplyResult>> done;
  deps_.applier->set_event_sink(observer_ ? &events : nullptr);
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
      const auto started = Now();
      status = ApplyNormal(e, &done);
      const auto took = Now() - started;
      metric::ApplySeconds().Observe(std::chrono::duration<double>(took).count());
      WarnIfSlowApply(e, took);
    }
    if (!status.ok()) break;
  }
  deps_.applier->set_event_sink(nullptr);
  // A removal of this member ends the batch at its conf change: what came before it is
  // committed and answered, and the removal is reported after.
  const bool removed = status.code() == Code::kRemoved;
  if (status.ok() || removed) {
    if (uncommitted_entries_ == 0) uncommitted_since_ = Now();
    uncommitted_entries_ += entries.size();
    for (const raft::Entry& e : entries) uncommitted_bytes_ += e.data.size();
    uncommitted_index_ = std::max({uncommitted_index_, last, consistent});
    // Answered now, committed to the backend later: every entry here is already in this
    // member's synced log, which keeps it until a checkpoint made the backend durable past it.
    // A removal ends the member, so what came before it is committed at once.
    dolmen::Status committed = removed ? CommitBatch() : MaybeCommitBatch();
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
  entries_since_checkpoint_ += entries.size();
  for (auto& [d, result] : done) d(std::move(result));
  // Watchers hear of a batch only once readers can see it.
  if (observer_ && !events.empty()) observer_(std::move(events), deps_.store->CurrentRevision());
  return status;  // OK, or this member's removal
}

void Driver::WarnIfSlowApply(const raft::Entry& e, std::chrono::nanoseconds took) const {
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

dolmen::Status Driver::ApplyNormal(const raft::Entry& e,
                                   std::vector<std::pair<Done, ApplyResult>>* done) {
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
  auto it = in_flight_.find(request.id());
  if (it != in_flight_.end()) {
    done->emplace_back(std::move(it->second.done), std::move(result));
    in_flight_.erase(it);
  }
  return OkStatus();
}

// Membership changes are logged where they are applied, once: entries replayed at start (already
// in the backend) are not logged again. Field names are etcd's (membership/cluster.go).
void Driver::LogMemberAdded(const internal::Member& member, Index index) {
  const std::vector<std::string> urls(member.peer_urls().begin(), member.peer_urls().end());
  log::Info("added member", {{"local-member-id", log::Hex(self_.value())},
                             {"added-peer-id", log::Hex(member.id())},
                             {"added-peer-peer-urls", urls},
                             {"added-peer-is-learner", member.is_learner()},
                             {"index", index.value()}});
}

void Driver::LogMemberUpdate(const internal::InternalRequest& request) {
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

dolmen::Status Driver::ApplyConfChange(const raft::Entry& e, bool in_backend) {
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
    FinishConfChange(cc, refused);
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
  FinishConfChange(cc, OkStatus());
  if (cc.type == raft::ConfChangeType::kRemoveNode && cc.node_id == self_) {
    return dolmen::Status(Code::kRemoved, "this member has been removed from the cluster");
  }
  return OkStatus();
}

void Driver::FinishConfChange(const raft::ConfChange& cc, const dolmen::Status& status) {
  for (auto it = conf_in_flight_.begin(); it != conf_in_flight_.end(); ++it) {
    if (SameChange(it->cc, cc)) {
      auto done = std::move(it->done);
      conf_in_flight_.erase(it);
      done(status);
      return;
    }
  }
}

void Driver::ServeReads() {
  for (auto it = leader_waits_.begin(); it != leader_waits_.end();) {
    if (it->first.value() != leader_.load()) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    it = leader_waits_.erase(it);
    done(OkStatus());
  }
  uint64_t applied = applied_.load();
  while (!reads_ready_.empty() && reads_ready_.begin()->first <= applied) {
    auto done = std::move(reads_ready_.begin()->second.done);
    reads_ready_.erase(reads_ready_.begin());
    done(OkStatus());
  }
}

void Driver::ExpireDeadlines() {
  auto now = Now();
  // Without a leader the answer is etcd's "no leader"; with one, "request timed out".
  auto why = [this] {
    return leader_.load() == 0 ? dolmen::Status(Code::kNoLeader, "no leader")
                               : dolmen::Status(Code::kTimeout, "request timed out");
  };
  while (!waiting_.empty() && waiting_.front().deadline <= now) {
    auto done = std::move(waiting_.front().done);
    waiting_.pop_front();
    metric::ProposalsFailed().Inc();
    done(ApplyResult{why(), {}});
  }
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    it = in_flight_.erase(it);
    metric::ProposalsFailed().Inc();
    done(ApplyResult{why(), {}});
  }
  while (!conf_waiting_.empty() && conf_waiting_.front().deadline <= now) {
    auto done = std::move(conf_waiting_.front().done);
    conf_waiting_.pop_front();
    done(why());
  }
  for (auto it = conf_in_flight_.begin(); it != conf_in_flight_.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->done);
    it = conf_in_flight_.erase(it);
    done(why());
  }
  auto expire_reads = [&](std::vector<Read>& reads) {
    for (auto it = reads.begin(); it != reads.end();) {
      if (it->deadline > now) {
        ++it;
        continue;
      }
      auto done = std::move(it->done);
      it = reads.erase(it);
      done(why());
    }
  };
  expire_reads(reads_unissued_);
  for (auto it = leader_waits_.begin(); it != leader_waits_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    it = leader_waits_.erase(it);
    done(dolmen::Status(Code::kTimeout, "request timed out"));
  }
  for (auto it = reads_issued_.begin(); it != reads_issued_.end();) {
    expire_reads(it->second);
    if (!it->second.empty()) {
      ++it;
      continue;
    }
    read_leader_.erase(it->first);
    it = reads_issued_.erase(it);
  }
  for (auto it = reads_ready_.begin(); it != reads_ready_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    it = reads_ready_.erase(it);
    done(why());
  }
}

dolmen::Status Driver::MaybeCommitBatch() {
  const bool due =
      uncommitted_entries_ >= options_.backend_commit_entries ||
      uncommitted_bytes_ >= options_.backend_commit_bytes ||
      (uncommitted_entries_ > 0 && Now() - uncommitted_since_ >= options_.backend_commit_interval);
  return due ? CommitBatch() : OkStatus();
}

dolmen::Status Driver::CommitBatch() {
  if (uncommitted_entries_ == 0) return OkStatus();
  uncommitted_entries_ = 0;
  uncommitted_bytes_ = 0;
  // A failed commit is fatal (the caller stops the member): the batch's entries are in the log,
  // which is never released past what the backend holds durably.
  const auto start = Now();
  dolmen::Status committed = deps_.store->Commit(Index(uncommitted_index_));
  metric::BackendCommitSeconds().Observe(std::chrono::duration<double>(Now() - start).count());
  return committed;
}

TimePoint Driver::NextWake() const {
  if (uncommitted_entries_ == 0) return next_tick_;
  return std::min(next_tick_, uncommitted_since_ + options_.backend_commit_interval);
}

dolmen::Status Driver::MaybeCheckpoint() {
  if (sync_in_flight_) return OkStatus();  // one at a time; the next is due again after it
  auto now = Now();
  bool due =
      entries_since_checkpoint_ >= options_.checkpoint_entries ||
      (entries_since_checkpoint_ > 0 && now - last_checkpoint_ >= options_.checkpoint_interval);
  if (!due) return OkStatus();
  ASSIGN_OR_RETURN(std::optional<uint64_t> applied, BeginCheckpoint());
  if (!applied) return OkStatus();
  // The fsync can take long on a busy disk: beside the loop, which keeps ticking, sending
  // heartbeats and committing batches meanwhile (those may or may not be in this sync; the
  // checkpoint claims only `applied`, committed before the sync began).
  sync_in_flight_ = true;
  dolmen::Status posted = syncer_->Post([this, at = *applied] {
    dolmen::Status synced = deps_.store->Sync();
    {
      absl::MutexLock lock(&mu_);
      inbox_.synced.push_back(SyncDone{at, std::move(synced)});
    }
    cv_.Signal();
  });
  if (!posted.ok()) sync_in_flight_ = false;  // stopping: Stop checkpoints instead
  return OkStatus();
}

Result<std::optional<uint64_t>> Driver::BeginCheckpoint() {
  entries_since_checkpoint_ = 0;
  last_checkpoint_ = Now();
  // The checkpoint covers every applied entry: commit them to the backend first.
  RETURN_IF_ERROR(CommitBatch());
  const uint64_t applied = applied_.load();
  if (applied <= last_checkpoint_index_) return std::optional<uint64_t>();
  checkpoint_conf_state_ = conf_state_;  // the configuration as of `applied`
  return std::optional<uint64_t>(applied);
}

dolmen::Status Driver::Checkpoint() {
  ASSIGN_OR_RETURN(std::optional<uint64_t> applied, BeginCheckpoint());
  if (!applied) return OkStatus();
  return FinishCheckpoint(*applied, deps_.store->Sync());
}

dolmen::Status Driver::FinishCheckpoint(uint64_t applied, const dolmen::Status& synced) {
  sync_in_flight_ = false;
  // The backend became durable up to `applied`; a snapshot marker there lets the log before it
  // go. The leader keeps catch_up_entries more in memory for followers slightly behind.
  //
  // A failed backend sync stops the member for good, as a failed WAL sync does: after a failed
  // fsync the kernel may have dropped the dirty pages and cleared the error, so a retry would
  // "succeed" over lost data and the log that could rebuild it would then be released. Nothing
  // of the log is released here unless the sync succeeded.
  if (!synced.ok()) {
    log::Error("checkpoint: the backend sync failed, stopping",
               {{"applied-index", applied}, {"error", synced.ToString()}});
    return synced;
  }
  // A snapshot from the leader installed meanwhile already moved the checkpoint past this one.
  if (applied <= last_checkpoint_index_) return OkStatus();
  dolmen::Status s;
  auto term = deps_.storage->TermAt(Index(applied));
  if (!term.ok()) s = term.status();
  raft::SnapshotMetadata meta;
  if (s.ok()) {
    meta.index = Index(applied);
    meta.term = *term;
    meta.conf_state = checkpoint_conf_state_;
    s = deps_.wal->SaveSnapshot(meta);
  }
  if (s.ok()) {
    s = deps_.storage->CreateSnapshot(Index(applied), checkpoint_conf_state_, "").status();
  }
  if (s.ok() && applied > options_.catch_up_entries &&
      applied - options_.catch_up_entries > deps_.storage->FirstIndex().value()) {
    s = deps_.storage->Compact(Index(applied - options_.catch_up_entries));
  }
  // A segment holding more than a little of the log is closed here so it can be released now.
  constexpr uint64_t kCutAtCheckpointBytes = 1 << 20;
  if (s.ok()) s = deps_.wal->CutIfAtLeast(kCutAtCheckpointBytes);
  if (s.ok()) s = deps_.wal->ReleaseTo(Index(applied + 1));
  if (!s.ok()) {
    // Not fatal here: the log still holds everything and the next checkpoint tries again (a
    // failed WAL write is sticky inside the Wal, so the next append stops the member).
    log::Warn("checkpoint failed", {{"applied-index", applied}, {"error", s.ToString()}});
    return OkStatus();
  }
  last_checkpoint_index_ = applied;
  return OkStatus();
}

void Driver::PublishBacklog() {
  held_proposals_.store(waiting_.size() + in_flight_.size());
  size_t reads = reads_unissued_.size() + reads_ready_.size();
  for (const auto& [context, issued] : reads_issued_) reads += issued.size();
  held_reads_.store(reads);
  held_conf_changes_.store(conf_waiting_.size() + conf_in_flight_.size());
  metric::ProposalsPending().Set(static_cast<double>(waiting_.size() + in_flight_.size()));
}

void Driver::Fail(const dolmen::Status& s) {
  failed_.store(true);
  FailEverything(dolmen::Status(Code::kStopped, "server stopped: " + s.ToString()));
  if (on_fatal_) on_fatal_(s);
}

void Driver::FailEverything(const dolmen::Status& s) {
  Inbox rest;
  {
    absl::MutexLock lock(&mu_);
    std::swap(rest, inbox_);
  }
  HandleInbox(rest);
  std::vector<Task> tasks;
  tasks.swap(tasks_);
  for (Task& t : tasks) t(s);
  for (auto& p : waiting_) p.done(ApplyResult{s, {}});
  waiting_.clear();
  for (auto& [id, p] : in_flight_) p.done(ApplyResult{s, {}});
  in_flight_.clear();
  for (auto& c : conf_waiting_) c.done(s);
  conf_waiting_.clear();
  for (auto& c : conf_in_flight_) c.done(s);
  conf_in_flight_.clear();
  for (auto& r : reads_unissued_) r.done(s);
  reads_unissued_.clear();
  for (auto& [ctx, reads] : reads_issued_) {
    for (auto& r : reads) r.done(s);
  }
  reads_issued_.clear();
  read_leader_.clear();
  for (auto& [index, r] : reads_ready_) r.done(s);
  reads_ready_.clear();
  for (auto& [id, r] : leader_waits_) r.done(s);
  leader_waits_.clear();
}

}  // namespace dolmen::server
