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
  std::shared_ptr<InFlight> in_flight;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    in_flight = in_flight_;
  }
  cv_.notify_all();
  if (in_flight) {
    {
      std::lock_guard lock(in_flight->mu);
      in_flight->stopped = true;
    }
    in_flight->cv.notify_all();
  }
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
  auto in_flight = std::make_shared<InFlight>();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return std::nullopt;
    in_flight_ = in_flight;
  }
  deps_.compact(revision, [in_flight](Status s) {
    {
      std::lock_guard lock(in_flight->mu);
      in_flight->status = std::move(s);
    }
    in_flight->cv.notify_all();
  });
  std::optional<Status> outcome;
  {
    std::unique_lock lock(in_flight->mu);
    in_flight->cv.wait(lock, [&] { return in_flight->status.has_value() || in_flight->stopped; });
    if (!in_flight->stopped) outcome = in_flight->status;
  }
  std::lock_guard lock(mu_);
  in_flight_.reset();
  return outcome;
}

}  // namespace dolmen::server
