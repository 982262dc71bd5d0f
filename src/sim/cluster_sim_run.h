// The whole-cluster simulator's run (cluster_sim.h): the class every cluster_sim*.cc file
// defines a part of. Internal to src/sim: cluster_sim.cc (the loop, delivery, syncs,
// restarts, turns, phases), cluster_sim_disk.cc (WAL writes as I/O completions, backend
// commit stalls), cluster_sim_faults.cc, cluster_sim_clients.cc (the load and its
// history), cluster_sim_leases.cc (the clients' leases, the leader's expiry, the lease rules),
// cluster_sim_watches.cc (watchers and their check), cluster_sim_checks.cc (the checks after
// every step and at the end).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "dolmen/internal.pb.h"
#include "sim/cluster_sim.h"
#include "sim/history.h"
#include "sim/sim_leases.h"
#include "sim/sim_member.h"
#include "sim/sim_network.h"
#include "sim/sim_watchers.h"

namespace dolmen::sim {

using Kind = ClientOp::Kind;
using Outcome = ClientOp::Outcome;

// Virtual time 0 as the members' clock shows it (any fixed point will do).
inline const server::TimePoint kEpoch{std::chrono::hours(1)};
inline server::TimePoint At(uint64_t ms) { return kEpoch + std::chrono::milliseconds(ms); }
// Rounded up: a wake-up due inside a millisecond is served at its end, never before.
inline uint64_t Ms(server::TimePoint t) {
  const auto since = t - kEpoch;
  if (since <= std::chrono::nanoseconds(0)) return 0;
  return static_cast<uint64_t>(
      (since + std::chrono::milliseconds(1) - std::chrono::nanoseconds(1)) /
      std::chrono::milliseconds(1));
}

// Deadline of every request, conf change and leader move.
inline constexpr uint64_t kRequestTimeoutMs = 1000;
// How often every member runs its lease expiry checker (LeaseExpiryOptions::check_interval;
// the server's default is 500 ms): short, so expired leases go soon after the TTL and runs
// that wait for every lease to be revoked stay short.
inline constexpr std::chrono::milliseconds kLeaseCheckInterval{100};
// The client of the final reads, and of the revokes the leader proposes on expiry.
inline constexpr int kFinalReadClient = -1;
inline constexpr int kLeaderClient = -2;

// The members' clock: the run's virtual time.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(const uint64_t* now_ms) : now_ms_(now_ms) {}
  std::chrono::steady_clock::time_point Now() const override { return At(*now_ms_); }

 private:
  const uint64_t* const now_ms_;
};

class ClusterSim {
 public:
  explicit ClusterSim(const ClusterSimOptions& options)
      : o_(options),
        random_(options.seed),
        network_(&random_, NetworkFaults{0, 0, 1, 5, /*duplicate_proposals=*/false}) {}

  ClusterSimResult Run();

 private:
  struct Node {
    std::unique_ptr<SimMember> member;
    bool removed = false;  // removed from the cluster: never restarted, never checked again
    server::InboxBatch inbox;
    std::optional<uint64_t> restart_at;
    uint64_t hashed_applied = UINT64_MAX;  // the applied index whose hash was last checked
    uint64_t checked_commit = 0;           // committed entries up to here were recorded
    uint64_t leases_checked = UINT64_MAX;  // the applied index whose leases were last checked
    uint64_t watch_pumped = UINT64_MAX;    // the applied index its hub last delivered
    // Its owner thread is blocked in a stalled backend commit until then: no turn before.
    uint64_t busy_until = 0;
  };
  // A WAL write the member's core asked for (server::PersistRequest): written when it was
  // asked for, its fdatasync done and WalPersisted reported at `at`, unless the member died.
  struct PendingPersist {
    uint64_t at;
    size_t node;
    uint64_t incarnation;
    bool sync;
    Status started;  // how the write went; an error is reported without a sync
    bool reported;   // wal_persisted_early: already reported when it started
  };
  struct PendingSync {
    uint64_t at;
    size_t node;
    uint64_t incarnation;
    uint64_t applied;
  };
  struct Client {
    bool busy = false;
    uint64_t next_at = 0;
    std::map<std::string, std::string> known;  // key -> the last value it saw (for CAS)
  };
  enum class Phase { kChaos, kDrain, kFinalReads, kConverge, kDone };

