// The driver: the thin thread shell around a member's core (member_core.h). It owns the one
// owner thread, the inbox other threads queue work in (driver_inbox.h, every list bounded), the
// real clock (or the injected one) and the syncer thread that runs checkpoints' backend fsyncs
// beside the loop. Each turn it takes everything queued, reads the time once, and hands both to
// the core, which ticks Raft, proposes, handles Ready in the contract's order (persist, send,
// apply, answer, Advance) and says when its next turn is due. The Ready's WAL write is an
// effect the driver performs right after the turn, on the owner thread, and reports back at
// once (WalPersisted) before it sleeps until the next wake-up or event.
//
// One member and many run through this same path; a single voter elects itself at once.
// Callers on other threads only queue work (bounded: beyond a bound etcd's "too many
// requests") and get callbacks, on the owner thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "server/applier.h"
#include "server/driver_inbox.h"
#include "server/driver_options.h"
#include "server/member_core.h"
#include "server/member_events.h"
#include "server/membership.h"
#include "server/peer_contact.h"
#include "server/read_pool.h"
#include "wal/wal.h"

namespace dolmen::server {

class Driver {
 public:
  using Done = ProposalDone;
  using Task = server::Task;
  using FatalHandler = std::function<void(const Status&)>;
  using ApplyObserver = MemberCore::ApplyObserver;

  // The core's (its stopwatch is set to the clock), and the time ticks, timeouts, checkpoints
  // and backend commits follow (null: the system clock), injected so a test or the simulator
  // controls the member's time.
  struct Deps : MemberCore::Deps {
    const Clock* clock = nullptr;
  };

  Driver(Deps deps, std::unique_ptr<raft::RawNode> node, MemberId self, DriverOptions options,
         FatalHandler on_fatal);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // The injected clock moved (tests, the simulator): the owner thread reads the time again at
  // once instead of sleeping until the wake-up it computed from the old time.
  void Wake() { inbox_.Wake(); }

  // All before Start; see MemberCore::Observers for when each runs (on the owner thread).
  void SetApplyObserver(ApplyObserver observer) { observers_.applied = std::move(observer); }
  void SetPeerSender(PeerSender* peers) { core_->set_peers(peers); }
  void SetRestoreObserver(std::function<void(Revision)> observer) {
    observers_.restored = std::move(observer);
  }
  void SetLeaderObserver(std::function<void(MemberId leader)> observer) {
    observers_.leader = std::move(observer);
  }
  void Start();
  // Finishes the turn in flight, fails everything still queued with kStopped (on the owner
  // thread), checkpoints after a clean run, joins.
  void Stop();

  // Thread-safe. `data` is a serialized InternalRequest whose id is `id`. `done` runs on the
  // owner thread once this member applied the entry, or fails (kTimeout, kStopped,
  // kTooManyRequests, ...).
  void Propose(uint64_t id, std::string data, Done done);
  // The same with its own deadline (e.g. a short one for requests the member retries itself).
  void Propose(uint64_t id, std::string data, Done done, std::chrono::milliseconds timeout);
  // Thread-safe. A membership change; `done` runs once it is applied here.
  void ProposeConfChange(raft::ConfChange cc, std::function<void(Status)> done);
  // Thread-safe. A linearizable read barrier: `done` runs (on the owner thread) once this
  // member has applied everything committed before the call, as confirmed by the leader.
  void ReadIndex(std::function<void(Status)> done);
  // Thread-safe. Runs `task(OK)` on the owner thread after everything queued before it. If the
  // driver stops or fails first, `task` runs with kStopped instead (on the caller's thread when
  // already stopped): every task runs exactly once, so no caller waits forever. Tasks run
  // between turns, after the store's batch is committed: the backend then holds every applied
  // entry and no backend write txn is open.
  void RunInOrder(Task task);
  // Thread-safe. Messages from peers (dropped beyond max_pending_messages, as etcd does).
  void Step(std::vector<raft::Message> messages);
  void ReportUnreachable(MemberId id);
  void ReportSnapshot(MemberId id, bool ok);
  // Thread-safe. On the leader, whether `learner` has caught up enough to be promoted
  // (etcd: 90% of the leader's log); kNotLeader elsewhere. `done` runs on the owner thread.
  void CheckLearnerReady(MemberId learner, std::function<void(dolmen::Status)> done);
  // Thread-safe. Asks Raft to hand leadership to `transferee`.
  void TransferLeader(MemberId transferee);
  // Thread-safe. etcd's MoveLeader: only on the leader (kNotLeader), only to a voter (etcd's
  // "bad leader transferee"); `done` runs once `transferee` leads, or with kTimeout.
  void MoveLeader(MemberId transferee, std::function<void(dolmen::Status)> done);

  // Thread-safe. When each peer's last message arrived (dead-member removal's health view).
  const PeerContact& peer_contact() const { return core_->peer_contact(); }

  Term term() const { return core_->term(); }
  MemberId leader() const { return core_->leader(); }
  Index applied_index() const { return core_->applied_index(); }
  Index commit_index() const { return core_->commit_index(); }
  bool failed() const { return failed_.load(); }

 private:
  void Loop();
  // The end of a stop, once the loop is over (on the owner thread) or never ran (on Stop's
  // caller): stops the syncer, answers everything still queued with kStopped and, after a
  // clean run, checkpoints.
  void FinishStop(bool ran);
  // After a turn: the WAL writes the core asked for (PersistRequest), each performed on the
  // owner thread and reported to the core in a turn of its own; an error stops the member.
  dolmen::Status PersistNow();
  // After a turn: the checkpoint sync the core asked for, run on syncer_.
  void StartSync(uint64_t applied);
  void Fail(const dolmen::Status& s);
  TimePoint Now() const { return clock_->Now(); }

  SystemClock system_clock_;
  const Clock* clock_;  // deps.clock or system_clock_
  mvcc::Store* const store_;
  wal::Wal* const wal_;  // the core's: the driver performs its Ready writes
  const DriverOptions options_;
  FatalHandler on_fatal_;
  MemberCore::Observers observers_;
  DriverInbox inbox_;
  // Owned by the owner thread while it runs, its stop included; by Stop's caller if it never ran.
  std::unique_ptr<MemberCore> core_;
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> dropped_messages_{0};  // peer messages the full inbox dropped
  std::atomic<bool> stopped_{false};
  std::thread thread_;
  // One thread for the checkpoints' backend syncs (one at a time: a queue of one).
  std::unique_ptr<ReadPool> syncer_;
};

}  // namespace dolmen::server
