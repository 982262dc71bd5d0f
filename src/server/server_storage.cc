// Server: opening the WAL and the backend, recovery, and the first start's bootstrap made
// durable.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>

#include "base/coding.h"
#include "log/log.h"
#include "raft/conf_change.h"
#include "server/auth_checks.h"
#include "server/member_id.h"
#include "server/request_checks.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

// WAL metadata: which member and cluster this log belongs to. Format version 1:
// [u8 version=1][fixed64 member_id][fixed64 cluster_id].
constexpr char kMetadataVersion = 1;

std::string EncodeMetadata(MemberId member, ClusterId cluster) {
  std::string out(1, kMetadataVersion);
  coding::PutFixed64(&out, member.value());
  coding::PutFixed64(&out, cluster.value());
  return out;
}

Status DecodeMetadata(const std::string& in, const std::string& wal_dir, MemberId* member,
                      ClusterId* cluster) {
  if (in.size() != 17 || in[0] != kMetadataVersion) {
    return Corruption("WAL metadata in " + wal_dir + " is not a Dolmen member record (" +
                      std::to_string(in.size()) + " bytes)");
  }
  *member = MemberId(coding::DecodeFixed64(in.data() + 1));
  *cluster = ClusterId(coding::DecodeFixed64(in.data() + 9));
  return OkStatus();
}

}  // namespace

Status Server::OpenStorage() {
  io::FileSystem* fs = config_.fs;
  const std::string member_dir = config_.data_dir + "/member";
  const std::string wal_dir = config_.wal_dir.empty() ? member_dir + "/wal" : config_.wal_dir;
  RETURN_IF_ERROR(fs->CreateDirs(member_dir));
  ASSIGN_OR_RETURN(lock_, fs->LockFile(member_dir + "/LOCK"));

  backend::Options backend_options;
  backend_options.no_sync = config_.backend_no_sync;
  if (config_.quota_backend_bytes > 0) {
    // The map is address space, not disk: leave room above the quota for LMDB's own pages.
    backend_options.map_size_bytes =
        std::max<uint64_t>(backend_options.map_size_bytes, config_.quota_backend_bytes * 2);
  }
  ASSIGN_OR_RETURN(backend_, OpenBackend(member_dir + "/db", wal_dir, backend_options));
  ASSIGN_OR_RETURN(store_, mvcc::Store::Open(backend_.get()));
  RETURN_IF_ERROR(OpenLeases());
  RETURN_IF_ERROR(OpenAuth());
  membership_ = std::make_unique<Membership>();
  RETURN_IF_ERROR(membership_->Load(backend_.get()));
  images_ = std::make_unique<SnapshotImages>(fs, member_dir + "/snap");
  Index applied = store_->ConsistentIndex();

  if (wal::Wal::Exists(fs, wal_dir)) {
    restarted_ = true;
    ASSIGN_OR_RETURN(auto opened, wal::Wal::Open(fs, wal_dir, config_.wal));
    wal_ = std::move(opened.first);
    wal::Recovered& recovered = opened.second;
    for (const auto& note : recovered.repairs) {
      log::Warn("repaired the write-ahead log", {{"wal-dir", wal_dir}, {"repair", note}});
    }
    RETURN_IF_ERROR(DecodeMetadata(recovered.metadata, wal_dir, &member_id_, &cluster_id_));
    if (BootstrapNeverReachedTheLog(recovered, applied)) return FinishBootstrap(wal_dir);
    if (recovered.snapshot && recovered.snapshot->index > applied) {
      // The log recorded a snapshot from the leader that the backend does not hold: the
      // member stopped between the two. The image waits in the snap dir.
      log::Info("installing the snapshot image that the last run received",
                {{"snapshot-index", recovered.snapshot->index.value()}});
      RETURN_IF_ERROR(RestoreFromImage(recovered.snapshot->index));
      RETURN_IF_ERROR(ReloadLeases());
      RETURN_IF_ERROR(auth_->Load(backend_.get()));
      RETURN_IF_ERROR(membership_->Load(backend_.get()));
      applied = store_->ConsistentIndex();
    }
    images_->RemoveUpTo(applied, /*include_outgoing=*/true);
    uint64_t first = recovered.snapshot          ? recovered.snapshot->index.value() + 1
                     : recovered.entries.empty() ? 1
                                                 : recovered.entries.front().index.value();
    if (first > applied.value() + 1) {
      return Corruption("write-ahead log in " + wal_dir + " starts at index " +
                        std::to_string(first) + " but the backend has applied only up to " +
                        std::to_string(applied.value()));
    }
    if (config_.force_new_cluster) RETURN_IF_ERROR(ForceStandalone(&recovered, applied));
    return StartRaft(&recovered, {}, {});
  }
  if (config_.force_new_cluster) {
    log::Info("--force-new-cluster has no effect on a new data dir: starting a new cluster");
  }
  if (applied.value() > 0) {
    return Corruption("data dir " + config_.data_dir + " has a backend applied to index " +
                      std::to_string(applied.value()) + " but no write-ahead log in " + wal_dir);
  }
  std::vector<raft::Entry> entries;
  raft::HardState hs;
  RETURN_IF_ERROR(Bootstrap(&entries, &hs));
  // The backend's first state (its meta pages, a joiner's membership) is durable before the log
  // exists: a data dir with a log always has a backend LMDB can open (OpenBackend relies on it).
  RETURN_IF_ERROR(backend_->Sync());
  if (entries.empty()) {
    // Joining: nothing to log yet; the WAL starts empty.
    ASSIGN_OR_RETURN(
        wal_, wal::Wal::Create(fs, wal_dir, EncodeMetadata(member_id_, cluster_id_), config_.wal));
    return StartRaft(nullptr, {}, {});
  }
  ASSIGN_OR_RETURN(
      wal_, wal::Wal::Create(fs, wal_dir, EncodeMetadata(member_id_, cluster_id_), config_.wal));
  RETURN_IF_ERROR(wal_->Append(entries, hs));
  RETURN_IF_ERROR(wal_->Sync());
  return StartRaft(nullptr, std::move(entries), hs);
}

