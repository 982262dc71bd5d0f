// The member core: one level above the Raft library, the same discipline (etcd raft's
// RawNode). Events go in, one turn at a time, each with the current time (Turn): peer messages
// and reports, proposals, conf-change proposals, read barriers, tasks to run in order, a
// checkpoint's completed backend sync, and the time itself (Raft ticks when it is due). Effects
// come out, in the order the Ready contract requires (docs/raft.md): the WAL write the Ready
// needs, as a request the shell performs (TakePersistRequest; the leader's messages leave
// before it, everyone else's wait), and once the shell reports it durable (a WalPersisted
// event): messages sent, a snapshot installed, committed entries applied to the store,
// callers answered, Advance. Besides, after the turn: a checkpoint sync to run beside the loop
// (TakeSyncRequest) and the time of the next turn that is due without any event (NextWake).
//
// The core never reads a clock, never waits and never starts a thread: the driver (driver.h)
// is its thin thread shell with the real clock, and a test or a simulator can drive it
// directly with a fake WAL file system, a memory backend and a PeerSender of its own. Disk and
// network are reached through those injected interfaces (wal::Wal on an io::FileSystem,
// mvcc::Store on a backend::Backend, PeerSender), as LevelDB's Env; the Ready's WAL appends
// and fdatasyncs are the shell's, so a slow disk can overlap other work.
//
// Owner thread only, except the atomics read through term()/leader()/applied_index()/
// commit_index() and peer_contact(), which any thread may read.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "mvcc/store.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "server/applier.h"
#include "server/checkpointer.h"
#include "server/driver_options.h"
#include "server/member_events.h"
#include "server/membership.h"
#include "server/peer_contact.h"
#include "server/persist_request.h"
#include "server/proposal_waiters.h"
#include "server/read_barrier.h"
#include "wal/wal.h"

namespace dolmen::server {

class MemberCore {
 public:
  // Called after each applied batch is visible to readers, with the batch's changes in revision
  // order and the store revision after it (for watchers).
  using ApplyObserver = std::function<void(std::vector<mvcc::Event> events, Revision revision)>;

  struct Deps {
    // The checkpoints' snapshot markers, segment cuts and releases. The Ready's appends and
    // syncs are not the core's: the shell performs them on this same Wal (PersistRequest).
    wal::Wal* wal = nullptr;
    mvcc::Store* store = nullptr;
    Applier* applier = nullptr;
    Membership* membership = nullptr;
    raft::MemoryStorage* storage = nullptr;  // mirrors the WAL
    PeerSender* peers = nullptr;             // may be null for a single member
    // Installs the image of a snapshot from the leader into the store (and the state kept
    // beside it: leases, membership), durably. Null: snapshots cannot be installed.
    std::function<dolmen::Status(const raft::SnapshotMetadata&)> install_snapshot;
    // Measures how long applies and backend commits take, for metrics and the slow-apply
    // warning only; never decides anything (null: not measured).
    const Clock* stopwatch = nullptr;
    // Where the read barrier's ReadIndex contexts start: different at each start of the member
    // (read_barrier.h says why). The server takes its request ids' start.
    uint64_t read_context_start = 1;
  };
  struct Observers {
    ApplyObserver applied;
    // A snapshot from the leader replaced the store: the store revision it brought (watchers
    // must catch up from the store: no events describe the jump).
    std::function<void(Revision)> restored;
    // The known leader changed, before any entry of the new term is applied (the lessor is
    // promoted there, as etcd does).
    std::function<void(MemberId leader)> leader;
  };

  MemberCore(Deps deps, std::unique_ptr<raft::RawNode> node, MemberId self,
             const DriverOptions& options);
  MemberCore(const MemberCore&) = delete;
  MemberCore& operator=(const MemberCore&) = delete;

  void set_peers(PeerSender* peers) { deps_.peers = peers; }
  void set_observers(Observers observers) { observers_ = std::move(observers); }

  // Once, before the first turn: a lone voter campaigns at once; a member of a larger cluster
  // advances its election ticks (etcd's --initial-election-tick-advance).
  void Start(TimePoint now);
  // One turn: takes `events`, ticks Raft if a tick is due at `now`, finishes the Ready whose
  // write `events.persisted` reports, proposes, handles every Ready up to the next one that
  // needs a WAL write, answers callers, runs the tasks, expires deadlines. An error when the
  // member must stop (a WAL or backend write failed, the member was removed, a corrupt entry):
  // then call FailAll.
  dolmen::Status Turn(InboxBatch events, TimePoint now);
  // After a turn: the WAL write its last Ready waits for, handed out once (null: nothing new).
  // The core owns it; it stays valid until the WalPersisted event reporting it reaches Turn.
  // Until then the core goes on taking events (between GetReady and Advance Raft may step
  // messages, tick and take proposals) but starts no other Ready, so exactly one write is
  // outstanding and writes complete in order.
  const PersistRequest* TakePersistRequest();
  bool persist_outstanding() const { return unpersisted_.has_value(); }
  // When the next turn is due even if no event arrives: the next tick or batch commit.
  TimePoint NextWake() const;
  // After a turn: the applied index a backend sync should cover now (a checkpoint's first half
  // is done), to run beside the loop and report back as a SyncDone event.
  std::optional<uint64_t> TakeSyncRequest() { return std::exchange(sync_request_, std::nullopt); }
  // The sync asked for could not be started.
  void SyncNotStarted() { checkpointer_.SyncNotStarted(); }
  // What the core holds (the inbox's bounds count it).
  Backlog held() const;

