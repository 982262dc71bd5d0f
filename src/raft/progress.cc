#include "raft/progress.h"

#include <algorithm>
#include <sstream>

namespace dolmen::raft {

std::string_view ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "unknown";
}

void Progress::ResetTo(Index next_index) {
  match = Index(0);
  next = next_index;
  state = ProgressState::kProbe;
  pending_snapshot = Index(0);
  recent_active = false;
  probe_sent = false;
  sent_commit = Index(0);
  inflights.Reset();
}

void Progress::BecomeProbe() {
  // Coming back from a snapshot, the follower holds at least the snapshot.
  if (state == ProgressState::kSnapshot) {
    const Index from_snapshot = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, from_snapshot + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  pending_snapshot = Index(0);
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  pending_snapshot = Index(0);
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(Index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

void Progress::SentEntries(size_t entries, Index last, uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next = last + 1;
        inflights.Add(last, bytes);
      }
      break;
    case ProgressState::kProbe:
      if (entries > 0) probe_sent = true;
      break;
    case ProgressState::kSnapshot:
      CHECK(false) << "sending entries to a follower in snapshot state";
  }
}

bool Progress::MaybeDecreaseTo(Index rejected, Index hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match is an old message.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe state only the last probe sent (at next - 1) can be answered meaningfully.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  std::ostringstream os;
  os << ProgressStateName(state) << " match=" << match << " next=" << next;
  if (is_learner) os << " learner";
  if (state == ProgressState::kSnapshot) os << " pending_snapshot=" << pending_snapshot;
  if (inflights.count() > 0) os << " inflight=" << inflights.count();
  return os.str();
}

}  // namespace dolmen::raft
