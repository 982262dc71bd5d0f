// What the member tells systemd (sd_notify, docs/systemd.md), as two small pieces with their
// I/O injected so that unit tests drive them without a driver loop or a notify socket:
//
//   WaitUntilLinearizable  READY=1 comes only after a linearizable read barrier passed here
//                          (a leader confirmed it and this member applied up to its read index)
//   Watchdog               WATCHDOG=1 at a fixed period, only while the driver loop answers
//
// RunMember (member.cc) wires them to the driver (Driver::ReadIndex, Driver::RunInOrder) and to
// sd_notify.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"

namespace dolmen::embed {

using LogFn = std::function<void(const std::string&)>;
// Asks for something to be done and calls `answer` when it is, on any thread, at most once,
// possibly never or after the asker gave up (the asker keeps no state `answer` depends on).
using AskFn = std::function<void(std::function<void(Status)> answer)>;

struct ReadyWaitOptions {
  // One barrier not answered by then is abandoned and asked again. The driver answers every
  // read by its request timeout (7 s), so this only guards against a lost answer.
  std::chrono::milliseconds try_limit{10000};
  // How often `stop_requested` is consulted while a barrier is in flight, and the pause after
  // a failed barrier (no leader yet, leader changed) before the next.
  std::chrono::milliseconds poll{50};
  std::chrono::milliseconds retry_pause{200};
};

// Asks `barrier` (a linearizable read barrier: Driver::ReadIndex) until one succeeds, retrying
// after failures (no leader, leader changed, timeouts). Returns true once one succeeded; false
// as soon as `stop_requested(wait)` returns true. `stop_requested` may block up to `wait` (the
// member waits for a signal there) and is called at least every `poll` while waiting. The first
// failure is logged (once), so an operator sees why the member is not ready yet.
bool WaitUntilLinearizable(
    const AskFn& barrier, const std::function<bool(std::chrono::milliseconds wait)>& stop_requested,
    const LogFn& log, const ReadyWaitOptions& options = {});

// The systemd watchdog: WATCHDOG=1 every `period` (half of WatchdogSec=, sd_watchdog_enabled),
// but only while the driver loop gives a proof of life. Each turn checks the probe sent at the
// previous turn: answered with OK -> ping and send the next probe; not answered yet -> no ping
// (and no second probe: one at a time), so systemd, missing pings for WatchdogSec, restarts a
// member whose loop is stuck. A probe answered with an error (the driver stopped) stops the
// pings too. Pings stopping and resuming are each logged once.
//
// Turn() is the whole logic and is called by the owned thread (Start) or directly by tests.
// `probe` runs a no-op through the driver's inbox (Driver::RunInOrder): it is asked once per
// period, off the request path. Thread-safe: Start, Stop and the destructor from one thread.
class Watchdog {
 public:
  using NotifyFn = std::function<void(const char* state)>;

  Watchdog(std::chrono::microseconds period, AskFn probe, NotifyFn notify, LogFn log);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Runs Turn() now and then every `period` on a thread of its own, until Stop().
  void Start();
  // Idempotent; no ping is sent after it returns.
  void Stop();
  // One turn (see the class comment). Not concurrently with the thread Start() runs.
  void Turn();

  uint64_t pings() const { return pings_.load(); }
  bool stalled() const { return stalled_.load(); }

 private:
  // Shared with the probe's answer, which may come after this object is gone.
  struct Answer {
    std::mutex mu;
    bool answered = false;  // guarded by mu
    Status status;          // guarded by mu
  };

  void SendProbe();
  void Stalled(const std::string& why);

  const std::chrono::microseconds period_;
  AskFn probe_;
  NotifyFn notify_;
  LogFn log_;
  std::shared_ptr<Answer> in_flight_;  // the probe of the previous turn; turn thread only
  std::atomic<uint64_t> pings_{0};
  std::atomic<bool> stalled_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::embed
