// ProgressTracker: the current configuration with one Progress per member, and the votes of the
// election in progress. Owned by Raft.
//
// The configuration is normally a set of voters plus learners. During a joint-consensus change
// it also has the outgoing voters: elections and commitment then need a majority of each set
// (Raft paper §6), and `learners_next` holds outgoing voters that become learners on leaving.
#pragma once

#include <map>
#include <set>
#include <vector>

#include "raft/conf_change.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/types.h"

namespace dolmen::raft {

class ProgressTracker {
 public:
  ProgressTracker(size_t max_inflight, uint64_t max_inflight_bytes)
      : max_inflight_(max_inflight), max_inflight_bytes_(max_inflight_bytes) {}

  // Replaces the configuration; every member starts probing at next_index.
  void Reset(const ConfState& cs, Index next_index);
  // Applies a change (simple, enter joint, or leave joint). kInvalidArgument if it is not
  // allowed from the current configuration (nothing changes then).
  Status Apply(const ConfChangeV2& cc, Index next_index);
  Status Apply(const ConfChange& cc, Index next_index) { return Apply(ToV2(cc), next_index); }
  ConfState GetConfState() const;

  // A voter of the incoming or (while joint) the outgoing configuration.
  bool IsVoter(MemberId id) const { return voters_.count(id) > 0 || outgoing_.count(id) > 0; }
  bool IsLearner(MemberId id) const { return progress_.count(id) > 0 && !IsVoter(id); }
  bool IsMember(MemberId id) const { return progress_.count(id) > 0; }
  bool IsJoint() const { return !outgoing_.empty(); }
  bool auto_leave() const { return auto_leave_; }
  const std::set<MemberId>& voters() const { return voters_; }  // incoming
  const std::set<MemberId>& voters_outgoing() const { return outgoing_; }
  const std::set<MemberId>& learners() const { return learners_; }

  Progress* Get(MemberId id);
  const Progress* Get(MemberId id) const;
  std::map<MemberId, Progress>& progress() { return progress_; }
  const std::map<MemberId, Progress>& progress() const { return progress_; }

  // The largest index a majority of voters (of both configurations, while joint) has matched.
  Index QuorumCommitted() const;
  // Whether a majority of voters was recently active (the leader counts itself).
  bool QuorumActive(MemberId self) const;
  // Whether `acked` (plus self) holds a majority (of both configurations, while joint).
  bool HasQuorum(const std::function<bool(MemberId)>& acked) const;

  void ResetVotes() { votes_.clear(); }
  void RecordVote(MemberId id, bool granted);
  VoteResult TallyVotes() const;

 private:
  Status ApplySimple(const ConfChangeSingle& c, Index next_index);
  void EnterJoint(const ConfChangeV2& cc, Index next_index);
  void LeaveJoint();
  void AddProgress(MemberId id, Index next_index);
  // Drops progress of members in no set, and refreshes each Progress's learner flag.
  void Tidy();

  size_t max_inflight_;
  uint64_t max_inflight_bytes_;
  std::set<MemberId> voters_;         // incoming voters
  std::set<MemberId> outgoing_;       // outgoing voters; empty unless joint
  std::set<MemberId> learners_;       // never voters in either configuration
  std::set<MemberId> learners_next_;  // outgoing voters that become learners on leaving
  bool auto_leave_ = false;
  std::map<MemberId, Progress> progress_;  // every member; ordered for determinism
  std::map<MemberId, bool> votes_;
};

}  // namespace dolmen::raft
