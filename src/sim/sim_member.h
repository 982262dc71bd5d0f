// One dolmen member inside the simulator: the real MemberCore with the real WAL on a memory file
// system, the real mvcc::Store and Applier on a crashable memory backend, the real Membership.
// No thread and no clock: the cluster simulator (cluster_sim.h) feeds it turns at virtual times,
// carries what it sends, and runs its WAL writes and checkpoint syncs as simulated I/O
// completions.
//
// Its disk (file system and backend) outlives the member: Crash drops the core, the store and
// everything in memory, then crashes the disk (unsynced WAL bytes lost or torn, backend commits
// since the last sync possibly lost); Start opens the member again from what survived, in the
// order Server::OpenStorage does (src/server/server_storage.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dolmen/internal.pb.h"
#include "io/fault_injection_file_system.h"
#include "io/memory_file_system.h"
#include "mvcc/store.h"
#include "raft/memory_storage.h"
#include "server/applier.h"
#include "server/member_core.h"
#include "server/membership.h"
#include "sim/crashable_backend.h"
#include "sim/sim_member_services.h"
#include "wal/wal.h"

namespace dolmen::sim {

struct SimMemberOptions {
  server::DriverOptions driver;
  wal::Options wal;
  bool pre_vote = true;
  // The broken rule the simulator must catch: the WAL's file system acknowledges Sync without
  // syncing (io::NoSyncFileSystem), so a member acknowledges entries a crash then loses.
  bool wal_sync_lies = false;
  // The lessor, its expiry checker and the watch hub around the core (sim_member_services.h).
  MemberServicesOptions services;
};

class SimMember {
 public:
  // Receives each message the member sends.
  using SendFn = std::function<void(raft::Message)>;
  // Receives each snapshot message with the image of the backend it stands for (taken when
  // sent, as the peer transport streams CopyTo's file).
  using SendSnapshotFn =
      std::function<void(raft::Message, std::shared_ptr<backend::Backend> image)>;

  // `initial`: the cluster's first members, bootstrapped into the log at the first Start (as
  // etcd's --initial-cluster does: one committed conf change per member at term 1); or, with
  // `join`, the running cluster's members (itself included, added as a learner), recorded in
  // the backend at the first Start with an empty log, as Server::Join does.
  SimMember(MemberId id, std::vector<internal::Member> initial, bool join, SimMemberOptions options,
            SendFn send, SendSnapshotFn send_snapshot);
  ~SimMember();
  SimMember(const SimMember&) = delete;
  SimMember& operator=(const SimMember&) = delete;

  // Opens storage (bootstrap on an empty disk, recovery otherwise) and starts the core at
  // `now`. `seed` seeds Raft's election timeouts.
  Status Start(server::TimePoint now, uint64_t seed);
  // The process dies: every caller it holds hears kStopped (a client sees its connection
  // drop), then the disk loses what it had not made durable.
  void Crash(const io::CrashOptions& fs_crash, bool lose_unsynced_commits);
  // The member failed (a Turn error) and stops; its disk stays as it is.
  void Stop(const Status& why);
  // A snapshot image from the leader arrived (Server::ReceiveSnapshot): checked to cover
  // `index`, then kept on disk until the snapshot is installed. Deliver the message after.
  Status ReceiveImage(Index index, std::shared_ptr<backend::Backend> image);

  MemberId id() const { return id_; }
  bool up() const { return core_ != nullptr; }
  // How many times it started: a sync completion from an earlier life is dropped.
  uint64_t incarnation() const { return incarnation_; }
  server::MemberCore& core() { return *core_; }
  const server::MemberCore& core() const { return *core_; }
  mvcc::Store& store() { return *store_; }
  // The index the store's state stands for (up() only): the applied one, or past it right after
  // a snapshot install (the leader's image covers more than the snapshot's index; Raft then
  // re-applies entries the store already holds and skips them).
  uint64_t StateIndex() {
    return std::max(core_->applied_index().value(), store_->ConsistentIndex().value());
  }
  raft::MemoryStorage& raft_storage() { return *raft_storage_; }
  const server::Membership& membership() const { return *membership_; }
  // The lessor and the watch hub of the running process (up() only).
  MemberServices& services() { return *services_; }
  CrashableBackend& backend() { return *backend_; }
  // The WAL the core's persist requests are written to (the simulator is the shell: it starts
  // each write at once and completes its fdatasync later); up() only.
  wal::Wal& wal() { return *wal_; }
  // The WAL's disk fails on demand (the next sync, an append torn part way): the member's turn
  // then reports the error and the member must stop, as a real one does on a failed fsync.
  io::FaultInjectionFileSystem& wal_faults() { return *wal_faults_; }

 private:
  class Peers;
  Status OpenStorage(std::vector<raft::Entry>* bootstrap, raft::HardState* bootstrap_hs,
                     std::optional<wal::Recovered>* recovered);
  Status StartCore(const wal::Recovered* recovered, std::vector<raft::Entry> bootstrap,
                   raft::HardState bootstrap_hs, server::TimePoint now, uint64_t seed);
  // Server::RestoreFromImage and InstallSnapshot: the kept image at `index` replaces the store.
  Status InstallImage(Index index);
  void DropMemory();

  const MemberId id_;
  const std::vector<internal::Member> initial_;
  const bool join_;
  const SimMemberOptions options_;
  const SendFn send_;
  const SendSnapshotFn send_snapshot_;
  uint64_t incarnation_ = 0;

  // The disk: survives crashes.
  std::unique_ptr<io::MemoryFileSystem> fs_;
  std::unique_ptr<io::FileSystem> lying_fs_;                  // around fs_ when wal_sync_lies
  std::unique_ptr<io::FaultInjectionFileSystem> wal_faults_;  // the WAL's file system
  std::unique_ptr<CrashableBackend> backend_;
  // Snapshot images received, by index (the snap dir; written whole and synced on receipt).
  std::map<uint64_t, std::shared_ptr<backend::Backend>> images_;

  // The process: rebuilt at each Start, dropped at a crash.
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<server::Membership> membership_;
  std::unique_ptr<server::Applier> applier_;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<raft::MemoryStorage> raft_storage_;
  std::unique_ptr<Peers> peers_;
  std::unique_ptr<MemberServices> services_;
  std::unique_ptr<server::MemberCore> core_;
};

// The member record of simulated member `id` (its peer URL names it; no network is real).
internal::Member SimMemberRecord(MemberId id);

}  // namespace dolmen::sim
