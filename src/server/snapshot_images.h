// The files of snapshot images (backend copies) in <data-dir>/member/snap.
//
// A follower that receives a snapshot from the leader keeps the image as <index>.snap.db (index
// in 16 hex digits, as etcd names its snapshot databases) until it is installed in the backend:
// the log records the snapshot before the backend holds it, so after a crash in between the
// member finds the image here and installs it at start-up. A leader writes the image it sends
// a follower to send-<member id>.db and deletes it once sent.
#pragma once

#include <optional>
#include <string>

#include "base/ids.h"
#include "base/status.h"
#include "io/file_system.h"

namespace dolmen::server {

class SnapshotImages {
 public:
  SnapshotImages(io::FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  std::string PathFor(Index index) const;
  std::string OutgoingPath(MemberId to) const;

  // Moves a received image into place as the image of snapshot `index`, durably.
  Status Keep(const std::string& received, Index index);
  bool Has(Index index) const { return fs_->Exists(PathFor(index)); }
  // Deletes the images of snapshots at or below `index` (installed or superseded) and every
  // outgoing image (a leftover of a send a crash interrupted when `include_outgoing`).
  void RemoveUpTo(Index index, bool include_outgoing);

 private:
  // The index an image file name stands for, if it is one.
  static std::optional<uint64_t> ParseIndex(const std::string& name);

  io::FileSystem* fs_;
  std::string dir_;
};

}  // namespace dolmen::server
