#include "embed/systemd.h"

#include <optional>

namespace dolmen::embed {
namespace {

// One barrier's outcome, shared with its answer (which may come after the asker gave up).
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> status;  // guarded by mu
};

}  // namespace

bool WaitUntilLinearizable(
    const AskFn& barrier, const std::function<bool(std::chrono::milliseconds wait)>& stop_requested,
    const LogFn& log, const ReadyWaitOptions& options) {
  bool logged = false;
  while (true) {
    auto outcome = std::make_shared<Outcome>();
    barrier([outcome](Status s) {
      {
        std::lock_guard lock(outcome->mu);
        outcome->status = std::move(s);
      }
      outcome->cv.notify_all();
    });
    const auto give_up = std::chrono::steady_clock::now() + options.try_limit;
    std::optional<Status> result;
    while (!result) {
      {
        std::unique_lock lock(outcome->mu);
        outcome->cv.wait_for(lock, options.poll, [&] { return outcome->status.has_value(); });
        result = outcome->status;
      }
      if (stop_requested(std::chrono::milliseconds(0))) return false;
      if (!result && std::chrono::steady_clock::now() >= give_up) {
        result = Status(Code::kTimeout,
                        "no answer within " + std::to_string(options.try_limit.count()) + " ms");
      }
    }
    if (result->ok()) return true;
    if (!logged) {
      log("not ready yet: a linearizable read barrier failed (" + result->ToString() +
          "); retrying until one passes");
      logged = true;
    }
    if (stop_requested(options.retry_pause)) return false;
  }
}

Watchdog::Watchdog(std::chrono::microseconds period, AskFn probe, NotifyFn notify, LogFn log)
    : period_(period), probe_(std::move(probe)), notify_(std::move(notify)), log_(std::move(log)) {}

Watchdog::~Watchdog() { Stop(); }

void Watchdog::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      Turn();
      lock.lock();
      cv_.wait_for(lock, period_, [this] { return stopping_; });
    }
  });
}

void Watchdog::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Turn() {
  if (!in_flight_) {  // the first turn: nothing to check yet
    SendProbe();
    return;
  }
  std::optional<Status> answer;
  {
    std::lock_guard lock(in_flight_->mu);
    if (in_flight_->answered) answer = in_flight_->status;
  }
  if (!answer) {
    Stalled("the driver loop has not answered a probe for " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(period_).count()) +
            " ms");
    return;
  }
  if (!answer->ok()) {
    Stalled("the driver loop stopped (" + answer->ToString() + ")");
    SendProbe();
    return;
  }
  notify_("WATCHDOG=1");
  pings_.fetch_add(1);
  if (stalled_.exchange(false)) log_("watchdog: the driver loop answers again, WATCHDOG=1 resumed");
  SendProbe();
}

void Watchdog::SendProbe() {
  auto answer = std::make_shared<Answer>();
  in_flight_ = answer;
  probe_([answer](Status s) {
    std::lock_guard lock(answer->mu);
    answer->answered = true;
    answer->status = std::move(s);
  });
}

void Watchdog::Stalled(const std::string& why) {
  if (stalled_.exchange(true)) return;
  log_("watchdog: " + why +
       "; no more WATCHDOG=1, so systemd restarts the member once "
       "WatchdogSec passes");
}

}  // namespace dolmen::embed
