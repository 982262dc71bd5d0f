// Forwarding to the leader: requests only the leader can answer (lease renew and time-to-live,
// which its primary lessor owns; member promote, which needs its Raft progress) are sent there
// when they arrive at a follower, as etcd does over its peer HTTP handlers. docs/lease.md,
// docs/membership.md.
//
// LeaderClient is how the member reaches the leader (embed/PeerLink over the peer transport;
// fakes in tests): plain calls that block until answered or the deadline. Forwarder runs them
// on its own bounded pool of threads so that no gRPC or driver thread ever waits on the
// network, and follows etcd's loop: wait for a leader, ask it, and ask again (perhaps a new
// leader) until the answer is final or the request timeout passes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "dolmen/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"

namespace dolmen::server {

using Deadline = std::chrono::steady_clock::time_point;

class LeaderClient {
 public:
  virtual ~LeaderClient() = default;
  // Each asks member `leader` once. Codes: the leader's answer (kLeaseNotFound, kNotFound,
  // kFailedPrecondition, kNotLeader when it no longer leads, ...), kUnavailable when it could
  // not be reached, kDeadlineExceeded when `deadline` passed.
  virtual Result<int64_t> LeaseRenew(MemberId leader, LeaseId id, Deadline deadline) = 0;
  // Many renewals in one request (LeaseRenewBatcher): fails as a whole, or has each lease's TTL
  // or kLeaseNotFound, in order. This default asks one lease at a time; the peer transport
  // sends one request.
  virtual Result<std::vector<Result<int64_t>>> LeaseRenewBatch(MemberId leader,
                                                               const std::vector<LeaseId>& ids,
                                                               Deadline deadline);
  // The response without its header (the caller fills it).
  virtual Result<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(
      MemberId leader, const etcdserverpb::LeaseTimeToLiveRequest& r, Deadline deadline) = 0;
  // The membership after the promotion, as the leader has it.
  virtual Result<std::vector<internal::Member>> MemberPromote(MemberId leader, MemberId learner,
                                                              Deadline deadline) = 0;
};

struct ForwarderOptions {
  size_t threads = 4;
  size_t max_queued = 4096;  // jobs waiting for a thread; beyond: "too many requests"
  // A forwarded request not answered by then fails: "no leader" if it was still waiting for
  // one, else "request timed out" (etcd: its request timeout).
  std::chrono::milliseconds timeout{7000};
  // Pause between two attempts after a retryable failure.
  std::chrono::milliseconds retry_backoff{50};
};

class Forwarder {
 public:
  // `leader` reads the leader this member knows (0 when none); thread-safe.
  Forwarder(ForwarderOptions options, std::function<MemberId()> leader);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void Start();
  // Fails queued jobs with kStopped, wakes waiting ones (they fail with kStopped), joins.
  void Stop();
  // Any thread: the known leader may have changed (wakes jobs waiting for one).
  void LeaderChanged();

  // One attempt against `leader` (possibly this member itself, if it became leader). Returns
  // the attempt's status; its result, if any, travels in the caller's captures.
  using Attempt = std::function<Status(MemberId leader, Deadline deadline)>;
  // Whether a failed attempt's status is the final answer (e.g. "lease not found"); any other
  // failure is retried until the deadline, as etcd does.
  using IsFinal = std::function<bool(const Status&)>;
  // Queues a forwarded request; `finish` runs exactly once, on a forwarding thread (or on the
  // caller's when refused at once), with the last attempt's status or the timeout's.
  void Run(Attempt attempt, IsFinal is_final, std::function<void(Status)> finish);

 private:
  struct Job {
    Attempt attempt;
    IsFinal is_final;
    std::function<void(Status)> finish;
    Deadline deadline;
  };
  void Loop();
  Status Execute(Job& job);
  // Waits until a leader is known; 0 if the deadline passed or we stopped first.
  MemberId WaitLeader(Deadline deadline);

  const ForwarderOptions options_;
  const std::function<MemberId()> leader_;
  std::mutex mu_;
  std::condition_variable cv_;         // new jobs, stop
  std::condition_variable leader_cv_;  // leader changed, stop
  std::deque<Job> queue_;              // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  bool started_ = false;               // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace dolmen::server
