#include "server/learner_promoter.h"

#include <set>

#include "log/log.h"

namespace dolmen::server {

LearnerPromoter::LearnerPromoter(LearnerPromoterOptions options, Deps deps)
    : options_(options), deps_(std::move(deps)) {}

LearnerPromoter::~LearnerPromoter() { Stop(); }

void LearnerPromoter::Start() {
  thread_.Start(options_.interval, [this] {
    Round();
    return options_.interval;
  });
}

void LearnerPromoter::Stop() { thread_.Stop(); }

std::string LearnerPromoter::Describe(const Learner& learner) const {
  return "learner " + (learner.name.empty() ? std::string("(unstarted)") : learner.name) + " (" +
         log::Hex(learner.id.value()) + ")";
}

void LearnerPromoter::Round() {
  if (!deps_.is_leader()) {
    // Only the leader knows how far learners are; a new leader starts every window afresh.
    in_sync_since_.clear();
    return;
  }
  const auto now = deps_.clock->Now();
  const std::vector<Learner> learners = deps_.learners();
  std::set<uint64_t> present;
  for (const Learner& l : learners) present.insert(l.id.value());
  for (auto it = in_sync_since_.begin(); it != in_sync_since_.end();) {
    it = present.count(it->first) ? std::next(it) : in_sync_since_.erase(it);
  }
  for (const Learner& learner : learners) {
    const uint64_t id = learner.id.value();
    auto since = in_sync_since_.find(id);
    Status ready = learner.name.empty()
                       ? Status(Code::kFailedPrecondition, "it has not started yet")
                       : deps_.check_ready(learner.id);
    if (!ready.ok()) {
      if (since != in_sync_since_.end()) {
        deps_.log("auto-promote-learners: " + Describe(learner) +
                  " is no longer in sync with the leader (" + ready.message() +
                  "); its window starts again");
        in_sync_since_.erase(since);
      }
      continue;
    }
    if (since == in_sync_since_.end()) {
      in_sync_since_[id] = now;
      deps_.log("auto-promote-learners: " + Describe(learner) +
                " is in sync with the leader (its match index is within 90% of the leader's); "
                "promoting it if it stays in sync for " +
                std::to_string(options_.window.count()) + " ms");
      continue;
    }
    const auto in_sync_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - since->second);
    if (in_sync_ms < options_.window) continue;
    deps_.log("auto-promote-learners: promoting " + Describe(learner) +
              ": in sync with the leader for " + std::to_string(in_sync_ms.count()) + " ms");
    Status promoted = deps_.promote(learner.id);
    in_sync_since_.erase(id);
    deps_.log(promoted.ok()
                  ? "auto-promote-learners: promoted " + Describe(learner) + " to a voting member"
                  : "auto-promote-learners: promoting " + Describe(learner) +
                        " failed: " + promoted.message() + "; will try again");
    return;  // one at a time: the next learner waits for the next round
  }
}

}  // namespace dolmen::server
