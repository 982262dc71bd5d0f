// The driver: the one owner thread of a member, and the only caller of its Raft node.
//
// Each turn it: ticks Raft on schedule; steps messages that arrived from peers; proposes the
// requests that queued up meanwhile as one batch; then handles Raft's Ready in the order the
// Ready contract requires (docs/raft.md): persist entries and hard state to the WAL with one
// fdatasync, send messages, apply committed entries to the store, answer waiting reads, Advance.
// Applied entries reach the backend in batches that span many Readys (one backend commit, with
// the applied index, per backend_commit_interval or so): readers and watchers see an entry as
// soon as it is applied, and the write-ahead log holds it until a checkpoint has made the
// backend durable past it (docs/durability.md).
//
// One member and many run through this same path; a single voter elects itself at once.
// Callers on other threads only queue work (bounded) and get callbacks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "server/applier.h"
#include "server/membership.h"
#include "server/peer_contact.h"
#include "server/read_pool.h"
#include "wal/wal.h"

namespace dolmen::server {

struct DriverOptions {
  // Bounds on one proposal batch.
  size_t max_batch_entries = 1024;
  size_t max_batch_bytes = 8u << 20;
  // Bounds on what waits for the owner thread; beyond them a request is refused at once with
  // kTooManyRequests (etcd's "etcdserver: too many requests"). Proposals count from the call
  // until applied (inbox, waiting for a leader, in flight); reads until their barrier passed;
  // tasks until run; conf changes until applied.
  size_t max_pending = 20000;
  size_t max_pending_reads = 20000;
  size_t max_pending_tasks = 4096;
  size_t max_pending_conf_changes = 128;
  // A checkpoint syncs the backend, records a snapshot marker and releases WAL segments.
  uint64_t checkpoint_entries = 20000;
  std::chrono::milliseconds checkpoint_interval{5000};
  // Stop ends with a checkpoint (so the next start replays nothing). Tests that stage a crash
  // turn it off: a crashed member does not get to checkpoint.
  bool checkpoint_at_stop = true;
  // Applied entries are committed to the backend (on LMDB: their pages fdatasynced, then the
  // meta page written) when the oldest uncommitted one is this old, or when this many entries
  // or bytes of them wait, whichever comes first; also before a checkpoint, a snapshot install
  // and every RunInOrder task. etcd commits its bbolt batch every 100 ms or 10000 writes.
  std::chrono::milliseconds backend_commit_interval{100};
  uint64_t backend_commit_entries = 10000;
  uint64_t backend_commit_bytes = 32u << 20;
  // Entries the leader keeps in memory behind a checkpoint for slow followers.
  uint64_t catch_up_entries = 5000;
  // Raft time: one tick per heartbeat interval; elections after election_ticks ticks.
  std::chrono::milliseconds tick_interval{100};
  int election_ticks = 10;
  // etcd's --initial-election-tick-advance: a member of a multi-member cluster starts with
  // all but one election tick elapsed, so its first election comes after one tick instead of
  // a whole election timeout. Off: it waits a full timeout to hear from a leader first.
  bool initial_election_tick_advance = true;
  // etcd's --experimental-warning-apply-duration: applying one entry slower than this logs a
  // warning ("apply request took too long").
  std::chrono::nanoseconds warning_apply_duration{100 * 1000 * 1000};
  // A proposal or read not done by then fails with "request timed out" (etcd: 5 s + 2
  // election timeouts).
  std::chrono::milliseconds request_timeout{7000};
  // --max-learners, checked again when a learner's addition is applied (conf_change_rules.h).
  size_t max_learners = 1;
};

// How the driver reaches peers; the real one is the gRPC transport, tests use fakes.
class PeerSender {
 public:
  virtual ~PeerSender() = default;
  virtual void Send(std::vector<raft::Message> messages) = 0;
  virtual void SendSnapshot(raft::Message message) = 0;
  // Membership changed: the set of peers to talk to.
  virtual void SetPeers(const std::vector<internal::Member>& members) = 0;
};

class Driver {
 public:
  using Done = std::function<void(ApplyResult)>;
  // Runs with OK on the owner thread, or with the stop's status if the driver stops first.
  using Task = std::function<void(Status)>;
  using FatalHandler = std::function<void(const Status&)>;
  // Called on the owner thread after each applied batch is visible to readers, with the
  // batch's changes in revision order and the store revision after it (for watchers).
  using ApplyObserver = std::function<void(std::vector<mvcc::Event> events, Revision revision)>;

