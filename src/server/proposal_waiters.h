// The callers the member core owes an answer to, other than reads (read_barrier.h): proposals
// waiting for Raft to take them (no leader yet, a transfer in progress, a full uncommitted
// log), proposals Raft took and whose entry is not applied yet (by request id), conf changes
// (one in flight at a time, as Raft allows), and MoveLeader callers waiting for the transferee
// to lead. Each list is bounded (DriverOptions): beyond it the caller hears "too many requests"
// at once. Every caller is answered exactly once: applied, failed at its deadline (carried by
// the core's ticks: Expire), or failed by a stop (FailAll).
//
// Owner thread only (the core's); no clock: deadlines are compared with the time passed in.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "raft/raw_node.h"
#include "server/driver_options.h"
#include "server/member_events.h"

namespace dolmen::server {

class ProposalWaiters {
 public:
  explicit ProposalWaiters(const DriverOptions& options) : options_(options) {}

  // Queues a proposal until Raft takes it; answered with kTooManyRequests when max_pending
  // proposals are already held.
  void Add(Proposal p);
  void Add(ConfProposal c);
  // A MoveLeader caller, answered once `transferee` leads (LeaderIs) or at its deadline.
  void AddLeaderWait(MemberId transferee, Waiter w);

  // Hands Raft what waits, in batches within the options' bounds, and the oldest conf change
  // when none is in flight. What Raft refuses waits for the next turn.
  void ProposeWaiting(raft::RawNode& node);
  // The applied entry carried request `id`: its caller, if it was proposed here.
  std::optional<ProposalDone> TakeApplied(uint64_t id);
  // A conf change was applied: its caller, if it was proposed here.
  std::optional<StatusDone> TakeAppliedConfChange(const raft::ConfChange& cc);
  // Answers the MoveLeader callers waiting for `leader`.
  void LeaderIs(MemberId leader);
  // Fails what is past its deadline with `why` (etcd's "no leader" or "request timed out");
  // MoveLeader callers always with "request timed out".
  void Expire(TimePoint now, const dolmen::Status& why);
  void FailAll(const dolmen::Status& s);

  bool has_waiting() const { return !waiting_.empty(); }
  size_t proposals() const { return waiting_.size() + in_flight_.size(); }
  size_t conf_changes() const { return conf_waiting_.size() + conf_in_flight_.size(); }
  size_t leader_waits() const { return leader_waits_.size(); }

 private:
  const DriverOptions options_;
  std::deque<Proposal> waiting_;            // not yet accepted by Raft
  std::map<uint64_t, Proposal> in_flight_;  // accepted; awaiting apply, by request id
  std::deque<ConfProposal> conf_waiting_;
  std::vector<ConfProposal> conf_in_flight_;
  std::vector<std::pair<MemberId, Waiter>> leader_waits_;
};

}  // namespace dolmen::server