  void Start();
  void NewNode(MemberId id, std::vector<internal::Member> members, bool join);
  void Step();
  uint64_t NextEventTime() const;
  void Deliver();
  bool ReceiveSnapshot(Node& n, const raft::Message& m);
  void ReportSnapshot(const raft::Message& m, bool done);
  void RefuseRemoved(MemberId from);
  void CompleteSyncs();
  void StartPersist(size_t node, const server::PersistRequest& write);
  void CompletePersists();
  void MaybeStallCommit(size_t node, uint64_t commits_before);
  void Restarts();
  void Faults();
  void Clients();
  void Turns();
  void Check();
  void Advance();

  // Clients.
  // False if no member is up to ask.
  bool Issue(int client, Kind kind, const std::string& key);
  std::optional<size_t> RandomUpNode();
  std::optional<size_t> RandomServingNode();
  size_t NewOp(int client, Kind kind, const std::string& key);
  void Complete(size_t op, const server::ApplyResult& result);
  void CompleteRead(size_t op, size_t node, const Status& barrier);
  void Finish(size_t op);
  void Propose(size_t node, internal::InternalRequest request, server::ProposalDone done);
  // A client's next request is a lease operation (a grant or a revoke).
  bool IssueLeaseOp(int client);
  // The lease a put of `client` attaches, if any (0: none).
  int64_t LeaseForPut(int client);
  void CompleteLeaseOp(ClientOp& op, const server::ApplyResult& r);

  // Leases (cluster_sim_leases.cc).
  void KeepAlives();
  // The leader's answer to a keep-alive sent at `sent` (its read barrier passed, or why not).
  void KeepAliveAnswered(int64_t id, uint64_t sent, size_t node, Status confirmed);
  void ExpireLeases();
  std::optional<uint64_t> NextLeaseEvent() const;
  void CheckLeases(Node& n);
  void FinalLeaseChecks(const std::vector<Node*>& members);

  // Watches (cluster_sim_watches.cc).
  void Watches();
  void OpenWatch(SimWatch& w, size_t node);
  void PumpWatches(bool force);
  void PumpWatchesOn(size_t node);
  void FinalWatchChecks(const std::vector<Node*>& members);

  // Faults.
  void Crash(size_t node, uint64_t down_ms);
  void PowerLoss();
  void PartitionRandomly();
  void MoveLeader();
  void Compact();
  void ChangeMembership();
  void FailDisk();
  void ProposeConfChange(size_t leader, raft::ConfChange cc, std::function<void()> applied);
  void ShakeNetwork();
  std::optional<size_t> Leader() const;

  // Checks.
  void CheckLeaders();
  void CheckCommitted(Node& n);
  void CheckHash(Node& n);
  void FinalChecks();
  std::vector<Node*> CurrentMembers(size_t leader);
  void Fail(const std::string& what);
  void Trace(const std::string& what) const;

  const ClusterSimOptions o_;
  SeededRandom random_;
  VirtualClock clock_{&now_};
  SimNetwork network_;
  uint64_t now_ = 0;
  Phase phase_ = Phase::kChaos;
  std::vector<Node> nodes_;
  std::vector<PendingSync> syncs_;
  std::vector<PendingPersist> persists_;  // one per member (more only with wal_persisted_early)
  std::vector<Client> clients_;
  std::vector<ClientOp> ops_;
  std::set<std::string> final_reads_pending_;    // keys without a successful final read
  std::map<std::string, size_t> final_read_op_;  // key -> its final read in flight
  uint64_t next_request_id_ = 1;
  size_t final_leader_ = 0;
  uint64_t next_fault_at_ = 0;
  std::optional<uint64_t> heal_partition_at_;
  ClusterSimResult result_;
  // Snapshot images in flight, by (receiver, snapshot index): the peer stream's file.
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<backend::Backend>> images_;
  std::map<uint64_t, MemberId> leaders_;          // term -> its leader
  std::map<uint64_t, uint64_t> committed_terms_;  // index -> term of the committed entry
  std::map<uint64_t, std::pair<uint32_t, MemberId>> hash_at_;  // applied index -> hash, by whom
  // Leases.
  LeaseBook leases_;
  int64_t next_lease_id_ = 0x10000;
  uint64_t next_expiry_check_at_ = 0;
  std::map<uint64_t, std::pair<uint64_t, MemberId>> lease_digest_at_;  // applied index -> digest
  // Watches.
  RevisionLog revisions_;
  std::optional<std::string> applied_violation_;  // from a member's applied observer
  std::vector<SimWatch> watches_;
  uint64_t next_watch_at_ = 0;
};

}  // namespace dolmen::sim
