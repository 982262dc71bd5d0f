// RawNode: the API the server drives Raft through, from one owner thread.
//
// Inputs:  Tick(), Step(message from a peer), Propose(), ProposeConfChange(), ReadIndex(),
//          TransferLeader(), Campaign(), ReportUnreachable(), ReportSnapshot().
// Output:  when HasReady(), GetReady() returns one batch of work. The caller must, in order:
//   1. persist rd.snapshot (if any), then rd.entries (appended; they replace any stored entries
//      from their first index on), then rd.hard_state (if any), durably (fdatasync) when
//      rd.must_sync: entries and hard state belong to one atomic write;
//   2. send rd.messages (only now: a vote or an acknowledgement promises durable state) —
//      unless rd.send_before_persist, when they may go before step 1, e.g. the leader's appends
//      travel to followers while it writes them itself;
//   3. apply rd.snapshot, then rd.committed_entries in order, calling ApplyConfChange() for each
//      kConfChange entry; hand rd.read_states to the waiting reads (each is served once the
//      applied index reaches its index);
//   4. call Advance(rd).
// Between GetReady and Advance, Step/Tick/Propose may still be called; GetReady may not.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/conf_change.h"
#include "raft/config.h"
#include "raft/raft.h"

namespace dolmen::raft {

// Volatile state the application may want to watch (who leads); never persisted.
struct SoftState {
  MemberId lead;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

struct Ready {
  std::optional<SoftState> soft_state;  // set when it changed
  std::optional<HardState> hard_state;  // set when it changed: persist it
  std::vector<ReadState> read_states;
  std::vector<Entry> entries;            // to append to the log, before sending
  std::optional<Snapshot> snapshot;      // to persist and apply
  std::vector<Entry> committed_entries;  // to apply, in order, after persisting
  std::vector<Message> messages;         // to send, after persisting
  bool must_sync = false;                // entries, or a term or vote change, must reach the disk
  // The messages may be sent before (in parallel with) persisting: this node leads and its term
  // and vote are already durable, so its messages promise nothing about its own disk, and its
  // own entries count towards the commit quorum only after Advance (thesis section 10.2.1).
  bool send_before_persist = false;
};

struct NodeStatus {
  MemberId id;
  HardState hard_state;
  SoftState soft_state;
  Index applied;
  Index last_index;
  MemberId lead_transferee;
  std::map<MemberId, std::string> progress;  // the leader's view of each member, for debugging
};

class RawNode {
 public:
  // Validates the config and restores state from config.storage.
  static Result<std::unique_ptr<RawNode>> Create(const Config& config);

  // One unit of logical time (the server ticks every heartbeat interval / heartbeat_ticks).
  void Tick();
  // Starts an election now, instead of waiting for the timeout.
  Status Campaign();
  // Proposes an entry. kNoLeader without a leader; kResourceExhausted when the leader's
  // uncommitted log is full; kLeaderChanged during a leader transfer. Ok means "accepted for
  // replication", not "committed": the entry may still be lost if leadership changes.
  Status Propose(std::string data);
  // Proposes several entries as one: one append to the log and one message per follower, which
  // is how the server should submit the requests that queued up while it handled a Ready.
  // All or nothing: the same errors as Propose. At most kMaxEntriesPerProposal entries.
  Status ProposeBatch(std::vector<std::string> data);
  static constexpr size_t kMaxEntriesPerProposal = 4096;
  // Proposes a membership change. kFailedPrecondition while another change is unapplied.
  Status ProposeConfChange(const ConfChange& cc);
  // Proposes a joint-consensus change (several members at once), or, with no changes, leaving
  // the joint configuration (needed only with kJointExplicit).
  Status ProposeConfChangeV2(const ConfChangeV2& cc);
  // Applies a committed conf change entry; returns the new configuration (to record in
  // snapshots). Decode entries with DecodeConfChangeV2 to handle both versions.
  ConfState ApplyConfChange(const ConfChange& cc);
  ConfState ApplyConfChangeV2(const ConfChangeV2& cc);
  // A message from a peer. kInvalidArgument for a local-only message type.
  Status Step(const Message& m);
  // Requests a linearizable read; the answer arrives as a ReadState carrying `context`.
  Status ReadIndex(std::string context);
  // Asks the leader to hand leadership to `transferee` (MoveLeader).
  void TransferLeader(MemberId transferee);
  // The transport could not deliver to `id`.
  void ReportUnreachable(MemberId id);
  // The transport finished sending a snapshot to `id`, successfully or not.
  void ReportSnapshot(MemberId id, bool ok);

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& rd);

  NodeStatus GetStatus() const;
  // Read-only view of the state machine, for tests and the simulator's checkers.
  const Raft& raft() const { return *raft_; }

 private:
  explicit RawNode(const Config& config);
  SoftState CurrentSoftState() const { return SoftState{raft_->lead(), raft_->role()}; }

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_state_;
  HardState prev_hard_state_;
  bool ready_outstanding_ = false;
};

}  // namespace dolmen::raft
