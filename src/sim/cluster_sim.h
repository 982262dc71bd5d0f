// The whole-cluster simulator (issue 18 item 4; docs/simulation.md): N dolmen members
// (sim_member.h) in one process and one thread, driven by one seed and a virtual clock in
// milliseconds. Each step advances the clock to the next thing due (a message's delivery, a
// member's NextWake, a checkpoint sync's completion, a client's next request, a fault, a
// restart), hands each member the events due for it and runs its turn. The network
// (sim_network.h) drops, delays, duplicates, reorders and partitions messages; members crash
// (their disks lose what was not durable) and restart, the whole cluster loses power, leaders
// are moved. Clients put, compare-and-set, delete and read linearizably, as the server's
// front-end does (proposals and read barriers), and every operation is recorded.
//
// Checked after every step: one leader per term, committed entries never change, members at
// the same applied index have the same store hash (HashKV). At the end, once healed: every
// member caught up with equal hashes, no acknowledged write lost, the client history
// linearizable (history.h).
//
// Same options, same run: nothing depends on wall time or addresses.
#pragma once

#include <cstdint>
#include <string>

namespace dolmen::sim {

struct ClusterSimOptions {
  uint64_t seed = 1;
  int members = 3;
  int clients = 4;
  int keys = 4;
  // Faults and load run for chaos_ms; then the network heals, every member restarts, load
  // stops, and within heal_ms every member must have caught up and final reads succeeded.
  uint64_t chaos_ms = 3000;
  uint64_t heal_ms = 5000;
  bool crashes = true;
  bool power_loss = true;  // every member at once
  bool partitions = true;
  bool leader_transfers = true;
  bool compactions = true;
  // The broken rule (sim_member.h): the WAL acknowledges syncs it never did.
  bool wal_sync_lies = false;
  // The checks after every step (one leader per term, committed entries never change, equal
  // hashes at equal indexes). Off, a broken rule must be caught by what clients see at the
  // end: lost writes, a history that is not linearizable.
  bool step_checks = true;
  bool trace = false;  // every fault and failed operation on stderr
};

struct ClusterSimResult {
  bool ok = true;
  std::string failure;  // the first violation, with the virtual time
  uint64_t steps = 0;
  uint64_t acked_writes = 0;
  uint64_t acked_reads = 0;
  uint64_t failed_ops = 0;
  uint64_t crashes = 0;
  uint64_t power_losses = 0;
  uint64_t partitions = 0;
  uint64_t leader_moves = 0;  // MoveLeader calls that succeeded
  uint64_t compactions = 0;
  uint64_t leader_terms = 0;  // distinct terms that had a leader
  uint64_t checkpoints = 0;   // backend syncs completed
  uint64_t snapshots = 0;     // snapshot images a member received from a leader
  uint64_t hash_checks = 0;   // pairs of members compared at one applied index
  uint64_t final_index = 0;   // the applied index every member reached
};

ClusterSimResult RunClusterSimulation(const ClusterSimOptions& options);

}  // namespace dolmen::sim
