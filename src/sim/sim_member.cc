#include "sim/sim_member.h"

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "io/no_sync_file_system.h"
#include "raft/raw_node.h"
#include "server/raft_log_start.h"

namespace dolmen::sim {
namespace {

constexpr char kWalDir[] = "/member/wal";

}  // namespace

internal::Member SimMemberRecord(MemberId id) {
  internal::Member m;
  m.set_id(id.value());
  m.add_peer_urls("sim://member-" + std::to_string(id.value()));
  return m;
}

// What the core sends goes to the simulator, which gives it a fate on the network.
class SimMember::Peers final : public server::PeerSender {
 public:
  explicit Peers(SimMember* member) : member_(member) {}
  void Send(std::vector<raft::Message> messages) override {
    for (raft::Message& m : messages) member_->send_(std::move(m));
  }
  // Server::WriteSnapshotImage: a copy of the committed backend, which covers the snapshot's
  // index (the checkpoint behind it committed and synced the backend first).
  void SendSnapshot(raft::Message message) override {
    auto image = CopyBackend(*member_->backend_);
    CHECK(image.ok()) << image.status().ToString();
    member_->send_snapshot_(std::move(message), std::move(*image));
  }
  void SetPeers(const std::vector<internal::Member>&) override {}

 private:
  SimMember* member_;
};

SimMember::SimMember(MemberId id, std::vector<internal::Member> initial, bool join,
                     SimMemberOptions options, SendFn send, SendSnapshotFn send_snapshot)
    : id_(id),
      initial_(std::move(initial)),
      join_(join),
      options_(options),
      send_(std::move(send)),
      send_snapshot_(std::move(send_snapshot)),
      fs_(io::NewMemoryFileSystem()),
      backend_(std::make_unique<CrashableBackend>()) {
  if (options_.wal_sync_lies) {
    lying_fs_ = std::make_unique<io::NoSyncFileSystem>(
        fs_.get(),
        io::NoSyncFileSystem::Options{.keep_dir_syncs = true, .keep_first_file_sync = true});
  }
  wal_faults_ =
      std::make_unique<io::FaultInjectionFileSystem>(lying_fs_ ? lying_fs_.get() : fs_.get());
}

SimMember::~SimMember() { DropMemory(); }

void SimMember::DropMemory() {
  // Users of the store go before it, the store before the backend it reads.
  core_.reset();
  services_.reset();
  peers_.reset();
  raft_storage_.reset();
  wal_.reset();
  applier_.reset();
  membership_.reset();
  store_.reset();
}

Status SimMember::Start(server::TimePoint now, uint64_t seed) {
  CHECK(!up()) << "member " << id_.value() << " started twice";
  ++incarnation_;
  std::vector<raft::Entry> bootstrap;
  raft::HardState bootstrap_hs;
  std::optional<wal::Recovered> recovered;
  if (Status s = OpenStorage(&bootstrap, &bootstrap_hs, &recovered); !s.ok()) {
    DropMemory();
    return s;
  }
  Status s =
      StartCore(recovered ? &*recovered : nullptr, std::move(bootstrap), bootstrap_hs, now, seed);
  if (!s.ok()) DropMemory();
  return s;
}

// Server::OpenStorage's order, without the parts the simulator has no use for (auth, alarms,
// --force-new-cluster; the leases open with the core, in StartCore): backend and store, membership,
// then the WAL (recovered, or created with the bootstrap entries synced). Server's own method
// cannot be reused: it belongs to a Server, whose opening also starts threads, a read pool and the
// lessor's timers.
Status SimMember::OpenStorage(std::vector<raft::Entry>* bootstrap, raft::HardState* bootstrap_hs,
                              std::optional<wal::Recovered>* recovered) {
  io::FileSystem* wal_fs = wal_faults_.get();
  ASSIGN_OR_RETURN(store_, mvcc::Store::Open(backend_.get()));
  membership_ = std::make_unique<server::Membership>();
  RETURN_IF_ERROR(membership_->Load(backend_.get()));
  const Index applied = store_->ConsistentIndex();
  if (wal::Wal::Exists(wal_fs, kWalDir)) {
    ASSIGN_OR_RETURN(auto opened, wal::Wal::Open(wal_fs, kWalDir, options_.wal));
    wal_ = std::move(opened.first);
    *recovered = std::move(opened.second);
    const wal::Recovered& r = **recovered;
    Index applied_now = applied;
    if (r.snapshot && r.snapshot->index > applied) {
      // The log recorded a snapshot the backend does not hold yet: its image waits on disk.
      RETURN_IF_ERROR(InstallImage(r.snapshot->index));
      applied_now = store_->ConsistentIndex();
    }
    const uint64_t first = r.snapshot          ? r.snapshot->index.value() + 1
                           : r.entries.empty() ? 1
                                               : r.entries.front().index.value();
    // Raft stops the process on a commit index past its log (a broken invariant); only a disk
    // that lost synced writes (wal_sync_lies) produces one. Refused here, so the simulator
    // reports it and goes on to the next seed instead of dying.
    const uint64_t last = !r.entries.empty() ? r.entries.back().index.value()
                          : r.snapshot       ? r.snapshot->index.value()
                                             : 0;
    if (r.hard_state.commit.value() > last) {
      return Corruption("the log's commit index " + std::to_string(r.hard_state.commit.value()) +
                        " is past its last entry " + std::to_string(last));
    }
    if (first > applied_now.value() + 1) {
      return Corruption("write-ahead log starts at index " + std::to_string(first) +
                        " but the backend has applied only up to " +
                        std::to_string(applied_now.value()));
    }
    return OkStatus();
  }
  if (applied.value() > 0) {
    return Corruption("backend applied to index " + std::to_string(applied.value()) +
                      " but no write-ahead log");
  }
  if (join_) {
    // Server::Join: the members known before the log brings them, so the leader's messages are
    // answered; nothing to log yet.
    ASSIGN_OR_RETURN(backend::WriteTxn * txn, store_->BatchTxn());
    for (const internal::Member& m : initial_) RETURN_IF_ERROR(membership_->Add(m, txn));
    RETURN_IF_ERROR(store_->Commit(Index(0)));
  } else {
    server::BootstrapEntries(initial_, bootstrap, bootstrap_hs);
  }
  RETURN_IF_ERROR(backend_->Sync());
  ASSIGN_OR_RETURN(
      wal_,
      wal::Wal::Create(wal_fs, kWalDir, "sim-member-" + std::to_string(id_.value()), options_.wal));
  if (bootstrap->empty()) return OkStatus();
  RETURN_IF_ERROR(wal_->Append(*bootstrap, *bootstrap_hs));
  return wal_->Sync();
}

// Server::StartRaft's order: Raft's storage from the log, then the node and the core.
Status SimMember::StartCore(const wal::Recovered* recovered, std::vector<raft::Entry> bootstrap,
                            raft::HardState bootstrap_hs, server::TimePoint now, uint64_t seed) {
  raft_storage_ = std::make_unique<raft::MemoryStorage>();
  ASSIGN_OR_RETURN(auto node, server::StartRaftNode(
                                  recovered, bootstrap, bootstrap_hs,
                                  {id_, options_.driver.election_ticks, options_.pre_vote, seed},
                                  raft_storage_.get()));

  applier_ = std::make_unique<server::Applier>(store_.get());
  ASSIGN_OR_RETURN(services_, MemberServices::Open(id_, options_.driver, options_.services,
                                                   backend_.get(), store_.get(), applier_.get()));
  peers_ = std::make_unique<Peers>(this);
  server::MemberCore::Deps deps;
  deps.wal = wal_.get();
  deps.store = store_.get();
  deps.applier = applier_.get();
  deps.membership = membership_.get();
  deps.storage = raft_storage_.get();
  deps.peers = peers_.get();
  // Each life's read contexts apart from the earlier lives' (read_barrier.h).
  deps.read_context_start = (incarnation_ << 40) | 1;
  deps.install_snapshot = [this](const raft::SnapshotMetadata& meta) {
    return InstallImage(meta.index);
  };
  core_ =
      std::make_unique<server::MemberCore>(std::move(deps), std::move(node), id_, options_.driver);
  core_->set_observers(
      services_->Observers([this] { return core_ != nullptr && core_->leader() == id_; }));
  core_->Start(now);
  return OkStatus();
}

Status SimMember::ReceiveImage(Index index, std::shared_ptr<backend::Backend> image) {
  ASSIGN_OR_RETURN(auto txn, image->BeginRead());
  ASSIGN_OR_RETURN(Index at, mvcc::Store::ImageConsistentIndex(*txn));
  if (at < index) {
    return Corruption("snapshot image holds index " + std::to_string(at.value()) +
                      ", older than its snapshot at " + std::to_string(index.value()));
  }
  images_[index.value()] = std::move(image);
  return OkStatus();
}

Status SimMember::InstallImage(Index index) {
  auto it = images_.find(index.value());
  if (it == images_.end()) {
    return Corruption("the log records a snapshot at index " + std::to_string(index.value()) +
                      " but its image is missing");
  }
  {
    ASSIGN_OR_RETURN(auto txn, it->second->BeginRead());
    RETURN_IF_ERROR(store_->Restore(*txn));
  }
  RETURN_IF_ERROR(store_->Sync());
  RETURN_IF_ERROR(membership_->Load(backend_.get()));
  // Server::InstallSnapshot reloads the leases from the image (at open they load after this).
  if (services_) RETURN_IF_ERROR(services_->ReloadLeases());
  // Server::InstallSnapshot keeps later images (a newer snapshot may be on its way).
  images_.erase(images_.begin(), std::next(it));
  return OkStatus();
}

void SimMember::Stop(const Status& why) {
  if (!up()) return;
  core_->FailAll(Status(Code::kStopped, "server stopped: " + why.ToString()), {});
  DropMemory();
}

void SimMember::Crash(const io::CrashOptions& fs_crash, bool lose_unsynced_commits) {
  Stop(Status(Code::kStopped, "crashed"));
  wal_faults_->ClearFaults();  // a disk fault that stopped the member is not there at restart
  fs_->Crash(fs_crash);
  backend_->Crash(lose_unsynced_commits);
}

}  // namespace dolmen::sim
