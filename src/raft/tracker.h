// ProgressTracker: the current configuration (voters, learners) with one Progress per member,
// and the votes of the election in progress. Owned by Raft.
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
  // Applies one single-member change. Returns kInvalidArgument if it would leave no voter.
  Status Apply(const ConfChange& cc, Index next_index);
  ConfState GetConfState() const;

  bool IsVoter(MemberId id) const { return voters_.count(id) > 0; }
  bool IsLearner(MemberId id) const { return learners_.count(id) > 0; }
  bool IsMember(MemberId id) const { return progress_.count(id) > 0; }
  const std::set<MemberId>& voters() const { return voters_; }
  const std::set<MemberId>& learners() const { return learners_; }

  Progress* Get(MemberId id);
  const Progress* Get(MemberId id) const;
  std::map<MemberId, Progress>& progress() { return progress_; }
  const std::map<MemberId, Progress>& progress() const { return progress_; }

  // The largest index a majority of voters has matched.
  Index QuorumCommitted() const;
  // Whether a majority of voters was recently active (the leader counts itself).
  bool QuorumActive(MemberId self) const;

  void ResetVotes() { votes_.clear(); }
  void RecordVote(MemberId id, bool granted);
  VoteResult TallyVotes() const;

 private:
  void AddProgress(MemberId id, Index next_index, bool is_learner);

  size_t max_inflight_;
  uint64_t max_inflight_bytes_;
  std::set<MemberId> voters_;
  std::set<MemberId> learners_;
  std::map<MemberId, Progress> progress_;  // voters and learners; ordered for determinism
  std::map<MemberId, bool> votes_;
};

}  // namespace dolmen::raft