Status Server::ForceStandalone(wal::Recovered* recovered, Index applied) {
  internal::Member self;
  if (auto known = membership_->Get(member_id_)) self = *known;
  if (self.peer_urls().empty()) {
    for (const auto& u : config_.peer_urls) self.add_peer_urls(u);
  }
  ASSIGN_OR_RETURN(StandaloneRestart plan,
                   PlanStandaloneRestart(recovered, applied, member_id_, self));
  // The conf changes overwrite the discarded tail and are durable, with the commit index that
  // covers them, before Raft starts: a crash now restarts as the one-member cluster too.
  RETURN_IF_ERROR(wal_->Append(plan.appended, recovered->hard_state));
  RETURN_IF_ERROR(wal_->Sync());
  std::string removed;
  for (MemberId id : plan.removed) removed += (removed.empty() ? "" : ", ") + log::Hex(id.value());
  log::Warn(
      "WARNING: --force-new-cluster: forcing this member into a one-member cluster. "
      "Acknowledged writes the other members held past this member's log are lost. Never "
      "restart the removed members on their old data dirs: add them back with 'etcdctl member "
      "add' and empty data dirs. Start this member without --force-new-cluster from now on",
      {{"local-member-id", log::Hex(member_id_.value())},
       {"cluster-id", log::Hex(cluster_id_.value())},
       {"commit-index", plan.commit.value()},
       {"discarded-uncommitted-entries", plan.discarded_entries},
       {"removed-members", removed.empty() ? std::string("none") : removed},
       {"added-itself", plan.added_self}});
  return OkStatus();
}

Result<std::unique_ptr<backend::Backend>> Server::OpenBackend(const std::string& dir,
                                                              const std::string& wal_dir,
                                                              const backend::Options& options) {
  auto opened = config_.open_backend(dir, options);
  if (opened.ok() || opened.status().code() != Code::kCorruption ||
      wal::Wal::Exists(config_.fs, wal_dir)) {
    return opened;
  }
  // No log yet: the member's first start stopped before it (the backend is synced before the
  // log is created), so nothing was ever applied or acknowledged, and a power cut can leave a
  // data file whose first pages never reached the disk. It is kept aside, not deleted, in case
  // an operator put it there, and the start goes on with a new one.
  std::string aside = dir + ".unreadable";
  for (int n = 1; config_.fs->Exists(aside); ++n) aside = dir + ".unreadable." + std::to_string(n);
  RETURN_IF_ERROR(config_.fs->CreateDirs(aside));
  ASSIGN_OR_RETURN(std::vector<std::string> files, config_.fs->ListDir(dir));
  for (const std::string& name : files) {
    RETURN_IF_ERROR(config_.fs->Rename(dir + "/" + name, aside + "/" + name));
  }
  RETURN_IF_ERROR(config_.fs->SyncDir(dir));
  log::Warn(
      "the storage backend cannot be read and there is no write-ahead log yet, so the first "
      "start was cut short before anything was applied: moved it aside, creating a new one",
      {{"path", dir}, {"moved-to", aside}, {"error", opened.status().message()}});
  return config_.open_backend(dir, options);
}

bool Server::BootstrapNeverReachedTheLog(const wal::Recovered& recovered, Index applied) const {
  // A member that starts a new cluster creates its log, then appends the bootstrap entries and
  // syncs them. A power cut (or kill -9) between the two leaves a log with nothing in it: no
  // entry, no vote, nothing applied. Such a member never said or acknowledged anything, and
  // started as is it would wait forever for a configuration. A joining member's log is empty
  // until the leader reaches it, which is normal.
  return !config_.initial_cluster_existing && recovered.entries.empty() &&
         !recovered.snapshot.has_value() && recovered.hard_state.IsEmpty() && applied.value() == 0;
}

Status Server::FinishBootstrap(const std::string& wal_dir) {
  const MemberId logged_member = member_id_;
  const ClusterId logged_cluster = cluster_id_;
  std::vector<raft::Entry> entries;
  raft::HardState hs;
  RETURN_IF_ERROR(Bootstrap(&entries, &hs));
  if (member_id_ != logged_member || cluster_id_ != logged_cluster) {
    return Status(
        Code::kFailedPrecondition,
        "the write-ahead log in " + wal_dir + " was created for member " +
            log::Hex(logged_member.value()) + " of cluster " + log::Hex(logged_cluster.value()) +
            " and holds no entries; these flags describe member " + log::Hex(member_id_.value()) +
            " of cluster " + log::Hex(cluster_id_.value()) + ": remove the data dir to start over");
  }
  log::Warn(
      "the write-ahead log holds no entries: the first start stopped before its bootstrap "
      "reached the disk; bootstrapping again",
      {{"wal-dir", wal_dir}});
  RETURN_IF_ERROR(wal_->Append(entries, hs));
  RETURN_IF_ERROR(wal_->Sync());
  return StartRaft(nullptr, std::move(entries), hs);
}

}  // namespace dolmen::server
