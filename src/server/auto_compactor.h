// Runs a CompactionPolicy (auto_compaction.h) on its own thread from Server::Start to
// Server::Stop: each round samples the store's revision, waits the policy's interval and, when
// this member leads (etcd pauses its compactor on followers), proposes the compaction the
// policy asks for as an ordinary Compaction request through the log, then logs one line with
// the outcome.
//
// The wait follows the injected Clock, not the real one: a round is due once deps.clock reads
// its start plus the interval. On the system clock that is the same wait as ever; a test on a
// ManualClock advances it, calls Wake and awaits deps.on_finished instead of sleeping.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/ids.h"
#include "base/status.h"
#include "server/auto_compaction.h"

namespace dolmen::server {

class AutoCompactor {
 public:
  struct Deps {
    const Clock* clock = nullptr;
    std::function<bool()> is_leader;
    std::function<Revision()> current_revision;
    // Proposes a compaction at `revision`; `done` gets its outcome once applied (or failed),
    // on any thread.
    std::function<void(Revision revision, std::function<void(Status)> done)> compact;
    std::function<void(const std::string&)> log;
    // Optional: told on the compactor's thread after every compaction it asked for (after its
    // log line), with the outcome; tests await it.
    std::function<void(Revision revision, const Status& outcome)> on_finished;
    // Waits `d`; false once the compactor is stopping. Null: wait until `clock` reads the
    // round's start plus `d` (Wake re-reads it). Tests that call Run themselves pass one that
    // advances a ManualClock instead.
    std::function<bool(std::chrono::nanoseconds d)> wait;
  };

  AutoCompactor(std::unique_ptr<CompactionPolicy> policy, Deps deps);
  ~AutoCompactor();  // Stop
  AutoCompactor(const AutoCompactor&) = delete;
  AutoCompactor& operator=(const AutoCompactor&) = delete;

  void Start();
  // Ends the thread; a compaction in flight is not waited for (its outcome is dropped).
  // Not from deps.compact's callback.
  void Stop();
  // The rounds themselves, on the calling thread, until deps.wait returns false or Stop.
  // What Start's thread runs; tests call it directly with a wait that advances their clock.
  void Run();
  // Any thread: re-read the clock now rather than when the round's wait would end (a test
  // advanced its ManualClock). Without deps.wait only.
  void Wake();

 private:
  // Proposes and waits for the outcome; nullopt when stopping first.
  std::optional<Status> CompactAndWait(Revision revision);
  // Waits until the round that started at `round_start` is `d` old; false on Stop.
  bool WaitOrStop(TimePoint round_start, std::chrono::nanoseconds d);

  // A compaction asked for and not answered yet. Shared with the callback, which may run
  // after Stop (the driver fails what is in flight when it stops, later than this thread
  // gives up); Stop marks it stopped, so the wait for it needs no second lock and no polling.
  struct InFlight {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> status;  // guarded by mu
    bool stopped = false;          // guarded by mu
  };

  std::unique_ptr<CompactionPolicy> policy_;
  Deps deps_;
  // The first round starts when the compactor is made, as the policy does (not when its
  // thread gets to run), so a test that advances the clock right after Start cannot miss it.
  const TimePoint created_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                // guarded by mu_
  std::shared_ptr<InFlight> in_flight_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::server