  struct Deps {
    wal::Wal* wal = nullptr;
    mvcc::Store* store = nullptr;
    Applier* applier = nullptr;
    Membership* membership = nullptr;
    raft::MemoryStorage* storage = nullptr;  // mirrors the WAL
    PeerSender* peers = nullptr;             // may be null for a single member
    // Installs the image of a snapshot from the leader into the store (and the state kept
    // beside it: leases, membership), durably. Null: snapshots cannot be installed.
    std::function<dolmen::Status(const raft::SnapshotMetadata&)> install_snapshot;
    // The time ticks, timeouts, checkpoints and backend commits follow (null: the system
    // clock), injected so a test or the simulator controls the member's time.
    const Clock* clock = nullptr;
  };

  Driver(Deps deps, std::unique_ptr<raft::RawNode> node, MemberId self, DriverOptions options,
         FatalHandler on_fatal);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // The injected clock moved (tests, the simulator): the owner thread reads the time again at
  // once instead of sleeping until the wake-up it computed from the old time.
  void Wake();

  // Both before Start.
  void SetApplyObserver(ApplyObserver observer) { observer_ = std::move(observer); }
  void SetPeerSender(PeerSender* peers) { deps_.peers = peers; }
  // Called on the owner thread after a snapshot from the leader replaced the store, with the
  // store revision it brought (watchers must catch up from the store: no events describe the
  // jump).
  void SetRestoreObserver(std::function<void(Revision)> observer) {
    restore_observer_ = std::move(observer);
  }
  // Called on the owner thread when the known leader changes, before any entry of the new
  // term is applied (the lessor is promoted there, as etcd does).
  void SetLeaderObserver(std::function<void(MemberId leader)> observer) {
    leader_observer_ = std::move(observer);
  }
  void Start();
  // Finishes the turn in flight, fails everything still queued with kStopped, joins.
  void Stop();

  // Thread-safe. `data` is a serialized InternalRequest whose id is `id`. `done` runs on the
  // owner thread once this member applied the entry, or fails (kTimeout, kStopped, ...).
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
  // Thread-safe. Messages from peers.
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
  const PeerContact& peer_contact() const { return peer_contact_; }

  Term term() const { return Term(term_.load()); }
  MemberId leader() const { return MemberId(leader_.load()); }
  Index applied_index() const { return Index(applied_.load()); }
  Index commit_index() const { return Index(commit_.load()); }
  bool failed() const { return failed_.load(); }

