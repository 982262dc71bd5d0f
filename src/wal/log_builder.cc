#include "wal/log_builder.h"

#include <algorithm>

#include "wal/payload.h"

namespace dolmen::wal {

std::string LogBuilder::AddEntry(raft::Entry entry, std::string_view location) {
  uint64_t index = entry.index.value();
  if (index == 0) return "entry with index 0";
  if (snapshot_ && index <= snapshot_->index.value()) {
    return "";  // already covered by the snapshot: stale
  }
  if (entries_.empty()) {
    // The log may start anywhere here: earlier segments may have been released. Finish checks
    // that the final log continues the final snapshot.
    start_location_ = location;
    entries_.push_back(std::move(entry));
    return "";
  }
  uint64_t first = entries_.front().index.value();
  uint64_t last = entries_.back().index.value();
  if (index > last + 1) {
    return "entry " + std::to_string(index) + " leaves a gap after index " + std::to_string(last);
  }
  // Truncation: everything from `index` on is replaced.
  if (index <= first) start_location_ = location;
  entries_.resize(index > first ? index - first : 0);
  entries_.push_back(std::move(entry));
  return "";
}

Status LogBuilder::Finish(bool head_released) const {
  if (head_released || !snapshot_ || entries_.empty()) return OkStatus();
  uint64_t first = entries_.front().index.value();
  if (first != snapshot_->index.value() + 1) {
    return Corruption(start_location_ + ": entry " + std::to_string(first) +
                      " leaves a gap after snapshot index " +
                      std::to_string(snapshot_->index.value()));
  }
  return OkStatus();
}

void LogBuilder::SetSnapshot(const raft::SnapshotMetadata& meta) {
  snapshot_ = meta;
  auto covered = std::find_if(entries_.begin(), entries_.end(),
                              [&](const raft::Entry& e) { return e.index > meta.index; });
  entries_.erase(entries_.begin(), covered);
}

Index LogBuilder::LastIndex() const {
  uint64_t last = entries_.empty() ? 0 : entries_.back().index.value();
  if (snapshot_) last = std::max(last, snapshot_->index.value());
  return Index(last);
}

namespace {

std::string Location(const std::string& path, uint64_t offset) {
  return "wal segment " + path + " offset " + std::to_string(offset);
}

Status RecordCorruption(const std::string& path, uint64_t offset, const std::string& what) {
  return Corruption(Location(path, offset) + ": " + what);
}

}  // namespace

Status ApplyRecord(const RawRecord& record, const std::string& path, LogBuilder* builder,
                   std::optional<std::string>* metadata) {
  switch (record.type) {
    case RecordType::kMetadata:
      if (!metadata->has_value()) {
        *metadata = std::string(record.payload);
      } else if (**metadata != record.payload) {
        return RecordCorruption(path, record.offset, "metadata differs from earlier segments'");
      }
      return OkStatus();
    case RecordType::kEntry: {
      raft::Entry entry;
      if (!DecodeEntry(record.payload, &entry)) {
        return RecordCorruption(path, record.offset, "malformed entry record");
      }
      std::string problem = builder->AddEntry(std::move(entry), Location(path, record.offset));
      if (!problem.empty()) return RecordCorruption(path, record.offset, problem);
      return OkStatus();
    }
    case RecordType::kHardState: {
      raft::HardState hs;
      if (!DecodeHardState(record.payload, &hs)) {
        return RecordCorruption(path, record.offset, "malformed hard state record");
      }
      builder->SetHardState(hs);
      return OkStatus();
    }
    case RecordType::kSnapshot: {
      raft::SnapshotMetadata meta;
      if (!DecodeSnapshot(record.payload, &meta)) {
        return RecordCorruption(path, record.offset, "malformed snapshot record");
      }
      builder->SetSnapshot(meta);
      return OkStatus();
    }
  }
  return RecordCorruption(path, record.offset, "unknown record type");
}

}  // namespace dolmen::wal
