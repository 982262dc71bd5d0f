// Delivers the transport's callbacks (on_unreachable, on_snapshot_status, on_refused) from one
// thread of its own, so that they never run inside Send (the Raft owner thread, which may hold
// the very locks the callbacks take) and never run concurrently with each other.
//
// Bounds: unreachable reports are coalesced per peer (at most one pending per peer); snapshot
// statuses are at most one per peer in flight; refusals at most one per failed stream, which the
// reconnect backoff spaces out. So the pending set stays small without dropping any status.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "base/ids.h"
#include "base/status.h"

namespace dolmen::transport {

class Transport;

class Notifier {
 public:
  // `callbacks` must outlive the notifier; its three std::function members are read only after
  // Start, when they must no longer change.
  explicit Notifier(const Transport* callbacks) : callbacks_(callbacks) {}
  ~Notifier() { Stop(); }

  void Start();
  // Discards what is pending and joins the thread. After Stop no callback runs.
  void Stop();

  // All three are thread-safe and return at once.
  void Unreachable(MemberId peer);
  void SnapshotStatus(MemberId peer, bool ok);
  void Refused(MemberId peer, Status why);

 private:
  void Run();

  const Transport* const callbacks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<MemberId> unreachable_;            // guarded by mu_
  std::deque<std::function<void()>> events_;  // guarded by mu_
  bool running_ = false;                      // guarded by mu_
  bool stopping_ = false;                     // guarded by mu_
  std::thread thread_;
};

}  // namespace dolmen::transport
