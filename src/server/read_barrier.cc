#include "server/read_barrier.h"

#include <utility>

#include "server/server_metrics.h"

namespace dolmen::server {
namespace {

// Answers the reads past their deadline with `why`; true if there were any.
bool ExpireReads(std::vector<Waiter>& reads, TimePoint now, const dolmen::Status& why) {
  bool expired = false;
  for (auto it = reads.begin(); it != reads.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    StatusDone done = std::move(it->done);
    it = reads.erase(it);
    done(why);
    expired = true;
  }
  return expired;
}

}  // namespace

size_t ReadBarrier::size() const {
  size_t n = unissued_.size() + ready_.size();
  for (const auto& [context, round] : issued_) n += round.reads.size();
  return n;
}

void ReadBarrier::Add(Waiter read) {
  if (size() >= options_.max_pending_reads) {
    read.done(TooManyRequests());
    return;
  }
  unissued_.push_back(std::move(read));
}

bool ReadBarrier::Issue(raft::RawNode& node) {
  if (unissued_.empty()) return true;
  std::string context = std::to_string(next_context_);
  if (!node.ReadIndex(context).ok()) return false;
  ++next_context_;
  issued_[context] = Round{node.raft().lead(), std::exchange(unissued_, {})};
  return true;
}

void ReadBarrier::LeaderChanged(MemberId leader) {
  if (leader.value() == 0) return;
  for (auto it = issued_.begin(); it != issued_.end();) {
    // Asked of this very leader (Raft knew it before the Ready that told us): still good.
    if (it->second.leader == leader) {
      ++it;
      continue;
    }
    std::vector<Waiter> reads = std::move(it->second.reads);
    it = issued_.erase(it);
    metric::ReadIndexesFailed().Inc();
    for (Waiter& r : reads) r.done(dolmen::Status(Code::kLeaderChanged, "leader changed"));
  }
}

void ReadBarrier::Confirmed(const std::vector<raft::ReadState>& states) {
  for (const raft::ReadState& rs : states) {
    auto it = issued_.find(rs.context);
    if (it == issued_.end()) {
      // A round that timed out or failed already: etcd's "ignored out-of-date read index
      // response".
      metric::SlowReadIndexes().Inc();
      continue;
    }
    for (Waiter& r : it->second.reads) ready_.emplace(rs.index.value(), std::move(r));
    issued_.erase(it);
  }
}

void ReadBarrier::Release(uint64_t applied) {
  while (!ready_.empty() && ready_.begin()->first <= applied) {
    StatusDone done = std::move(ready_.begin()->second.done);
    ready_.erase(ready_.begin());
    done(OkStatus());
  }
}

void ReadBarrier::Expire(TimePoint now, const dolmen::Status& why) {
  // Reads that never got a round (no leader took it) are one timed-out batch to etcd.
  if (ExpireReads(unissued_, now, why)) metric::SlowReadIndexes().Inc();
  for (auto it = issued_.begin(); it != issued_.end();) {
    Round& round = it->second;
    if (ExpireReads(round.reads, now, why) && !round.timed_out) {
      round.timed_out = true;
      metric::SlowReadIndexes().Inc();
    }
    // Emptied, it is forgotten: its answer, if one comes, is out of date.
    it = round.reads.empty() ? issued_.erase(it) : std::next(it);
  }
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    StatusDone done = std::move(it->second.done);
    it = ready_.erase(it);
    done(why);
  }
}

void ReadBarrier::FailAll(const dolmen::Status& s) {
  auto unissued = std::exchange(unissued_, {});
  auto issued = std::exchange(issued_, {});
  auto ready = std::exchange(ready_, {});
  for (Waiter& r : unissued) r.done(s);
  for (auto& [context, round] : issued) {
    for (Waiter& r : round.reads) r.done(s);
  }
  for (auto& [index, r] : ready) r.done(s);
}

}  // namespace dolmen::server
