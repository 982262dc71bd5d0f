// Progress: what a leader knows about one follower's log, and how it sends to it.
//
//   kProbe      the leader does not know where the follower's log ends. It sends one append per
//               heartbeat interval and backs off on rejection until one is accepted.
//   kReplicate  the follower is known to match up to `match`. The leader streams appends
//               optimistically (advancing `next` as it sends), bounded by the inflight window.
//   kSnapshot   the follower needs entries the leader has compacted; a snapshot is on its way and
//               nothing else is sent until it is reported done.
#pragma once

#include <string>

#include "raft/index_math.h"
#include "raft/inflights.h"

namespace dolmen::raft {

enum class ProgressState { kProbe, kReplicate, kSnapshot };

std::string_view ProgressStateName(ProgressState state);

class Progress {
 public:
  Progress(Index next, size_t max_inflight, uint64_t max_inflight_bytes, bool is_learner)
      : next(next), inflights(max_inflight, max_inflight_bytes), is_learner(is_learner) {}

  // Forgets everything about the follower (a new term): probe from next.
  void ResetTo(Index next_index);
  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);

  // An acknowledgement up to n: raises match (and next). False if it was stale.
  bool MaybeUpdate(Index n);
  // Bookkeeping after sending an append of `entries` entries ending at `last`.
  void SentEntries(size_t entries, Index last, uint64_t bytes);
  // The follower rejected an append after `rejected`; `hint` is where the leader should try
  // next. False if the rejection is stale (the leader already moved past it).
  bool MaybeDecreaseTo(Index rejected, Index hint);
  // Whether the leader must hold further appends to this follower for now.
  bool IsPaused() const;

  std::string DebugString() const;

  Index match;
  Index next;
  ProgressState state = ProgressState::kProbe;
  Index pending_snapshot;  // kSnapshot: the index of the snapshot being sent
  // Heard from since the last CheckQuorum: CheckQuorum steps down a leader that did not hear from
  // a quorum, and a snapshot is only sent to a follower that is alive.
  bool recent_active = false;
  // kProbe: an append is outstanding; the next one waits for a heartbeat response.
  bool probe_sent = false;
  // The highest commit index sent to the follower: when it lags the leader's, the leader sends
  // an append (possibly empty) so the follower applies without waiting for a heartbeat.
  Index sent_commit;
  Inflights inflights;
  bool is_learner = false;
};

}  // namespace dolmen::raft
