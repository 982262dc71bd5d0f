#include "server/proposal_waiters.h"

#include <algorithm>
#include <string>

#include "server/server_metrics.h"

namespace dolmen::server {
namespace {

bool SameChange(const raft::ConfChange& a, const raft::ConfChange& b) {
  return a.type == b.type && a.node_id == b.node_id;
}

// Removes and answers the elements of `list` past their deadline (`deadline_of` reads it).
template <typename List, typename DeadlineOf, typename Answer>
void ExpireIn(List& list, TimePoint now, DeadlineOf deadline_of, Answer answer) {
  for (auto it = list.begin(); it != list.end();) {
    if (deadline_of(*it) > now) {
      ++it;
      continue;
    }
    auto expired = std::move(*it);
    it = list.erase(it);
    answer(expired);
  }
}

}  // namespace

void ProposalWaiters::Add(Proposal p) {
  if (proposals() >= options_.max_pending) {
    p.done(ApplyResult{TooManyRequests(), {}});
    return;
  }
  waiting_.push_back(std::move(p));
}

void ProposalWaiters::Add(ConfProposal c) {
  if (conf_changes() >= options_.max_pending_conf_changes) {
    c.done(TooManyRequests());
    return;
  }
  conf_waiting_.push_back(std::move(c));
}

void ProposalWaiters::AddLeaderWait(MemberId transferee, Waiter w) {
  if (leader_waits_.size() >= options_.max_leader_waits) {
    w.done(TooManyRequests());
    return;
  }
  leader_waits_.emplace_back(transferee, std::move(w));
}

void ProposalWaiters::ProposeWaiting(raft::RawNode& node) {
  const size_t limit = std::min(options_.max_batch_entries, raft::RawNode::kMaxEntriesPerProposal);
  while (!waiting_.empty()) {
    std::vector<std::string> batch;
    size_t bytes = 0;
    size_t n = 0;
    while (n < waiting_.size() && n < limit &&
           (n == 0 || bytes + waiting_[n].data.size() <= options_.max_batch_bytes)) {
      bytes += waiting_[n].data.size();
      batch.push_back(waiting_[n].data);
      ++n;
    }
    if (!node.ProposeBatch(std::move(batch)).ok()) {
      // No leader yet, a transfer in progress, or a full uncommitted log: keep the requests
      // and try again next turn, until their deadline.
      break;
    }
    for (size_t i = 0; i < n; ++i) {
      Proposal p = std::move(waiting_.front());
      waiting_.pop_front();
      const uint64_t id = p.id;
      in_flight_.emplace(id, std::move(p));
    }
  }
  if (!conf_waiting_.empty() && conf_in_flight_.empty() &&
      node.ProposeConfChange(conf_waiting_.front().cc).ok()) {
    conf_in_flight_.push_back(std::move(conf_waiting_.front()));
    conf_waiting_.pop_front();
  }
}

std::optional<ProposalDone> ProposalWaiters::TakeApplied(uint64_t id) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return std::nullopt;
  ProposalDone done = std::move(it->second.done);
  in_flight_.erase(it);
  return done;
}

std::optional<StatusDone> ProposalWaiters::TakeAppliedConfChange(const raft::ConfChange& cc) {
  for (auto it = conf_in_flight_.begin(); it != conf_in_flight_.end(); ++it) {
    if (SameChange(it->cc, cc)) {
      StatusDone done = std::move(it->done);
      conf_in_flight_.erase(it);
      return done;
    }
  }
  return std::nullopt;
}

void ProposalWaiters::LeaderIs(MemberId leader) {
  for (auto it = leader_waits_.begin(); it != leader_waits_.end();) {
    if (it->first != leader) {
      ++it;
      continue;
    }
    StatusDone done = std::move(it->second.done);
    it = leader_waits_.erase(it);
    done(OkStatus());
  }
}

void ProposalWaiters::Expire(TimePoint now, const dolmen::Status& why) {
  auto fail_proposal = [&](Proposal& p) {
    metric::ProposalsFailed().Inc();
    p.done(ApplyResult{why, {}});
  };
  // Each list is scanned whole: a proposal may carry a shorter timeout than one queued before it.
  ExpireIn(
      waiting_, now, [](const Proposal& p) { return p.deadline; }, fail_proposal);
  ExpireIn(
      in_flight_, now, [](const auto& kv) { return kv.second.deadline; },
      [&](auto& kv) { fail_proposal(kv.second); });
  auto fail_conf = [&](ConfProposal& c) { c.done(why); };
  auto conf_deadline = [](const ConfProposal& c) { return c.deadline; };
  ExpireIn(conf_waiting_, now, conf_deadline, fail_conf);
  ExpireIn(conf_in_flight_, now, conf_deadline, fail_conf);
  ExpireIn(
      leader_waits_, now, [](const auto& w) { return w.second.deadline; },
      [](auto& w) { w.second.done(dolmen::Status(Code::kTimeout, "request timed out")); });
}

void ProposalWaiters::FailAll(const dolmen::Status& s) {
  // Swapped out first: a callback may queue more (it then finds the lists empty, or is failed
  // by the next FailAll).
  auto waiting = std::exchange(waiting_, {});
  auto in_flight = std::exchange(in_flight_, {});
  auto conf_waiting = std::exchange(conf_waiting_, {});
  auto conf_in_flight = std::exchange(conf_in_flight_, {});
  auto leader_waits = std::exchange(leader_waits_, {});
  for (auto& p : waiting) p.done(ApplyResult{s, {}});
  for (auto& [id, p] : in_flight) p.done(ApplyResult{s, {}});
  for (auto& c : conf_waiting) c.done(s);
  for (auto& c : conf_in_flight) c.done(s);
  for (auto& [id, w] : leader_waits) w.done(s);
}

}  // namespace dolmen::server
