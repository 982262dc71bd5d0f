#include "raft/memory_storage.h"

#include <string>
#include <utility>

#include "raft/index_math.h"

namespace dolmen::raft {

MemoryStorage::MemoryStorage() : entries_(1) {}

MemoryStorage::MemoryStorage(ConfState conf_state) : entries_(1) {
  snapshot_.metadata.index = Index(1);
  snapshot_.metadata.term = Term(1);
  snapshot_.metadata.conf_state = std::move(conf_state);
  entries_[0].index = Index(1);
  entries_[0].term = Term(1);
}

Result<InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_, snapshot_.metadata.conf_state};
}

Index MemoryStorage::FirstIndex() const { return entries_[0].index + 1; }

Index MemoryStorage::LastIndex() const { return entries_[0].index + (entries_.size() - 1); }

Result<std::vector<Entry>> MemoryStorage::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  const Index offset = entries_[0].index;
  if (lo <= offset) return Status(Code::kCompacted, "requested entries are compacted");
  CHECK_LE(hi.value(), LastIndex().value() + 1) << "entries beyond the last index";
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; i = i + 1) {
    const Entry& e = entries_[Distance(offset, i)];
    bytes += EntrySizeBytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Result<Term> MemoryStorage::TermAt(Index i) const {
  const Index offset = entries_[0].index;
  if (i < offset) return Status(Code::kCompacted, "term of a compacted index");
  if (i > LastIndex()) return Status(Code::kOutOfRange, "term of an index beyond the log");
  return entries_[Distance(offset, i)].term;
}

Result<Snapshot> MemoryStorage::GetSnapshot() const { return snapshot_; }

Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return OkStatus();
  const Index first = FirstIndex();
  const Index last_new = entries.back().index;
  if (last_new < first) return OkStatus();  // all already compacted
  size_t skip = 0;
  if (entries.front().index < first) skip = Distance(entries.front().index, first);
  const Index start = entries[skip].index;
  if (start > LastIndex() + 1) {
    return Status(Code::kFailedPrecondition,
                  "append leaves a gap after index " + std::to_string(LastIndex().value()));
  }
  entries_.resize(Distance(entries_[0].index, start));
  for (size_t k = skip; k < entries.size(); ++k) {
    CHECK_EQ(entries[k].index.value(), start.value() + (k - skip)) << "non-contiguous append";
    entries_.push_back(entries[k]);
  }
  return OkStatus();
}

Status MemoryStorage::ApplySnapshot(Snapshot snapshot) {
  if (snapshot.metadata.index < snapshot_.metadata.index) {
    return Status(Code::kFailedPrecondition, "snapshot is older than the one held");
  }
  entries_.assign(1,
                  Entry{snapshot.metadata.term, snapshot.metadata.index, EntryType::kNormal, ""});
  snapshot_ = std::move(snapshot);
  return OkStatus();
}

Result<Snapshot> MemoryStorage::CreateSnapshot(Index i, const ConfState& conf_state,
                                               std::string data) {
  if (i <= snapshot_.metadata.index) {
    return Status(Code::kFailedPrecondition, "snapshot index is not newer than the one held");
  }
  CHECK_LE(i.value(), LastIndex().value()) << "snapshot beyond the last index";
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = entries_[Distance(entries_[0].index, i)].term;
  snapshot_.metadata.conf_state = conf_state;
  snapshot_.data = std::move(data);
  return snapshot_;
}

Status MemoryStorage::Compact(Index compact_index) {
  const Index offset = entries_[0].index;
  if (compact_index <= offset) return Status(Code::kCompacted, "already compacted");
  CHECK_LE(compact_index.value(), LastIndex().value()) << "compacting beyond the last index";
  const size_t n = Distance(offset, compact_index);
  Entry placeholder{entries_[n].term, entries_[n].index, EntryType::kNormal, ""};
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
  entries_[0] = std::move(placeholder);
  return OkStatus();
}

}  // namespace dolmen::raft
