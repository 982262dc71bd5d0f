// The whole-cluster simulator (issue 18 item 4; docs/simulation.md): N dolmen members
// (sim_member.h) in one process and one thread, driven by one seed and a virtual clock in
// milliseconds. Each step advances the clock to the next thing due (a message's delivery, a
// member's NextWake, a checkpoint sync's completion, a client's next request, a fault, a
// restart), hands each member the events due for it and runs its turn. The network
// (sim_network.h) drops, delays, duplicates, reorders and partitions messages; members crash
// (their disks lose what was not durable) and restart, the whole cluster loses power, WAL disks
// fail a sync or tear an append, WAL writes and checkpoint syncs stall while the other members
// go on, backends fail a commit or a sync or stall on one, leaders are moved, learners are added
// and promoted and voters removed, the log is compacted and members far behind get snapshots.
// Clients put, compare-and-set, delete and read linearizably, as the server's front-end does
// (proposals and read barriers), grant leases, attach puts to them, keep some alive and revoke
// some; every operation is recorded. Watchers on members (sim_watchers.h) follow a key, a range
// or every key from a start revision, through each member's real watch hub.
//
// Checked after every step: one leader per term, committed entries never change, members at
// the same applied index have the same store hash (HashKV) and the same leases, every member's
// live keys and leases name each other, no lease is revoked by expiry before its TTL ran out
// (as the client saw it), no put succeeds on a lease already revoked, members report the same
// events for each revision, and every watcher gets each change in its range exactly once, in
// revision order, or the compaction error. At the end, once healed: every member caught up with
// equal hashes, every lease expired and revoked everywhere, every watcher caught up, no
// acknowledged write lost, the client history linearizable (history.h).
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
  // Members added as learners (at most two per run), promoted, and voters removed (never below
  // `members`), through conf changes on the leader, as etcd's MemberAdd/Promote/Remove.
  bool membership_changes = true;
  // A member's WAL disk fails a sync or tears an append, or its backend fails a commit or a
  // sync (the member stops and is restarted).
  bool disk_faults = true;
  // Leases granted, attached, kept alive and revoked by the clients, expired by the leader.
  bool leases = true;
  // Watchers on members, re-created on another member after a crash.
  bool watches = true;
  // The broken rule (sim_member.h): the WAL acknowledges syncs it never did.
  bool wal_sync_lies = false;
  // The other broken rule, at the core's seam: the simulator reports a WAL write persisted
  // (WalPersisted) as soon as it starts, its fdatasync still to come, so the member
  // acknowledges and applies what a crash may then lose.
  bool wal_persisted_early = false;
  // How many WAL writes in a thousand stall for 50-500 ms (the others take 0-3 ms).
  uint32_t wal_stall_per_mille = 10;
  // Broken rules for the lease and watch checks (sim_member_services.h): the leader's lease
  // expiry runs on a clock 700 ms ahead (leases are revoked early); one applied batch in 16
  // never reaches a member's watch hub (watchers miss events).
  bool lease_expires_early = false;
  bool watch_drops_events = false;
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
  uint64_t members_added = 0;  // learners whose addition was applied
  uint64_t members_promoted = 0;
  uint64_t members_removed = 0;
  uint64_t disk_failures = 0;        // members stopped by an injected WAL or backend disk fault
  uint64_t wal_writes = 0;           // WAL writes (persist requests) completed
  uint64_t wal_stalls = 0;           // of which stalled 50-500 ms
  uint64_t commit_stalls = 0;        // turns whose backend commit stalled the member
  uint64_t leader_terms = 0;         // distinct terms that had a leader
  uint64_t checkpoints = 0;          // backend syncs completed
  uint64_t snapshots = 0;            // snapshot images a member received from a leader
  uint64_t hash_checks = 0;          // pairs of members compared at one applied index
  uint64_t final_index = 0;          // the applied index every member reached
  uint64_t end_ms = 0;               // the virtual time the run ended
  uint64_t lease_grants = 0;         // acknowledged
  uint64_t lease_keepalives = 0;     // acknowledged
  uint64_t lease_revokes = 0;        // clients' revokes acknowledged
  uint64_t lease_expiries = 0;       // revokes the leader proposed for expired leases
  uint64_t leased_puts = 0;          // acknowledged puts with a lease
  uint64_t leased_puts_refused = 0;  // puts refused with "requested lease not found"
  uint64_t lease_checks = 0;         // members' leases compared at one applied index
  uint64_t watches = 0;              // watchers created (re-created ones included)
  uint64_t watch_events = 0;         // events delivered and checked
  uint64_t watch_compacted = 0;      // watchers cancelled with the compact revision
  uint64_t watch_restarts = 0;       // watchers re-created after their member went down
};

ClusterSimResult RunClusterSimulation(const ClusterSimOptions& options);

}  // namespace dolmen::sim
