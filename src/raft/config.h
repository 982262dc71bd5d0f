// Config: how one Raft node behaves. Validated by RawNode::Create.
#pragma once

#include <cstdint>

#include "base/ids.h"
#include "base/status.h"

namespace dolmen::raft {

class Storage;

enum class ReadOnlyOption {
  // ReadIndex confirms leadership with a heartbeat round (always linearizable).
  kSafe,
  // ReadIndex trusts the leader lease instead (needs check_quorum; only linearizable if clocks
  // drift less than the election timeout allows). Off by default.
  kLeaseBased,
};

struct Config {
  MemberId id;
  // Followers start an election after election_ticks..2*election_ticks-1 ticks without hearing
  // from a leader (randomized per election, §5.2). Leaders heartbeat every heartbeat_ticks.
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  Storage* storage = nullptr;  // not owned; must outlive the node
  // The last index the application has applied (after a restart: its snapshot or more).
  Index applied;

  uint64_t max_size_per_msg_bytes = 1 << 20;  // an append carries at least one entry
  uint64_t max_committed_size_per_ready_bytes = 16 << 20;
  // Proposals are refused (kResourceExhausted) while the leader's uncommitted tail is bigger.
  uint64_t max_uncommitted_entries_bytes = 64 << 20;
  size_t max_inflight_msgs = 256;          // per follower, in replicate state
  uint64_t max_inflight_bytes = 32 << 20;  // per follower; 0 = count bound only
  size_t max_pending_read_index = 4096;    // queued ReadIndex requests at the leader

  bool pre_vote = true;      // §9.6
  bool check_quorum = true;  // leader steps down without a quorum; leases stop disruptive votes
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // When true a follower refuses proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // Seeds the randomized election timeout, so that a node's behaviour is a function of its
  // inputs. Give each node a different seed.
  uint64_t random_seed = 0;

  // TEST ONLY: breaks §5.4.2 by letting a leader commit an entry of a previous term by counting
  // replicas. Exists so the simulator's safety checkers can be shown to catch a broken rule.
  bool testing_unsafe_commit_previous_term = false;

  Status Validate() const;
};

}  // namespace dolmen::raft
