// ReadIndexQueue: linearizable reads served by the leader without writing to the log (Raft
// thesis §6.4). A read is answered with the commit index once a heartbeat round, started after
// the read arrived, has been acknowledged by a quorum: that proves no newer leader existed when
// the read arrived, so the commit index then covers every write the read must observe.
//
// Reads are batched: while a round is in flight, new reads wait in `pending_`; when the round
// completes they all go into the next round together. So one heartbeat round serves any number
// of reads, and at most one round is in flight. Owned by the leader's Raft; reset on any role
// or term change (the reads are then dropped and the caller retries).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/status.h"

namespace dolmen::raft {

struct ReadRequest {
  MemberId from;  // the node that asked (the leader itself for local reads)
  std::string context;
};

// A read that can now be served once the applied index reaches `index`.
struct ReadState {
  Index index;
  std::string context;
  bool operator==(const ReadState&) const = default;
};

class ReadIndexQueue {
 public:
  explicit ReadIndexQueue(size_t max_pending) : max_pending_(max_pending) {}

  // Queues a read. kResourceExhausted when max_pending reads already wait.
  Status Add(ReadRequest request);
  bool HasPending() const { return !pending_.empty(); }
  bool RoundInFlight() const { return in_flight_; }
  // Moves every pending read into a new round at commit index `commit`; returns the round's
  // context, which the leader puts in its heartbeats.
  std::string StartRound(Index commit);
  // The context heartbeats carry: the round in flight, or empty.
  std::string RoundContext() const;
  // Records that `from` acknowledged a heartbeat carrying `context`. Returns the members that
  // acknowledged the round in flight so far (empty if the context is not that round's).
  const std::set<MemberId>* Ack(MemberId from, const std::string& context);
  // Ends the round in flight, returning its read index and its reads.
  std::pair<Index, std::vector<ReadRequest>> FinishRound();
  // Drops everything (leadership lost).
  void Reset();

 private:
  size_t max_pending_;
  uint64_t next_round_ = 1;  // never reused, so a late ack cannot confirm a newer round
  bool in_flight_ = false;
  uint64_t round_ = 0;
  Index round_index_;
  std::set<MemberId> acks_;
  std::vector<ReadRequest> round_reads_;
  std::vector<ReadRequest> pending_;
};

}  // namespace dolmen::raft
