#include "server/auto_compactor.h"

#include <utility>

#include "base/check.h"

namespace dolmen::server {

AutoCompactor::AutoCompactor(std::unique_ptr<CompactionPolicy> policy, Deps deps)
    : policy_(std::move(policy)), deps_(std::move(deps)) {
  CHECK(policy_ != nullptr && deps_.clock != nullptr && deps_.is_leader && deps_.current_revision &&
        deps_.compact && deps_.log)
      << "AutoCompactor needs a policy and every dependency";
}

AutoCompactor::~AutoCompactor() { Stop(); }

void AutoCompactor::Start() {
  CHECK(!thread_.joinable());
  deps_.log("auto compaction on (" + policy_->Describe() + ")");
  thread_ = std::thread([this] { Run(); });
}

void AutoCompactor::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AutoCompactor::WaitOrStop(std::chrono::nanoseconds d) {
  if (deps_.wait) {
    if (!deps_.wait(d)) return false;
    std::lock_guard lock(mu_);
    return !stopping_;
  }
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void AutoCompactor::Run() {
  for (;;) {
    policy_->Sample(deps_.current_revision());
    if (!WaitOrStop(policy_->round_interval())) return;
    if (!deps_.is_leader()) continue;
    std::optional<Revision> due = policy_->Due(deps_.clock->Now(), deps_.current_revision());
    if (!due) continue;
    const auto started = deps_.clock->Now();
    std::optional<Status> outcome = CompactAndWait(*due);
    if (!outcome) return;
    const auto now = deps_.clock->Now();
    policy_->Finished(now, *due, *outcome);
    const std::string what =
        "auto compaction (" + policy_->Describe() + ") at revision " + std::to_string(due->value());
    if (outcome->ok() || outcome->code() == Code::kCompacted) {
      deps_.log(what + ": done" + (outcome->ok() ? "" : " (already compacted)") + ", took " +
                GoDurationString(now - started));
    } else {
      deps_.log(what + " failed, retrying in " + GoDurationString(policy_->round_interval()) +
                ": " + outcome->message());
    }
  }
}

std::optional<Status> AutoCompactor::CompactAndWait(Revision revision) {
  // Shared with the callback, which may run after Stop (the driver fails what is in flight
  // when it stops, later than this thread gives up).
  struct Outcome {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> status;
  };
  auto outcome = std::make_shared<Outcome>();
  deps_.compact(revision, [outcome](Status s) {
    {
      std::lock_guard lock(outcome->mu);
      outcome->status = std::move(s);
    }
    outcome->cv.notify_all();
  });
  // Poll both conditions: the outcome and Stop have separate locks.
  for (;;) {
    {
      std::unique_lock lock(outcome->mu);
      if (outcome->cv.wait_for(lock, std::chrono::milliseconds(50),
                               [&] { return outcome->status.has_value(); })) {
        return outcome->status;
      }
    }
    std::lock_guard lock(mu_);
    if (stopping_) return std::nullopt;
  }
}

}  // namespace dolmen::server
