// The member core's tuning: batch sizes, the bound on every queue and waiting list, checkpoint
// and backend-commit cadence, Raft's time. Shared by the core (member_core.h) and its thread
// shell (driver.h); ServerConfig::driver carries it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace dolmen::server {

struct DriverOptions {
  // Bounds on one proposal batch.
  size_t max_batch_entries = 1024;
  size_t max_batch_bytes = 8u << 20;
  // Bounds on what waits for the owner thread; beyond them a request is refused at once with
  // kTooManyRequests (etcd's "etcdserver: too many requests"), never queued. Proposals count
  // from the call until applied (inbox, waiting for a leader, in flight); reads until their
  // barrier passed; tasks until run; conf changes until applied; MoveLeader callers until the
  // transferee leads. 20,000 proposals of etcd's 1.5 MiB request limit would be 30 GiB, but a
  // proposal's bytes are bounded again by max_batch_bytes per Raft turn and by Raft's own
  // uncommitted-log limit; in practice a queue of 20,000 is a second or two of writes.
  size_t max_pending = 20000;
  size_t max_pending_reads = 20000;
  size_t max_pending_tasks = 4096;
  size_t max_pending_conf_changes = 128;
  size_t max_leader_waits = 128;
  // Raft messages from peers waiting for the owner thread. Beyond it they are dropped, as
  // etcd's rafthttp drops them when its 4096-message receive buffer is full ("dropped internal
  // Raft message since receiving buffer is full (overloaded network)"): Raft retransmits what
  // matters. Snapshot messages are never dropped (their image was already received).
  size_t max_pending_messages = 4096;
  // Peer reports (unreachable, snapshot done) and leader transfers waiting for the owner
  // thread; beyond it they are dropped (a report is a hint Raft recovers without; a transfer is
  // asked again by its caller).
  size_t max_pending_reports = 1024;
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

}  // namespace dolmen::server
