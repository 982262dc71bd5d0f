#include "raft/tracker.h"

#include <algorithm>

namespace dolmen::raft {

namespace {

std::set<MemberId> ToSet(const std::vector<MemberId>& v) { return {v.begin(), v.end()}; }
std::vector<MemberId> ToVector(const std::set<MemberId>& s) { return {s.begin(), s.end()}; }

}  // namespace

void ProgressTracker::AddProgress(MemberId id, Index next_index) {
  if (progress_.count(id)) return;
  Progress pr(next_index, max_inflight_, max_inflight_bytes_, false);
  // A new member counts as active, or a leader that just added it could step down at once.
  pr.recent_active = true;
  progress_.emplace(id, std::move(pr));
}

void ProgressTracker::Tidy() {
  for (auto it = progress_.begin(); it != progress_.end();) {
    const MemberId id = it->first;
    const bool member = IsVoter(id) || learners_.count(id) || learners_next_.count(id);
    if (!member) {
      it = progress_.erase(it);
      continue;
    }
    it->second.is_learner = !IsVoter(id);
    ++it;
  }
}

void ProgressTracker::Reset(const ConfState& cs, Index next_index) {
  voters_ = ToSet(cs.voters);
  outgoing_ = ToSet(cs.voters_outgoing);
  learners_ = ToSet(cs.learners);
  learners_next_ = ToSet(cs.learners_next);
  auto_leave_ = cs.auto_leave;
  progress_.clear();
  for (MemberId id : voters_) AddProgress(id, next_index);
  for (MemberId id : outgoing_) AddProgress(id, next_index);
  for (MemberId id : learners_) {
    CHECK(!IsVoter(id)) << "member " << id << " is both voter and learner";
    AddProgress(id, next_index);
  }
  for (MemberId id : learners_next_) AddProgress(id, next_index);
  Tidy();
}

Status ProgressTracker::ApplySimple(const ConfChangeSingle& c, Index next_index) {
  const MemberId id = c.node_id;
  switch (c.type) {
    case ConfChangeType::kAddNode:
      learners_.erase(id);
      learners_next_.erase(id);
      voters_.insert(id);
      AddProgress(id, next_index);
      return OkStatus();
    case ConfChangeType::kAddLearner:
      voters_.erase(id);
      AddProgress(id, next_index);
      // An outgoing voter keeps voting until the joint configuration is left.
      if (outgoing_.count(id)) {
        learners_next_.insert(id);
      } else {
        learners_.insert(id);
      }
      return OkStatus();
    case ConfChangeType::kRemoveNode:
      voters_.erase(id);
      learners_.erase(id);
      learners_next_.erase(id);
      return OkStatus();
  }
  return InvalidArgument("unknown conf change type");
}

void ProgressTracker::EnterJoint(const ConfChangeV2& cc, Index next_index) {
  outgoing_ = voters_;
  auto_leave_ = cc.AutoLeave();
  for (const ConfChangeSingle& c : cc.changes) ApplySimple(c, next_index).IgnoreError();
}

void ProgressTracker::LeaveJoint() {
  for (MemberId id : learners_next_) learners_.insert(id);
  learners_next_.clear();
  outgoing_.clear();
  auto_leave_ = false;
}

Status ProgressTracker::Apply(const ConfChangeV2& cc, Index next_index) {
  if (cc.changes.size() > ConfChangeV2::kMaxChanges) return InvalidArgument("too many changes");
  for (const ConfChangeSingle& c : cc.changes) {
    if (c.node_id.value() == 0) return InvalidArgument("conf change for member 0");
  }
  // Work on a copy so that a refused change leaves nothing behind.
  ProgressTracker next = *this;
  if (cc.LeavesJoint()) {
    if (!IsJoint()) return InvalidArgument("not in a joint configuration");
    next.LeaveJoint();
  } else if (IsJoint()) {
    return InvalidArgument("a joint configuration must be left before another change");
  } else if (cc.EntersJoint()) {
    next.EnterJoint(cc, next_index);
  } else {
    RETURN_IF_ERROR(next.ApplySimple(cc.changes[0], next_index));
    // One member at a time: the voter sets before and after differ by at most one member.
    std::vector<MemberId> diff;
    std::set_symmetric_difference(voters_.begin(), voters_.end(), next.voters_.begin(),
                                  next.voters_.end(), std::back_inserter(diff));
    if (diff.size() > 1) return InvalidArgument("a simple change may alter one voter only");
  }
  if (next.voters_.empty()) return InvalidArgument("the change leaves no voter");
  next.Tidy();
  *this = std::move(next);
  return OkStatus();
}

ConfState ProgressTracker::GetConfState() const {
  ConfState cs;
  cs.voters = ToVector(voters_);
  cs.learners = ToVector(learners_);
  cs.voters_outgoing = ToVector(outgoing_);
  cs.learners_next = ToVector(learners_next_);
  cs.auto_leave = auto_leave_;
  return cs;
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
  auto match = [this](MemberId id) { return progress_.at(id).match; };
  const Index incoming = QuorumCommittedIndex(voters_, match);
  if (!IsJoint()) return incoming;
  return std::min(incoming, QuorumCommittedIndex(outgoing_, match));
}

bool ProgressTracker::HasQuorum(const std::function<bool(MemberId)>& acked) const {
  return raft::QuorumActive(voters_, acked) && (!IsJoint() || raft::QuorumActive(outgoing_, acked));
}

bool ProgressTracker::QuorumActive(MemberId self) const {
  return HasQuorum(
      [this, self](MemberId id) { return id == self || progress_.at(id).recent_active; });
}

void ProgressTracker::RecordVote(MemberId id, bool granted) { votes_.emplace(id, granted); }

VoteResult ProgressTracker::TallyVotes() const {
  const VoteResult incoming = QuorumVoteResult(voters_, votes_);
  if (!IsJoint()) return incoming;
  const VoteResult outgoing = QuorumVoteResult(outgoing_, votes_);
  if (incoming == VoteResult::kLost || outgoing == VoteResult::kLost) return VoteResult::kLost;
  if (incoming == VoteResult::kWon && outgoing == VoteResult::kWon) return VoteResult::kWon;
  return VoteResult::kPending;
}

}  // namespace dolmen::raft
