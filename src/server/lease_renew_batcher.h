// Keep-alives at a follower, forwarded to the leader in batches (docs/lease.md, "Keep-alives
// at a follower"). Each forwarded renewal used to be one blocking call on one of the
// forwarder's threads, and the leader confirmed its leadership (a ReadIndex round) for each:
// with 256 keep-alive streams on followers a follower renewed ~2,400 leases/s where the
// leader alone renewed ~31,000. Here the renewals that arrive while earlier batches are out
// wait, and the next batch carries all of them in one call; the leader confirms once for the
// batch.
//
// At most `max_in_flight` batches are out at once, each of at most `max_batch` leases. A batch
// is formed when it is handed to the forwarder, so a renewal waits at most for the batches
// ahead of it plus its own; each batch has the forwarder's timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "server/forwarder.h"

namespace dolmen::server {

class LeaseRenewBatcher {
 public:
  using Done = std::function<void(Result<int64_t>)>;
  // Hands one forwarded request to the forwarder (Server::ForwardToLeader).
  using Forward = std::function<void(Forwarder::Attempt, Forwarder::IsFinal,
                                     std::function<void(Status)> finish)>;
  // One attempt at a batch against `leader`: the batch fails as a whole (the forwarder tries
  // again, perhaps another leader), or each lease has its TTL or kLeaseNotFound, in order.
  using Send = std::function<Result<std::vector<Result<int64_t>>>(
      MemberId leader, const std::vector<LeaseId>& ids, Deadline deadline)>;

  LeaseRenewBatcher(size_t max_in_flight, size_t max_batch, Forward forward, Send send);

  // Any thread. `done` runs once, on a forwarding thread (or on the caller's when the
  // forwarder refuses at once), with the lease's TTL or the failure.
  void Renew(LeaseId id, Done done);

 private:
  struct Pending {
    LeaseId id;
    Done done;
  };
  // Hands batches to the forwarder while fewer than max_in_flight_ are out and renewals wait.
  void LaunchWhileRoom();

  const size_t max_in_flight_;
  const size_t max_batch_;
  const Forward forward_;
  const Send send_;
  std::mutex mu_;
  std::vector<Pending> pending_;  // guarded by mu_
  size_t in_flight_ = 0;          // guarded by mu_
};

}  // namespace dolmen::server
