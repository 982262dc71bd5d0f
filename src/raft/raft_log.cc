#include "raft/raft_log.h"

#include <algorithm>
#include <utility>

#include "raft/index_math.h"

namespace dolmen::raft {

RaftLog::RaftLog(Storage* storage, uint64_t max_committed_bytes)
    : storage_(storage),
      unstable_(storage->LastIndex() + 1),
      committed_(storage->FirstIndex() - 1),
      applied_(storage->FirstIndex() - 1),
      max_committed_bytes_(max_committed_bytes) {}

Index RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const {
  auto t = TermAt(LastIndex());
  CHECK(t.ok()) << "term of the last index: " << t.status().ToString();
  return *t;
}

Result<Term> RaftLog::TermAt(Index i) const {
  // The valid range is [FirstIndex() - 1, LastIndex()]: the entry before the first one is known
  // through the snapshot.
  const Index dummy = FirstIndex() - 1;
  if (i < dummy) return Status(Code::kCompacted, "term of a compacted index");
  if (i > LastIndex()) return Status(Code::kOutOfRange, "term beyond the last index");
  if (auto t = unstable_.MaybeTerm(i)) return *t;
  auto t = storage_->TermAt(i);
  if (t.ok()) return t;
  CHECK(t.status().code() == Code::kCompacted || t.status().code() == Code::kUnavailable)
      << "storage TermAt(" << i << "): " << t.status().ToString();
  return t;
}

Term RaftLog::ZeroTermOnError(Index i) const {
  auto t = TermAt(i);
  return t.ok() ? *t : Term(0);
}

bool RaftLog::MatchTerm(Index i, Term t) const {
  auto term = TermAt(i);
  return term.ok() && *term == t;
}

bool RaftLog::IsUpToDate(Index last_index, Term last_term) const {
  const Term our_term = LastTerm();
  return last_term > our_term || (last_term == our_term && last_index >= LastIndex());
}

std::optional<Index> RaftLog::MaybeAppend(Index index, Term log_term, Index committed,
                                          const std::vector<Entry>& entries) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const Index last_new = index + entries.size();
  const Index conflict = FindConflict(entries);
  if (conflict.value() != 0) {
    // Replacing a committed entry would break state machine safety; the leader never asks it.
    CHECK_GT(conflict.value(), committed_.value()) << "conflict with a committed entry";
    const size_t from = Distance(index + 1, conflict);
    Append(std::vector<Entry>(entries.begin() + static_cast<std::ptrdiff_t>(from), entries.end()));
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

Index RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  CHECK_GT(entries.front().index.value(), committed_.value()) << "append over committed entries";
  unstable_.TruncateAndAppend(entries);
  return LastIndex();
}

Index RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return Index(0);
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  index = std::min(index, LastIndex());
  while (index.value() > 0) {
    auto t = TermAt(index);
    if (!t.ok()) return {index, Term(0)};  // compacted: cannot look further back
    if (*t <= term) return {index, *t};
    index = index - 1;
  }
  return {Index(0), Term(0)};
}

Result<std::vector<Entry>> RaftLog::Slice(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo >= hi) return std::vector<Entry>{};
  if (lo < FirstIndex()) return Status(Code::kCompacted, "slice starts in the compacted log");
  CHECK_LE(hi.value(), LastIndex().value() + 1) << "slice beyond the log";
  std::vector<Entry> out;
  const Index split = unstable_.offset();
  if (lo < split) {
    auto stored = storage_->Entries(lo, std::min(hi, split), max_bytes);
    if (!stored.ok()) {
      CHECK(stored.status().code() == Code::kCompacted)
          << "storage Entries: " << stored.status().ToString();
      return stored.status();
    }
    out = std::move(*stored);
    // Storage stopped early because of the byte bound: do not add unstable entries after a gap.
    if (out.size() < Distance(lo, std::min(hi, split))) return out;
  }
  if (hi > split) {
    auto more = unstable_.Slice(std::max(lo, split), hi);
    out.insert(out.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  }
  uint64_t bytes = 0;
  size_t keep = 0;
  for (; keep < out.size(); ++keep) {
    bytes += EntrySizeBytes(out[keep]);
    if (keep > 0 && bytes > max_bytes) break;
  }
  out.resize(keep);
  return out;
}

Result<std::vector<Entry>> RaftLog::EntriesFrom(Index i, uint64_t max_bytes) const {
  if (i > LastIndex()) return std::vector<Entry>{};
  return Slice(i, LastIndex() + 1, max_bytes);
}

bool RaftLog::HasNextCommittedEntries() const {
  if (unstable_.snapshot()) return false;  // the snapshot must be applied first
  return committed_ > applied_;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  if (!HasNextCommittedEntries()) return {};
  const Index lo = std::max(applied_ + 1, FirstIndex());
  auto entries = Slice(lo, committed_ + 1, max_committed_bytes_);
  CHECK(entries.ok()) << "committed entries unavailable: " << entries.status().ToString();
  return std::move(*entries);
}

Result<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_->GetSnapshot();
}

void RaftLog::CommitTo(Index i) {
  if (i <= committed_) return;
  CHECK_LE(i.value(), LastIndex().value()) << "commit beyond the last index";
  committed_ = i;
}

bool RaftLog::MaybeCommit(Index i, Term term, bool allow_previous_term) {
  if (i <= committed_) return false;
  if (!allow_previous_term && ZeroTermOnError(i) != term) return false;
  CommitTo(i);
  return true;
}

void RaftLog::AppliedTo(Index i) {
  if (i.value() == 0) return;
  CHECK_LE(i.value(), committed_.value()) << "applied beyond commit";
  CHECK_GE(i.value(), applied_.value()) << "applied moved backwards";
  applied_ = i;
}

void RaftLog::Restore(Snapshot s) {
  committed_ = s.metadata.index;
  unstable_.Restore(std::move(s));
}

}  // namespace dolmen::raft
