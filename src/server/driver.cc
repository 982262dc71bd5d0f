#include "server/driver.h"

#include <utility>

#include "log/log.h"
#include "server/persist_request.h"

namespace dolmen::server {
namespace {

dolmen::Status Stopped() { return dolmen::Status(Code::kStopped, "server stopped"); }

}  // namespace

Driver::Driver(Deps deps, std::unique_ptr<raft::RawNode> node, MemberId self, DriverOptions options,
               FatalHandler on_fatal)
    : clock_(deps.clock != nullptr ? deps.clock : &system_clock_),
      store_(deps.store),
      wal_(deps.wal),
      options_(options),
      on_fatal_(std::move(on_fatal)),
      inbox_(options),
      syncer_(std::make_unique<ReadPool>(/*threads=*/1, /*max_queued=*/1)) {
  MemberCore::Deps core = std::move(deps);
  core.stopwatch = clock_;
  core_ = std::make_unique<MemberCore>(std::move(core), std::move(node), self, options_);
}

Driver::~Driver() { Stop(); }

void Driver::Start() {
  CHECK(!thread_.joinable());
  core_->set_observers(observers_);
  core_->Start(Now());
  thread_ = std::thread([this] { Loop(); });
}

void Driver::Stop() {
  if (stopped_.exchange(true)) return;
  inbox_.Close();
  if (thread_.joinable()) {
    thread_.join();  // the owner thread ran FinishStop before it exited
  } else {
    FinishStop(/*ran=*/false);
  }
}

void Driver::FinishStop(bool ran) {
  syncer_->Stop();  // a sync in flight ends; its SyncDone is dropped (the checkpoint redoes it)
  core_->FailAll(Stopped(), inbox_.TakeAll());
  // A clean stop ends with a checkpoint, so the next start replays no log (a member restarted
  // after a stop is back in tens of milliseconds instead of re-reading the log since the last
  // periodic checkpoint).
  if (ran && !failed_.load() && options_.checkpoint_at_stop) {
    // An error is logged; the next start replays the log instead.
    core_->CheckpointNow(Now(), [this] { return store_->Sync(); }).IgnoreError();
  }
}

void Driver::Propose(uint64_t id, std::string data, Done done) {
  Propose(id, std::move(data), std::move(done), options_.request_timeout);
}

void Driver::Propose(uint64_t id, std::string data, Done done, std::chrono::milliseconds timeout) {
  Proposal p{id, std::move(data), std::move(done), Now() + timeout};
  if (dolmen::Status s = inbox_.Add(std::move(p)); !s.ok()) p.done(ApplyResult{s, {}});
}

void Driver::ProposeConfChange(raft::ConfChange cc, std::function<void(dolmen::Status)> done) {
  ConfProposal c{std::move(cc), std::move(done), Now() + options_.request_timeout};
  if (dolmen::Status s = inbox_.Add(std::move(c)); !s.ok()) c.done(s);
}

void Driver::ReadIndex(std::function<void(dolmen::Status)> done) {
  Waiter r{std::move(done), Now() + options_.request_timeout};
  if (dolmen::Status s = inbox_.AddRead(std::move(r)); !s.ok()) r.done(s);
}

void Driver::RunInOrder(Task task) {
  if (dolmen::Status s = inbox_.Add(std::move(task)); !s.ok()) task(s);
}

void Driver::Step(std::vector<raft::Message> messages) {
  const size_t dropped = inbox_.AddMessages(std::move(messages));
  if (dropped == 0 || inbox_.closed()) return;
  // Once, then once per 1024 more: an overloaded member must not also flood its log.
  const uint64_t before = dropped_messages_.fetch_add(dropped);
  if (before != 0 && before / 1024 == (before + dropped) / 1024) return;
  log::Warn("dropped Raft messages since the receiving buffer is full (overloaded network)",
            {{"dropped-total", before + dropped},
             {"buffer-size", static_cast<uint64_t>(options_.max_pending_messages)}});
}

void Driver::ReportUnreachable(MemberId id) {
  (void)inbox_.AddReport(PeerReport{id, PeerReport::Kind::kUnreachable});
}

void Driver::ReportSnapshot(MemberId id, bool ok) {
  (void)inbox_.AddReport(
      PeerReport{id, ok ? PeerReport::Kind::kSnapshotDone : PeerReport::Kind::kSnapshotFailed});
}

void Driver::TransferLeader(MemberId transferee) { (void)inbox_.AddTransfer(transferee); }

void Driver::CheckLearnerReady(MemberId learner, std::function<void(dolmen::Status)> done) {
  RunInOrder([this, learner, done](dolmen::Status stopped) {
    done(stopped.ok() ? core_->CheckLearnerReady(learner) : stopped);
  });
}

void Driver::MoveLeader(MemberId transferee, std::function<void(dolmen::Status)> done) {
  RunInOrder([this, transferee, done](dolmen::Status stopped) {
    if (!stopped.ok()) return done(stopped);
    core_->MoveLeader(transferee, Waiter{done, Now() + options_.request_timeout});
  });
}

void Driver::Loop() {
  InboxBatch events;
  while (inbox_.TakeOrWait(core_->NextWake(), *clock_, &events)) {
    dolmen::Status s = core_->Turn(std::exchange(events, {}), Now());
    if (s.ok()) s = PersistNow();
    if (!s.ok()) {
      Fail(s);
      break;
    }
    inbox_.PublishBacklog(core_->held());
    if (std::optional<uint64_t> sync = core_->TakeSyncRequest()) StartSync(*sync);
  }
  // Closed (Stop) or failed: the stop's last steps run here, on the thread that opened the
  // store's batch write transaction. A write transaction belongs to its thread: LMDB's writer
  // lock is a robust mutex that only its owner may unlock (from Stop's thread the commit's
  // unlock failed with EPERM, seen by ThreadSanitizer, and the lock stayed with the exited
  // owner until the next writer recovered it as "owner died").
  FinishStop(/*ran=*/true);
}

dolmen::Status Driver::PersistNow() {
  // Each write here and now, on this thread, its completion fed back at once: no thread hop and
  // no wake-up in between, so a proposal costs what it did when the core wrote itself. A turn
  // that finishes one Ready may start the next (say, the commit its Advance revealed).
  while (const PersistRequest* write = core_->TakePersistRequest()) {
    InboxBatch done;
    done.persisted = WalPersisted{Persist(*wal_, *write)};
    RETURN_IF_ERROR(core_->Turn(std::move(done), Now()));
  }
  return OkStatus();
}

void Driver::StartSync(uint64_t applied) {
  dolmen::Status posted = syncer_->Post([this, applied] {
    inbox_.AddSynced(SyncDone{applied, store_->Sync()});
  });
  if (!posted.ok()) core_->SyncNotStarted();  // stopping: Stop checkpoints instead
}

void Driver::Fail(const dolmen::Status& s) {
  failed_.store(true);
  inbox_.Close();  // from now on callers hear kStopped at once
  core_->FailAll(dolmen::Status(Code::kStopped, "server stopped: " + s.ToString()),
                 inbox_.TakeAll());
  inbox_.PublishBacklog(core_->held());
  if (on_fatal_) on_fatal_(s);
}

}  // namespace dolmen::server
