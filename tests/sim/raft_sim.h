// The Raft simulator: a whole cluster of RawNodes in one process, driven by one seed. The
// network drops, duplicates, delays, reorders and partitions messages; nodes crash and restart
// with only what they persisted; members are added (as learners, then promoted) and removed, and
// leadership is transferred, all at random moments. The InvariantChecker runs after every step.
// After the chaos the network heals and the simulator requires a leader and a committed
// proposal on every member within a bounded number of ticks.
//
// Same options, same run: nothing depends on wall time or addresses.
#pragma once

#include <cstdint>
#include <string>

namespace dolmen::raft::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  int chaos_ticks = 300;
  // Liveness bounds once healed: a leader within this many ticks, then the final proposal
  // applied by every member within as many again.
  int heal_ticks = 150;
  bool membership_changes = true;
  bool leader_transfers = true;
  // Breaks §5.4.2 in every node (Config::testing_unsafe_commit_previous_term).
  bool unsafe_commit_previous_term = false;
  // Multiplies the rate of crashes, partitions and leader changes, and makes the network much
  // lossier: fewer runs reach deep states, but elections overlap far more often.
  bool hostile = false;
  bool trace = false;  // log every event to stderr
};

struct SimResult {
  bool ok = true;
  std::string failure;     // the first violation, with the simulated time
  uint64_t committed = 0;  // the highest index known committed
  uint64_t elections = 0;  // distinct terms that had a leader
  uint64_t crashes = 0;
  uint64_t conf_changes = 0;  // applied by some node
  uint64_t snapshots_sent = 0;
  // Times a leader's commit index landed on an entry of an earlier term (only possible with
  // unsafe_commit_previous_term): shows the broken rule was exercised.
  uint64_t previous_term_commits = 0;
};

SimResult RunRaftSimulation(const SimOptions& options);

}  // namespace dolmen::raft::sim