 private:
  struct Proposal {
    uint64_t id;
    std::string data;
    Done done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct ConfProposal {
    raft::ConfChange cc;
    std::function<void(dolmen::Status)> done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct Read {
    std::function<void(dolmen::Status)> done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct SyncDone {  // a checkpoint's backend sync finished (on syncer_)
    uint64_t applied;
    dolmen::Status status;
  };
  struct Inbox {  // everything other threads hand to the owner thread; guarded by mu_
    std::deque<Proposal> proposals;
    std::deque<ConfProposal> conf_changes;
    std::vector<Read> reads;
    std::vector<raft::Message> messages;
    std::vector<std::pair<MemberId, int>> reports;  // (id, -1 unreachable / 0 snap fail / 1 ok)
    std::deque<Task> tasks;
    std::vector<MemberId> transfers;
    std::vector<SyncDone> synced;
  };

  void Loop();
  bool WaitForWork(Inbox* inbox) ABSL_LOCKS_EXCLUDED(mu_);
  void TickIfDue();
  void HandleInbox(Inbox& inbox);
  void ProposeWaiting();
  void IssueReadIndex();
  dolmen::Status HandleReady();
  // Logs each change of leader or role once (info; role changes short of leader at debug).
  void LogSoftState(const raft::SoftState& now);
  void LogMemberAdded(const internal::Member& member, Index index);
  void LogMemberUpdate(const internal::InternalRequest& request);
  dolmen::Status Persist(const raft::Ready& rd);
  dolmen::Status PersistSnapshot(const raft::Snapshot& snapshot);
  dolmen::Status ApplySnapshot(const raft::Snapshot& snapshot);
  void SendMessages(std::vector<raft::Message> messages);
  dolmen::Status ApplyCommitted(const std::vector<raft::Entry>& entries);
  dolmen::Status ApplyNormal(const raft::Entry& e, std::vector<std::pair<Done, ApplyResult>>* done);
  // --experimental-warning-apply-duration: one warning line for an entry applied slowly.
  void WarnIfSlowApply(const raft::Entry& e, std::chrono::nanoseconds took) const;
  // in_backend: the entry is at or below the backend's index (replayed at start).
  dolmen::Status ApplyConfChange(const raft::Entry& e, bool in_backend);
  // Answers the local proposer of `cc`, if this member proposed it.
  void FinishConfChange(const raft::ConfChange& cc, const dolmen::Status& status);
  void ServeReads();
  void ExpireDeadlines();
  // Both return an error only when the member must stop: the backend sync failed.
  // Commits the store's batch if it is due (or at once), recording the applied index.
  dolmen::Status MaybeCommitBatch();
  dolmen::Status CommitBatch();
  std::chrono::steady_clock::time_point NextWake() const;
  // A checkpoint in two halves, so the backend's fsync runs beside the loop: the first commits
  // the batch and hands the sync to syncer_; the second, on the owner thread once the sync is
  // done (SyncDone), records the snapshot marker and releases the log.
  dolmen::Status MaybeCheckpoint();
  // The first half: the index the checkpoint will cover, or nullopt if nothing is to be done.
  Result<std::optional<uint64_t>> BeginCheckpoint();
  dolmen::Status FinishCheckpoint(uint64_t applied, const dolmen::Status& synced);
  dolmen::Status Checkpoint();  // both halves here and now (at Stop)
  // After a turn: publishes the sizes of the owner's lists (held_*) and the pending gauge.
  void PublishBacklog();
  void Fail(const dolmen::Status& s);
  void FailEverything(const dolmen::Status& s);

  std::chrono::steady_clock::time_point Now() const { return clock_->Now(); }

  Deps deps_;
  SystemClock system_clock_;
  const Clock* clock_;  // deps_.clock or system_clock_
  std::unique_ptr<raft::RawNode> node_;
  const MemberId self_;
  const DriverOptions options_;
  FatalHandler on_fatal_;
  ApplyObserver observer_;
  std::function<void(MemberId)> leader_observer_;
  std::function<void(Revision)> restore_observer_;

  // absl's Mutex spins briefly before it sleeps: the owner thread holds mu_ only to swap the
  // inbox, and a peer's receiver or a gRPC thread arriving in that moment would otherwise
  // sleep and be woken again (std::mutex measured ~1.6 such wake-ups per put on a leader).
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  Inbox inbox_ ABSL_GUARDED_BY(mu_);
  // What the owner thread holds besides the inbox (waiting, in flight, unanswered), published
  // at the end of each turn so callers can apply the bounds without the owner's lists.
  std::atomic<size_t> held_proposals_{0};
  std::atomic<size_t> held_reads_{0};
  std::atomic<size_t> held_conf_changes_{0};
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_{0};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> commit_{0};

  // Owner thread only.
  raft::SoftState logged_soft_state_;       // the last leadership LogSoftState reported
  std::deque<Proposal> waiting_;            // not yet accepted by Raft (no leader yet)
  std::map<uint64_t, Proposal> in_flight_;  // accepted; awaiting apply, by request id
  std::deque<ConfProposal> conf_waiting_;
  std::vector<ConfProposal> conf_in_flight_;
  std::vector<Read> reads_unissued_;
  std::map<std::string, std::vector<Read>> reads_issued_;  // by ReadIndex context
  std::map<std::string, uint64_t> read_leader_;            // context -> leader it was asked of
  std::multimap<uint64_t, Read> reads_ready_;              // by read index
  uint64_t next_read_context_ = 1;
  raft::ConfState conf_state_;
  std::chrono::steady_clock::time_point next_tick_;
  uint64_t entries_since_checkpoint_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_;
  std::vector<Task> tasks_;
  uint64_t last_checkpoint_index_ = 0;
  // Applied but not yet committed to the backend (the store's batch).
  uint64_t uncommitted_entries_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  uint64_t uncommitted_index_ = 0;  // the consistent index the next commit records
  std::chrono::steady_clock::time_point uncommitted_since_;
  std::vector<std::pair<MemberId, Read>> leader_waits_;  // MoveLeader callers
  bool sync_in_flight_ = false;                          // a checkpoint's sync is on syncer_
  raft::ConfState checkpoint_conf_state_;                // as of the index that checkpoint covers
  std::thread thread_;
  PeerContact peer_contact_;  // written on the owner thread, read anywhere
  // One thread for the checkpoints' backend syncs (one at a time: a queue of one).
  std::unique_ptr<ReadPool> syncer_;
};

}  // namespace dolmen::server
