#include "server/snapshot_images.h"

#include <cstdio>

#include "log/log.h"

namespace dolmen::server {
namespace {

constexpr std::string_view kSuffix = ".snap.db";
constexpr std::string_view kOutgoingPrefix = "send-";

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string SnapshotImages::PathFor(Index index) const {
  return io::JoinPath(dir_, Hex16(index.value()) + std::string(kSuffix));
}

std::string SnapshotImages::OutgoingPath(MemberId to) const {
  return io::JoinPath(dir_, std::string(kOutgoingPrefix) + Hex16(to.value()) + ".db");
}

Status SnapshotImages::Keep(const std::string& received, Index index) {
  RETURN_IF_ERROR(fs_->CreateDirs(dir_));
  RETURN_IF_ERROR(fs_->Rename(received, PathFor(index)));
  return fs_->SyncDir(dir_);
}

std::optional<uint64_t> SnapshotImages::ParseIndex(const std::string& name) {
  if (name.size() != 16 + kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 16; ++i) {
    char c = name[i];
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  return v;
}

void SnapshotImages::RemoveUpTo(Index index, bool include_outgoing) {
  auto names = fs_->ListDir(dir_);
  if (!names.ok()) return;  // no directory yet: nothing to remove
  for (const std::string& name : *names) {
    std::optional<uint64_t> at = ParseIndex(name);
    bool stale = (at && *at <= index.value()) ||
                 (include_outgoing && name.starts_with(kOutgoingPrefix) && name.ends_with(".db"));
    if (!stale) continue;
    Status s = fs_->Remove(io::JoinPath(dir_, name));
    if (!s.ok()) {
      log::Warn("cannot remove a stale snapshot image", {{"name", name}, {"error", s.ToString()}});
    }
  }
}

}  // namespace dolmen::server
