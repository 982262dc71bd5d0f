// The member's side of etcd's Maintenance service: alarms and the backend quota, the backend
// hash, defragmentation and client snapshots. See docs/maintenance.md.
#include <openssl/evp.h>

#include <cstdio>
#include <future>

#include "log/log.h"
#include "server/server.h"

namespace dolmen::server {
namespace {

// Member-local state left out of the backend hash, as etcd leaves out its consistent index:
// each member records the log index it applied, which differs while members catch up
// (docs/formats/mvcc.md).
bool MemberLocal(std::string_view bucket, std::string_view key) {
  return bucket == "meta" && key == "consistent_index";
}

}  // namespace

// ---------------------------------------------------------------- BackendSnapshot

BackendSnapshot::BackendSnapshot(io::FileSystem* fs, std::string path, uint64_t size_bytes)
    : fs_(fs), path_(std::move(path)), size_bytes_(size_bytes), sha_(EVP_MD_CTX_new()) {
  CHECK(sha_ != nullptr && EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) == 1)
      << "OpenSSL SHA-256 unavailable";
}

BackendSnapshot::~BackendSnapshot() {
  EVP_MD_CTX_free(sha_);
  Status s = fs_->Remove(path_);
  if (!s.ok()) log::Warn("cannot remove a snapshot file", {{"error", s.ToString()}});
}

Result<std::string> BackendSnapshot::Next(size_t max_bytes) {
  if (sent_bytes_ >= size_bytes_) return std::string();
  size_t want = static_cast<size_t>(std::min<uint64_t>(max_bytes, size_bytes_ - sent_bytes_));
  ASSIGN_OR_RETURN(std::string chunk, fs_->ReadAt(path_, sent_bytes_, want));
  if (chunk.size() != want) {
    return IoError("snapshot file " + path_ + " ended at " +
                   std::to_string(sent_bytes_ + chunk.size()) + " of " +
                   std::to_string(size_bytes_) + " bytes");
  }
  EVP_DigestUpdate(sha_, chunk.data(), chunk.size());
  sent_bytes_ += chunk.size();
  return chunk;
}

