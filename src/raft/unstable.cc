#include "raft/unstable.h"

#include <utility>

#include "raft/index_math.h"

namespace dolmen::raft {

std::optional<Index> Unstable::MaybeFirstIndex() const {
  if (snapshot_) return snapshot_->metadata.index + 1;
  return std::nullopt;
}

std::optional<Index> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + (entries_.size() - 1);
  if (snapshot_) return snapshot_->metadata.index;
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeTerm(Index i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata.index == i) return snapshot_->metadata.term;
    return std::nullopt;
  }
  auto last = MaybeLastIndex();
  if (!last || i > *last) return std::nullopt;
  return entries_[Distance(offset_, i)].term;
}

void Unstable::StableTo(Index i, Term t) {
  auto term = MaybeTerm(i);
  if (!term || *term != t || i < offset_) return;
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(Distance(offset_, i) + 1));
  offset_ = i + 1;
}

void Unstable::StableSnapshotTo(Index i) {
  if (snapshot_ && snapshot_->metadata.index == i) snapshot_.reset();
}

void Unstable::Restore(Snapshot s) {
  offset_ = s.metadata.index + 1;
  entries_.clear();
  snapshot_ = std::move(s);
}

void Unstable::TruncateAndAppend(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const Index first = entries.front().index;
  if (first == offset_ + entries_.size()) {
    // Directly after the unstable entries.
  } else if (first <= offset_) {
    // Replaces every unstable entry; the new ones start at or before the old offset.
    offset_ = first;
    entries_.clear();
  } else {
    entries_.resize(Distance(offset_, first));
  }
  entries_.insert(entries_.end(), entries.begin(), entries.end());
}

std::vector<Entry> Unstable::Slice(Index lo, Index hi) const {
  CHECK_LE(lo.value(), hi.value());
  CHECK_GE(lo.value(), offset_.value()) << "unstable slice below offset";
  CHECK_LE(hi.value(), offset_.value() + entries_.size()) << "unstable slice beyond end";
  return std::vector<Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(Distance(offset_, lo)),
                            entries_.begin() + static_cast<std::ptrdiff_t>(Distance(offset_, hi)));
}

}  // namespace dolmen::raft
