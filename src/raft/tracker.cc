#include "raft/tracker.h"

namespace dolmen::raft {

void ProgressTracker::AddProgress(MemberId id, Index next_index, bool is_learner) {
  Progress pr(next_index, max_inflight_, max_inflight_bytes_, is_learner);
  // A new member counts as active, or a leader that just added it could step down at once.
  pr.recent_active = true;
  progress_.insert_or_assign(id, std::move(pr));
}

void ProgressTracker::Reset(const ConfState& cs, Index next_index) {
  voters_.clear();
  learners_.clear();
  progress_.clear();
  for (MemberId id : cs.voters) {
    voters_.insert(id);
    AddProgress(id, next_index, false);
  }
  for (MemberId id : cs.learners) {
    CHECK(!voters_.count(id)) << "member " << id << " is both voter and learner";
    learners_.insert(id);
    AddProgress(id, next_index, true);
  }
}

Status ProgressTracker::Apply(const ConfChange& cc, Index next_index) {
  const MemberId id = cc.node_id;
  if (id.value() == 0) return InvalidArgument("conf change for member 0");
  switch (cc.type) {
    case ConfChangeType::kAddNode:
      if (IsVoter(id)) return OkStatus();
      if (IsLearner(id)) {
        learners_.erase(id);
        progress_.at(id).is_learner = false;
      } else {
        AddProgress(id, next_index, false);
      }
      voters_.insert(id);
      return OkStatus();
    case ConfChangeType::kAddLearner:
      if (IsLearner(id)) return OkStatus();
      if (IsVoter(id)) {
        if (voters_.size() == 1) return InvalidArgument("demoting the last voter");
        voters_.erase(id);
        progress_.at(id).is_learner = true;
      } else {
        AddProgress(id, next_index, true);
      }
      learners_.insert(id);
      return OkStatus();
    case ConfChangeType::kRemoveNode:
      if (IsVoter(id) && voters_.size() == 1) return InvalidArgument("removing the last voter");
      voters_.erase(id);
      learners_.erase(id);
      progress_.erase(id);
      return OkStatus();
  }
  return InvalidArgument("unknown conf change type");
}

ConfState ProgressTracker::GetConfState() const {
  return ConfState{std::vector<MemberId>(voters_.begin(), voters_.end()),
                   std::vector<MemberId>(learners_.begin(), learners_.end())};
}

Progress* ProgressTracker::Get(MemberId id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::Get(MemberId id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

Index ProgressTracker::QuorumCommitted() const {
  return QuorumCommittedIndex(voters_, [this](MemberId id) { return progress_.at(id).match; });
}

bool ProgressTracker::QuorumActive(MemberId self) const {
  return raft::QuorumActive(
      voters_, [this, self](MemberId id) { return id == self || progress_.at(id).recent_active; });
}

void ProgressTracker::RecordVote(MemberId id, bool granted) { votes_.emplace(id, granted); }

VoteResult ProgressTracker::TallyVotes() const { return QuorumVoteResult(voters_, votes_); }

}  // namespace dolmen::raft