std::string BackendSnapshot::Sha256() {
  // Finalizing a copy keeps the running digest usable.
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  CHECK(copy != nullptr && EVP_MD_CTX_copy_ex(copy, sha_) == 1);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  CHECK(EVP_DigestFinal_ex(copy, digest, &length) == 1 && length == 32);
  EVP_MD_CTX_free(copy);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

// ---------------------------------------------------------------- Server

Status Server::OpenMaintenance() {
  alarms_ = std::make_unique<AlarmStore>();
  RETURN_IF_ERROR(alarms_->Load(backend_.get()));
  for (const auto& m : alarms_->Get(etcdserverpb::NONE)) {
    log::Warn("alarm is active", {{"alarm", etcdserverpb::AlarmType_Name(m.alarm())},
                                  {"from", log::Hex(m.memberid())}});
  }
  DiskGuardOptions disk = config_.disk_guard;
  if (disk.reserve_bytes == 0) disk.reserve_bytes = DiskReserveBytes(config_.wal.segment_bytes);
  disk_guard_ = std::make_unique<DiskGuard>(
      disk, [fs = config_.fs, dir = config_.data_dir] { return fs->AvailableBytes(dir); }, clock_,
      [](const std::string& line) { log::Warn(line); });
  disk_guard_->SampleNow();  // logs at once if the member starts below its reserve
  quota_ = std::make_unique<Quota>(config_.quota_backend_bytes,
                                   [this] { return backend_->SizeBytes(); });
  quota_->set_disk_guard(disk_guard_.get());
  if (quota_->quota_bytes() > kMaxRecommendedQuotaBytes) {
    // etcd's warning, with etcd's field names.
    log::Warn("quota exceeds the maximum value",
              {{"quota-size-bytes", quota_->quota_bytes()},
               {"quota-maximum-size-bytes", kMaxRecommendedQuotaBytes}});
  }
  applier_->set_alarms(alarms_.get(), quota_.get(), [this] { RaiseNoSpaceAlarm(); });
  if (config_.compact_hash_check_enabled) {
    compaction_hashes_ = std::make_unique<CompactionHashes>();
    applier_->set_compaction_hashes(compaction_hashes_.get());
  }

  const std::string member_dir = config_.data_dir + "/member";
  auto names = config_.fs->ListDir(member_dir);
  if (names.ok()) {
    for (const auto& name : *names) {
      if (name.starts_with(kSnapshotTempPrefix) && name.ends_with(".tmp")) {
        Status s = config_.fs->Remove(io::JoinPath(member_dir, name));
        if (!s.ok()) {
          log::Warn("cannot remove a leftover snapshot file", {{"error", s.ToString()}});
        }
      }
    }
  }
  return OkStatus();
}

void Server::RaiseNoSpaceAlarm() {
  if (alarms_->Active(etcdserverpb::NOSPACE)) return;
  if (raising_no_space_.exchange(true)) return;
  if (quota_->disk_low()) {
    log::Warn(
        "free space on the data dir's file system is below the reserve; raising the "
        "NOSPACE alarm",
        {{"free-bytes", disk_guard_->free_bytes()},
         {"reserve-bytes", disk_guard_->reserve_bytes()}});
  } else {
    log::Warn("a request exceeded the backend quota; raising the NOSPACE alarm",
              {{"quota-size-bytes", quota_->quota_bytes()}});
  }
  internal::InternalRequest request;
  auto* alarm = request.mutable_alarm();
  alarm->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm->set_memberid(member_id_.value());
  alarm->set_alarm(etcdserverpb::NOSPACE);
  Propose(std::move(request), [this](ApplyResult result) {
    raising_no_space_ = false;
    if (!result.status.ok()) {
      log::Error("failed to raise the NOSPACE alarm", {{"error", result.status.ToString()}});
    }
  });
}

Status Server::CheckQuota(uint64_t cost) {
  if (quota_->Available(cost)) return OkStatus();
  RaiseNoSpaceAlarm();
  return Status(Code::kNoSpace, "mvcc: database space exceeded");
}

std::vector<etcdserverpb::AlarmMember> Server::ActiveAlarms() const {
  return alarms_->Get(etcdserverpb::NONE);
}

void Server::Alarm(const etcdserverpb::AlarmRequest& r,
                   Callback<etcdserverpb::AlarmResponse> done) {
  if (Status s = RefuseIfLearner(); !s.ok()) return done(s);
  internal::InternalRequest request;
  *request.mutable_alarm() = r;
  Propose(std::move(request), [this, done = std::move(done)](ApplyResult result) {
    if (!result.status.ok()) return done(result.status);
    auto* response = std::get_if<etcdserverpb::AlarmResponse>(&result.response);
    CHECK(response != nullptr) << "alarm apply returned another response type";
    FillHeader(response->mutable_header());
    done(std::move(*response));
  });
}

void Server::Hash(Callback<BackendHash> done) {
  auto shared = std::make_shared<Callback<BackendHash>>(std::move(done));
  // Between turns every applied batch is committed to the backend, so a snapshot taken there
  // holds exactly the store's current revision. Taking it costs microseconds; the hash, which
  // reads the whole backend, runs beside the loop on that snapshot.
  driver_->RunInOrder([this, shared](Status stopped) {
    if (!stopped.ok()) return (*shared)(stopped);
    const Revision revision = store_->CurrentRevision();
    auto txn = backend_->BeginRead();
    if (!txn.ok()) return (*shared)(txn.status());
    std::shared_ptr<backend::ReadTxn> snapshot = std::move(txn).value();
    Status posted = maintenance_->Post([this, shared, snapshot, revision] {
      if (maintenance_hook_) maintenance_hook_("hash");
      auto hash = backend::HashContents(*snapshot, MemberLocal);
      if (!hash.ok()) return (*shared)(hash.status());
      (*shared)(BackendHash{*hash, revision});
    });
    if (!posted.ok()) (*shared)(posted);
  });
}

void Server::Defragment(std::function<void(Status)> done) {
  auto shared = std::make_shared<std::function<void(Status)>>(std::move(done));
  Status posted = maintenance_->Post([this, shared] {
    log::Info("starting to defragment the storage backend");
    const uint64_t before = backend_->SizeBytes();
    auto prepared = backend_->PrepareDefragment();
    if (!prepared.ok()) {
      log::Warn("failed to defragment the storage backend",
                {{"error", prepared.status().ToString()}});
      return (*shared)(prepared.status());
    }
    std::unique_ptr<backend::PreparedDefragment> swap = std::move(prepared).value();
    if (maintenance_hook_) maintenance_hook_("defragment");  // copied, not yet swapped in
    // The swap runs here too, beside the loop: the backend holds the loop's writer back only
    // while it replays the last writes onto the copy (backend.h, PreparedDefragment::Finish),
    // so the loop keeps appending, replying and applying meanwhile.
    Status s = swap->Finish();
    if (s.ok()) {
      log::Info("finished defragmenting the storage backend",
                {{"current-db-size-bytes-diff",
                  static_cast<int64_t>(backend_->SizeBytes()) - static_cast<int64_t>(before)},
                 {"current-db-size-bytes", backend_->SizeBytes()}});
    } else {
      log::Warn("failed to defragment the storage backend", {{"error", s.ToString()}});
    }
    (*shared)(s);
  });
  if (!posted.ok()) (*shared)(posted);
}

void Server::AfterBackendCommit(std::function<void(Status)> done) {
  // The driver commits its batch before it runs a task (Driver::RunInOrder).
  driver_->RunInOrder(std::move(done));
}

Result<std::unique_ptr<BackendSnapshot>> Server::OpenSnapshot() {
  // The driver commits applied entries to the backend in batches; a turn of its own makes it
  // commit everything applied so far, so the snapshot holds every write acknowledged before
  // it was asked for (etcd forces a commit of its batch the same way).
  std::promise<Status> committed;
  AfterBackendCommit([&committed](Status stopped) { committed.set_value(stopped); });
  RETURN_IF_ERROR(committed.get_future().get());
  if (maintenance_hook_) maintenance_hook_("snapshot");
  std::string path = config_.data_dir + "/member/" + kSnapshotTempPrefix +
                     std::to_string(next_snapshot_file_.fetch_add(1)) + ".tmp";
  RETURN_IF_ERROR(backend_->CopyTo(path));
  auto size = config_.fs->FileSize(path);
  if (!size.ok()) {
    (void)config_.fs->Remove(path);
    return size.status();
  }
  return std::make_unique<BackendSnapshot>(config_.fs, path, *size);
}

}  // namespace dolmen::server
