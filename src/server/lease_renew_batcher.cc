#include "server/lease_renew_batcher.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace dolmen::server {

LeaseRenewBatcher::LeaseRenewBatcher(size_t max_in_flight, size_t max_batch, Forward forward,
                                     Send send)
    : max_in_flight_(std::max<size_t>(1, max_in_flight)),
      max_batch_(std::max<size_t>(1, max_batch)),
      forward_(std::move(forward)),
      send_(std::move(send)) {}

void LeaseRenewBatcher::Renew(LeaseId id, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(Pending{id, std::move(done)});
  }
  LaunchWhileRoom();
}

void LeaseRenewBatcher::LaunchWhileRoom() {
  for (;;) {
    struct Batch {
      std::vector<Pending> items;
      std::vector<LeaseId> ids;
      std::vector<Result<int64_t>> results;
    };
    auto batch = std::make_shared<Batch>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.empty() || in_flight_ >= max_in_flight_) return;
      ++in_flight_;
      const size_t n = std::min(pending_.size(), max_batch_);
      batch->items.assign(std::make_move_iterator(pending_.begin()),
                          std::make_move_iterator(pending_.begin() + static_cast<long>(n)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(n));
    }
    for (const Pending& p : batch->items) batch->ids.push_back(p.id);
    // Not under mu_: the forwarder may refuse at once and run `finish` on this thread.
    forward_(
        [this, batch](MemberId leader, Deadline deadline) -> Status {
          Result<std::vector<Result<int64_t>>> answer = send_(leader, batch->ids, deadline);
          if (!answer.ok()) return answer.status();
          if (answer->size() != batch->ids.size()) {
            return Status(Code::kInternal, "renewal batch answered partly");
          }
          batch->results = std::move(answer).value();
          return OkStatus();
        },
        // A batch-level failure (no leader, not leader, unreachable) is tried again until the
        // deadline; a lease that is not found is each lease's own answer, not the batch's.
        [](const Status&) { return false; },
        [this, batch](Status s) {
          for (size_t i = 0; i < batch->items.size(); ++i) {
            Done& done = batch->items[i].done;
            if (!s.ok()) {
              done(s);
            } else {
              done(std::move(batch->results[i]));
            }
          }
          {
            std::lock_guard<std::mutex> lock(mu_);
            --in_flight_;
          }
          LaunchWhileRoom();
        });
  }
}

}  // namespace dolmen::server
