// Raft: the consensus state machine of one node (Raft paper §5, thesis §4, §6, §9.6). Inputs are
// Step (a message), Tick (one unit of logical time) and the log's persistence acknowledgements;
// outputs are queued messages, the log's unstable entries, the hard state and read states, which
// RawNode packages into a Ready. No I/O, no clock, no threads: one owner thread calls it.
//
// Roles: follower, pre-candidate (§9.6: asks "would you vote for me?" without bumping the term,
// so a partitioned node cannot disrupt the cluster when it comes back), candidate, leader.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "raft/conf_change.h"
#include "raft/config.h"
#include "raft/message.h"
#include "raft/raft_log.h"
#include "raft/read_index.h"
#include "raft/tracker.h"

namespace dolmen::raft {

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view RoleName(Role role);

class Raft {
 public:
  // The config must be valid (RawNode::Create checks). Restores term, vote, commit and the
  // configuration from config.storage.
  explicit Raft(const Config& config);

  // Feeds one message, remote or local. Returns kNoLeader / kNotLeader / kResourceExhausted /
  // kFailedPrecondition when a proposal or read cannot be accepted; everything else is Ok (an
  // invalid or stale message is dropped, as the network could have dropped it).
  Status Step(const Message& m);
  void Tick();

  // Applies a committed conf change (called when the application applies its entry).
  ConfState ApplyConfChange(const ConfChangeV2& cc);
  // Checks a conf change the leader is about to propose against the current configuration.
  Status ValidateConfChange(const ConfChangeV2& cc) const;

  // For RawNode's Ready/Advance.
  std::vector<Message> TakeMessages();
  std::vector<ReadState> TakeReadStates();
  bool HasMessages() const { return !msgs_.empty(); }
  bool HasReadStates() const { return !read_states_.empty(); }
  HardState GetHardState() const;
  void ReduceUncommittedSize(const std::vector<Entry>& committed);
  // The application has applied up to `index` (and maybe a snapshot).
  void AppliedTo(Index index);
  // The caller persisted the log up to `last` (RawNode::Advance): on the leader, its own copy
  // now counts towards the commit quorum.
  void OnPersisted(Index last);

  MemberId id() const { return id_; }
  Term term() const { return term_; }
  MemberId vote() const { return vote_; }
  MemberId lead() const { return lead_; }
  Role role() const { return role_; }
  MemberId lead_transferee() const { return lead_transferee_; }
  const RaftLog& log() const { return log_; }
  RaftLog& mutable_log() { return log_; }
  const ProgressTracker& tracker() const { return tracker_; }
  uint64_t uncommitted_size() const { return uncommitted_size_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  // Whether this node may campaign: a voter with no snapshot waiting to be applied.
  bool Promotable() const;

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  // Role transitions.
  void BecomeFollower(Term term, MemberId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(Term term);
  void ResetRandomizedElectionTimeout();

  // Per-role message handling (etcd raft's stepLeader / stepCandidate / stepFollower split).
  Status StepLeader(const Message& m);
  Status StepCandidate(const Message& m);
  Status StepFollower(const Message& m);
  // §5.1: adopts a newer term, answers or drops an older one. False if m must be dropped.
  bool StepTermCheck(const Message& m);
  void StepVoteRequest(const Message& m);

  void Hup(CampaignType type);
  void Campaign(CampaignType type);
  VoteResult Poll(MemberId from, bool granted);
  bool HasUnappliedConfChanges() const;

  // Leader: proposals, replication, commit.
  Status Propose(const Message& m);
  Status AppendEntries(std::vector<Entry> entries);
  bool MaybeSendAppend(MemberId to, bool send_if_empty);
  bool SendSnapshot(MemberId to, Progress* pr);
  void SendHeartbeat(MemberId to, const std::string& context);
  void BroadcastAppend();
  void BroadcastHeartbeat();
  bool MaybeCommit();
  bool CommittedEntryInCurrentTerm() const;
  void HandleAppendResponse(const Message& m, Progress* pr);
  void HandleHeartbeatResponse(const Message& m, Progress* pr);
  void HandleTransferLeader(const Message& m);
  void SendTimeoutNow(MemberId to);
  void AbortLeaderTransfer() { lead_transferee_ = MemberId(0); }
  void MaybeLeaveJoint();

  // Leader: reads.
  Status HandleReadIndex(const Message& m);
  void MaybeStartReadRound();
  void MaybeFinishReadRound(const std::set<MemberId>& acks);
  void RespondToRead(const ReadRequest& request, Index index);

  // Follower: log.
  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool Restore(const Snapshot& s);

  void Send(Message m);

  MemberId id_;
  Term term_;
  MemberId vote_;
  MemberId lead_;
  Role role_ = Role::kFollower;
  RaftLog log_;
  ProgressTracker tracker_;
  ReadIndexQueue reads_;
  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;

  MemberId lead_transferee_;
  // The leader may not propose a conf change until the previous one (at this index) is applied.
  Index pending_conf_index_;
  uint64_t uncommitted_size_ = 0;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int election_timeout_;
  int heartbeat_timeout_;
  int randomized_election_timeout_;

  const Config config_;
  SeededRandom random_;
};

}  // namespace dolmen::raft
