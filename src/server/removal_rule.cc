#include "server/removal_rule.h"

#include <algorithm>

#include "log/log.h"

namespace dolmen::server {
namespace {

using Clock = std::chrono::steady_clock;

std::string Describe(const RemovalCandidateView& m) {
  return std::string(m.is_learner ? "learner " : "voter ") +
         (m.name.empty() ? std::string("(unstarted)") : m.name) + " (" + log::Hex(m.id.value()) +
         ")";
}

long long Ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

struct VoterCounts {
  size_t voters = 0;
  size_t healthy = 0;
};

VoterCounts CountVoters(const std::vector<RemovalCandidateView>& members) {
  VoterCounts c;
  for (const auto& m : members) {
    if (m.is_learner) continue;
    ++c.voters;
    if (m.healthy || m.is_self) ++c.healthy;
  }
  return c;
}

size_t QuorumOf(size_t voters) { return voters / 2 + 1; }

// Empty when removing `m` keeps a healthy quorum now and after; else why not.
std::string QuorumRefusal(const RemovalCandidateView& m, const VoterCounts& now) {
  if (m.is_learner) return "";
  if (now.healthy < QuorumOf(now.voters)) {
    return "only " + std::to_string(now.healthy) + " of " + std::to_string(now.voters) +
           " voters are healthy, fewer than the quorum of " + std::to_string(QuorumOf(now.voters)) +
           " that must commit the removal";
  }
  const size_t after = now.voters - 1;
  const size_t healthy_after = now.healthy - ((m.healthy || m.is_self) ? 1 : 0);
  if (after == 0) return "it is the last voter";
  if (healthy_after < QuorumOf(after)) {
    return "removing it would leave " + std::to_string(healthy_after) + " healthy of " +
           std::to_string(after) + " voters, fewer than their quorum of " +
           std::to_string(QuorumOf(after));
  }
  return "";
}

}  // namespace

const char* RemovalVerdictName(RemovalVerdict::Kind kind) {
  switch (kind) {
    case RemovalVerdict::Kind::kRemove:
      return "remove";
    case RemovalVerdict::Kind::kWaitingForGrace:
      return "waiting for the grace period";
    case RemovalVerdict::Kind::kRefusedByQuorum:
      return "refused by the quorum rule";
    case RemovalVerdict::Kind::kRefusedSelf:
      return "refused: this member leads";
    case RemovalVerdict::Kind::kWaitingForTurn:
      return "waiting: one removal at a time";
  }
  return "?";
}

RemovalPlan DecideRemoval(const std::vector<RemovalCandidateView>& members, Clock::time_point now,
                          std::chrono::milliseconds grace) {
  std::vector<const RemovalCandidateView*> dead;
  for (const auto& m : members) {
    if (m.dead_since) dead.push_back(&m);
  }
  std::sort(dead.begin(), dead.end(), [](const auto* a, const auto* b) {
    if (a->is_learner != b->is_learner) return a->is_learner;
    if (a->healthy != b->healthy) return !a->healthy;
    if (*a->dead_since != *b->dead_since) return *a->dead_since < *b->dead_since;
    return a->id.value() < b->id.value();
  });
  const VoterCounts counts = CountVoters(members);
  RemovalPlan plan;
  for (const RemovalCandidateView* m : dead) {
    const std::string who = Describe(*m) + ": " + m->why_dead;
    const auto dead_for = now - *m->dead_since;
    using Kind = RemovalVerdict::Kind;
    if (dead_for < grace) {
      plan.verdicts.push_back({Kind::kWaitingForGrace, m->id,
                               who + "; removing it once the grace period is over (dead for " +
                                   std::to_string(Ms(dead_for)) + " of " +
                                   std::to_string(grace.count()) + " ms)"});
      continue;
    }
    if (m->is_self) {
      plan.verdicts.push_back({Kind::kRefusedSelf, m->id,
                               who + "; not removed by itself while it leads: the next leader "
                                     "decides"});
      continue;
    }
    if (std::string why = QuorumRefusal(*m, counts); !why.empty()) {
      plan.verdicts.push_back({Kind::kRefusedByQuorum, m->id,
                               who + "; not removed: " + why + " (" +
                                   (m->healthy ? "it is still healthy" : "it is unhealthy") + ")"});
      continue;
    }
    if (plan.remove) {
      plan.verdicts.push_back(
          {Kind::kWaitingForTurn, m->id, who + "; waits for the removal in progress"});
      continue;
    }
    plan.remove = m->id;
    plan.verdicts.push_back({Kind::kRemove, m->id,
                             who + "; removing it: dead for " + std::to_string(Ms(dead_for)) +
                                 " ms (grace " + std::to_string(grace.count()) + " ms), " +
                                 (m->is_learner ? "a learner does not vote"
                                                : "the remaining voters keep a healthy quorum")});
  }
  return plan;
}

}  // namespace dolmen::server
