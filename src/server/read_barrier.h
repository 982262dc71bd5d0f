// ReadIndex bookkeeping for linearizable reads (Raft thesis section 6.4): reads that arrived
// since the last round wait as one batch (unissued); a round asks Raft for a read index under a
// fresh context (issued, remembering the leader it was asked of); Raft's ReadState for that
// context confirms the leader and names the index (ready); a read is released once this member
// has applied up to that index. A read index asked of a leader that was replaced may never be
// answered: those reads fail at once with etcd's "leader changed" (the client retries).
//
// Bounded by max_pending_reads: beyond it a read is refused with "too many requests".
// Owner thread only; no clock: deadlines are compared with the time passed in.
//
// Counts etcd 3.4's two read index metrics (etcdserver/v3_server.go, linearizableReadLoop),
// per round as etcd counts per loop iteration: etcd_server_read_indexes_failed_total when a
// round fails because the leader changed; etcd_server_slow_read_indexes_total when a round
// (or a batch Raft never took, for want of a leader) timed out before its read index came, and
// for every answer to a round that is no longer waiting (it timed out or failed: out of date).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "raft/raw_node.h"
#include "server/driver_options.h"
#include "server/member_events.h"

namespace dolmen::server {

class ReadBarrier {
 public:
  // `first_context`: this member's first ReadIndex context. It must differ per start of the
  // member, as etcd's request ids do: a leader's answer to a round an earlier life of this
  // member asked (still in flight when it restarted) must not release a round of this life,
  // whose reads may need a later index.
  explicit ReadBarrier(const DriverOptions& options, uint64_t first_context = 1)
      : options_(options), next_context_(first_context) {}

  void Add(Waiter read);
  // Starts a round for every unissued read. False when Raft refused (no leader yet): they wait
  // for the next turn.
  bool Issue(raft::RawNode& node);
  // A new leader (not its loss: as etcd) is known: rounds asked of another leader fail.
  void LeaderChanged(MemberId leader);
  // Raft's answers: each confirmed round's reads wait for their index to be applied.
  void Confirmed(const std::vector<raft::ReadState>& states);
  // Answers the reads whose index is applied, in index order.
  void Release(uint64_t applied);
  void Expire(TimePoint now, const dolmen::Status& why);
  void FailAll(const dolmen::Status& s);

  bool has_unissued() const { return !unissued_.empty(); }
  size_t size() const;

 private:
  struct Round {
    MemberId leader;  // whom the read index was asked of
    std::vector<Waiter> reads;
    bool timed_out = false;  // some of its reads expired: counted slow once
  };

  const DriverOptions options_;
  std::vector<Waiter> unissued_;
  std::map<std::string, Round> issued_;    // by ReadIndex context
  std::multimap<uint64_t, Waiter> ready_;  // by read index
  uint64_t next_context_;
};

}  // namespace dolmen::server
