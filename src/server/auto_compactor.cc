#include "server/auto_compactor.h"

#include <utility>

#include "base/check.h"

namespace dolmen::server {

AutoCompactor::AutoCompactor(std::unique_ptr<CompactionPolicy> policy, Deps deps)
    : policy_(std::move(policy)),
      deps_(std::move(deps)),
      created_(deps_.clock != nullptr ? deps_.clock->Now() : TimePoint()) {
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

void AutoCompactor::Wake() {
  // Taken so a Wake cannot fall between the waiter's clock read and its wait.
  { std::lock_guard lock(mu_); }
  cv_.notify_all();
}

bool AutoCompactor::WaitOrStop(TimePoint round_start, std::chrono::nanoseconds d) {
  if (deps_.wait) {
    if (!deps_.wait(d)) return false;
    std::lock_guard lock(mu_);
    return !stopping_;
  }
  const TimePoint due = round_start + d;
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) return false;
    const TimePoint now = deps_.clock->Now();
    if (now >= due) return true;
    // On the system clock this sleeps until the round is due; on another clock it re-reads
    // the clock after that long of real time, or at once on Wake or Stop.
    cv_.wait_for(lock, due - now);
  }
}

void AutoCompactor::Run() {
  // The next round starts (samples and waits) once this one is over: after its wait, or
  // after the compaction it asked for. Taken before on_finished, so a test that advances the
  // clock once told cannot move the next round's start.
  TimePoint round_start = created_;
  for (;;) {
    policy_->Sample(deps_.current_revision());
    if (!WaitOrStop(round_start, policy_->round_interval())) return;
    round_start = deps_.clock->Now();
    if (!deps_.is_leader()) continue;
    std::optional<Revision> due = policy_->Due(round_start, deps_.current_revision());
    if (!due) continue;
    const auto started = round_start;
    std::optional<Status> outcome = CompactAndWait(*due);
    if (!outcome) return;
    const auto now = deps_.clock->Now();
    round_start = now;
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
    if (deps_.on_finished) deps_.on_finished(*due, *outcome);
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