  // Answers every caller the core holds, and those in `rest` (events never taken), with `s`:
  // at stop or failure.
  void FailAll(const dolmen::Status& s, InboxBatch rest);
  // A whole checkpoint here and now, its sync run by `sync` (at a clean stop, no turn after).
  dolmen::Status CheckpointNow(TimePoint now, const std::function<dolmen::Status()>& sync);

  // Owner thread (from a task): on the leader, whether `learner` has matched enough of the log
  // to be promoted (etcd: 90%).
  dolmen::Status CheckLearnerReady(MemberId learner) const;
  // Owner thread (from a task): etcd's MoveLeader; `done` once `transferee` leads.
  void MoveLeader(MemberId transferee, Waiter done);

  // Any thread.
  const PeerContact& peer_contact() const { return peer_contact_; }
  Term term() const { return Term(term_.load()); }
  MemberId leader() const { return MemberId(leader_.load()); }
  Index applied_index() const { return Index(applied_.load()); }
  Index commit_index() const { return Index(commit_.load()); }

 private:
  void Tick(TimePoint now);
  void TakeEvents(InboxBatch& events, TimePoint now);
  void ProposeAndIssue();

  // The ready loop (member_core_ready.cc): one Ready handled in the contract's order, split at
  // its WAL write. Readies until one needs a write (which then waits for WalPersisted).
  dolmen::Status HandleReadies(TimePoint now);
  dolmen::Status StartReady(TimePoint now);
  // The write of the Ready in unpersisted_ completed with `status`.
  dolmen::Status Persisted(const dolmen::Status& status, TimePoint now);
  // What follows the write: the Raft storage mirror, messages, snapshot install, apply, Advance.
  dolmen::Status FinishReady(raft::Ready rd, TimePoint now);
  void NoteSoftState(const raft::SoftState& soft);
  // Logs each change of leader or role once (info; role changes short of leader at debug).
  void LogSoftState(const raft::SoftState& now);
  dolmen::Status MirrorPersisted(const raft::Ready& rd);
  dolmen::Status ApplySnapshot(const raft::Snapshot& snapshot, TimePoint now);
  void SendMessages(std::vector<raft::Message> messages);

  // Apply (member_core_apply.cc): committed entries in log order.
  dolmen::Status ApplyCommitted(const std::vector<raft::Entry>& entries, TimePoint now);
  dolmen::Status ApplyNormal(const raft::Entry& e,
                             std::vector<std::pair<ProposalDone, ApplyResult>>* done);
  // in_backend: the entry is at or below the backend's index (replayed at start).
  dolmen::Status ApplyConfChange(const raft::Entry& e, bool in_backend);
  // --experimental-warning-apply-duration: one warning line for an entry applied slowly.
  void WarnIfSlowApply(const raft::Entry& e, std::chrono::nanoseconds took) const;
  void LogMemberAdded(const internal::Member& member, Index index);
  void LogMemberUpdate(const internal::InternalRequest& request);

  // Without a leader the answer is etcd's "no leader"; with one, "request timed out".
  dolmen::Status WhyExpired() const;

  Deps deps_;
  std::unique_ptr<raft::RawNode> node_;
  const MemberId self_;
  const DriverOptions options_;
  Observers observers_;

  ProposalWaiters waiters_;
  ReadBarrier reads_;
  Checkpointer checkpointer_;
  std::vector<Task> tasks_;
  std::optional<uint64_t> sync_request_;
  // The Ready whose WAL write is outstanding; its entries wait in persist_ meanwhile.
  std::optional<raft::Ready> unpersisted_;
  PersistRequest persist_;
  bool persist_taken_ = false;  // TakePersistRequest handed persist_ out

  raft::ConfState conf_state_;
  raft::SoftState logged_soft_state_;  // the last leadership LogSoftState reported
  TimePoint next_tick_;

  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_{0};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> commit_{0};
  PeerContact peer_contact_;  // written on the owner thread, read anywhere
};

}  // namespace dolmen::server
