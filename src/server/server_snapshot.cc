// Server: snapshots from the leader, installed into the store, and images sent to followers.
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

Status Server::RestoreFromImage(Index index) {
  const std::string path = images_->PathFor(index);
  if (!config_.open_backend_image) {
    return Unimplemented("this member cannot open snapshot images");
  }
  if (!images_->Has(index)) {
    return Corruption("the write-ahead log records a snapshot at index " +
                      std::to_string(index.value()) + " but its image " + path +
                      " is missing; remove this member and add it back with an empty data dir");
  }
  auto image = config_.open_backend_image(path);
  if (!image.ok()) {
    return Status(image.status().code(),
                  "snapshot image " + path + ": " + image.status().message());
  }
  {
    ASSIGN_OR_RETURN(auto txn, (*image)->BeginRead());
    ASSIGN_OR_RETURN(Index at, mvcc::Store::ImageConsistentIndex(*txn));
    if (at < index) {
      return Corruption("snapshot image " + path + " holds index " + std::to_string(at.value()) +
                        ", older than its snapshot at " + std::to_string(index.value()));
    }
    Status restored = store_->Restore(*txn);
    if (!restored.ok()) {
      return Status(restored.code(), "snapshot image " + path + ": " + restored.message());
    }
  }
  return store_->Sync();
}

Status Server::InstallSnapshot(const raft::SnapshotMetadata& meta) {
  RETURN_IF_ERROR(RestoreFromImage(meta.index));
  RETURN_IF_ERROR(ReloadLeases());
  RETURN_IF_ERROR(auth_->Load(backend_.get()));  // the leader's users, roles and auth flag
  RETURN_IF_ERROR(membership_->Load(backend_.get()));
  if (alarms_) RETURN_IF_ERROR(alarms_->Load(backend_.get()));  // the leader's alarms now
  images_->RemoveUpTo(meta.index, /*include_outgoing=*/false);
  // etcd: "applied snapshot" / "restored mvcc store".
  log::Info("installed the leader's snapshot", {{"snapshot-index", meta.index.value()},
                                                {"revision", store_->CurrentRevision().value()}});
  return OkStatus();
}

Result<std::string> Server::WriteSnapshotImage(MemberId to) {
  std::string path = images_->OutgoingPath(to);
  RETURN_IF_ERROR(config_.fs->CreateDirs(images_->dir()));
  if (config_.fs->Exists(path)) RETURN_IF_ERROR(config_.fs->Remove(path));
  RETURN_IF_ERROR(backend_->CopyTo(path));
  return path;
}

Status Server::ReceiveSnapshot(raft::Message message, const std::string& path) {
  auto refuse = [&](Status why) {
    (void)config_.fs->Remove(path);
    return why;
  };
  if (!message.snapshot || message.snapshot->IsEmpty()) {
    return refuse(InvalidArgument("a snapshot stream without a snapshot"));
  }
  const Index index = message.snapshot->metadata.index;
  if (!config_.open_backend_image) {
    return refuse(Unimplemented("this member cannot open snapshot images"));
  }
  {
    // Check the image before Raft commits to it: it must open and cover the snapshot.
    auto image = config_.open_backend_image(path);
    if (!image.ok()) return refuse(image.status());
    auto txn = (*image)->BeginRead();
    if (!txn.ok()) return refuse(txn.status());
    auto at = mvcc::Store::ImageConsistentIndex(**txn);
    if (!at.ok()) return refuse(at.status());
    if (*at < index) {
      return refuse(Corruption("snapshot image holds index " + std::to_string(at->value()) +
                               ", older than its snapshot at " + std::to_string(index.value())));
    }
  }
  RETURN_IF_ERROR(images_->Keep(path, index));
  driver_->Step({std::move(message)});
  return OkStatus();
}

}  // namespace dolmen::server
