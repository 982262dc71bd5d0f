// Runs unary requests as etcd's benchmark does: each logical client keeps one request in
// flight and sends the next when the reply comes. Uses gRPC's callback API, so 1024 clients
// cost 1024 small structs, not 1024 threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "options.h"
#include "report.h"

namespace dolmen::bench {

using Clock = std::chrono::steady_clock;
using DoneFn = std::function<void(const grpc::Status&)>;

// One logical client. Start is never called again before `done` ran, so a client may keep
// its request and response in members without locking.
class UnaryClient {
 public:
  virtual ~UnaryClient() = default;
  // Starts one request under `ctx` and calls `done` exactly once, from any thread.
  // A non-OK status is counted as an error; an OK one as a success.
  virtual void Start(grpc::ClientContext* ctx, DoneFn done) = 0;
};

class ClosedLoop {
 public:
  // `total` requests in all, shared by the clients; `errors` outlives Run.
  ClosedLoop(const Options& options, int64_t total, ErrorLog* errors);

  // Returns when every client stopped (total reached, or --max-seconds passed). If requests
  // are still in flight at the hard deadline (each has its own deadline, so gRPC is stuck),
  // it exits the process via AbandonRun: the clients must not be destroyed under them.
  void Run(const std::vector<std::unique_ptr<UnaryClient>>& clients, Figures* figures);

 private:
  struct Slot {
    UnaryClient* client = nullptr;
    std::unique_ptr<grpc::ClientContext> ctx;
    Clock::time_point start;
    std::vector<int64_t> latencies_ns;  // touched only by this slot's callbacks
  };

  void Next(Slot* slot);
  void OnDone(Slot* slot, const grpc::Status& status);
  void Finished();

  const Options& options_;
  const int64_t total_;
  ErrorLog* errors_;
  Clock::time_point deadline_;
  std::atomic<int64_t> tickets_{0};
  std::vector<Slot> slots_;

  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;  // guarded by mu_
};

}  // namespace dolmen::bench
