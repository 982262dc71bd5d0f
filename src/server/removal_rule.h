// Which dead member the leader may remove now (issue 17 item 5; docs/membership.md, "Dead-member
// removal"). A pure function of the member list, each member's health and how long it has looked
// dead, so every case is unit-tested without a cluster; DeadMemberRemover (dead_member_remover.h)
// is the I/O loop around it.
//
// The rules, in the order they are checked for each member that looks dead:
//   1. grace: it must have looked dead for the whole grace period (a replaced instance's member
//      is not removed while AWS still reports the termination in flight, a short partition does
//      not cost a voter);
//   2. never this member itself (the leader): a new leader decides about the old one;
//   3. quorum (Consul autopilot's min-quorum rule): removing a voter must leave at least a
//      quorum of the remaining voters healthy, and the current voters must have a healthy
//      quorum to commit the removal at all. Learners do not vote: removing one is always safe;
//   4. one at a time: at most one removal per decision; the others wait for the next round.
// Dead learners are taken first (they cost nothing), then unhealthy voters, then by how long
// they have looked dead, so the removal that restores strength soonest goes first.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"

namespace dolmen::server {

struct RemovalCandidateView {
  MemberId id;
  std::string name;  // for the log; may be empty (not started yet)
  bool is_learner = false;
  bool is_self = false;
  // The leader heard from it recently (the leader itself always counts as healthy).
  bool healthy = false;
  // Since when it has looked dead (its instance terminated or gone, or unreachable); nullopt
  // for a member that looks alive.
  std::optional<std::chrono::steady_clock::time_point> dead_since;
  std::string why_dead;  // "instance i-0b is Terminated", ...
};

struct RemovalVerdict {
  enum class Kind { kRemove, kWaitingForGrace, kRefusedByQuorum, kRefusedSelf, kWaitingForTurn };
  Kind kind;
  MemberId id;
  std::string reason;  // a whole sentence for the log: what, and why
};

struct RemovalPlan {
  std::optional<MemberId> remove;        // the one member to remove now, if any
  std::vector<RemovalVerdict> verdicts;  // one per member that looks dead, in decision order
};

RemovalPlan DecideRemoval(const std::vector<RemovalCandidateView>& members,
                          std::chrono::steady_clock::time_point now,
                          std::chrono::milliseconds grace);

const char* RemovalVerdictName(RemovalVerdict::Kind kind);

}  // namespace dolmen::server
