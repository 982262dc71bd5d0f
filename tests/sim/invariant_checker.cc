#include "tests/sim/invariant_checker.h"

#include <sstream>

#include "raft/index_math.h"

namespace dolmen::raft::sim {

uint64_t HashEntry(const Entry& e) {
  // FNV-1a over the entry's identity and payload.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  };
  mix(e.term.value());
  mix(e.index.value());
  mix(static_cast<uint64_t>(e.type));
  for (unsigned char c : e.data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void InvariantChecker::Fail(std::string what) {
  if (failure_.empty()) failure_ = std::move(what);
}

void InvariantChecker::OnLeader(MemberId id, Term term, const RaftLog& log) {
  auto [it, inserted] = leaders_.emplace(term, id);
  if (!inserted) {
    if (it->second != id) {
      std::ostringstream os;
      os << "election safety: nodes " << it->second << " and " << id << " both lead term " << term;
      Fail(os.str());
    }
    return;  // completeness was checked when it became leader
  }
  // Leader completeness, checked once per term when the leader first shows up.
  const Index first = log.FirstIndex();
  for (const auto& [index, cterm] : committed_) {
    if (Index(index) < first) continue;  // covered by its snapshot of committed state
    auto t = log.TermAt(Index(index));
    if (!t.ok() || *t != cterm) {
      std::ostringstream os;
      os << "leader completeness: node " << id << " leads term " << term
         << " without committed entry " << index << " (term " << cterm << "); it has term "
         << (t.ok() ? t->value() : 0) << " there";
      Fail(os.str());
      return;
    }
  }
}

void InvariantChecker::OnBeforePersistEntries(MemberId id, const std::vector<Entry>& entries,
                                              const MemoryStorage& storage) {
  for (const Entry& e : entries) {
    auto committed = committed_.find(e.index.value());
    if (committed == committed_.end() || committed->second == e.term) continue;
    auto held = storage.TermAt(e.index);
    if (held.ok() && *held == committed->second) {
      std::ostringstream os;
      os << "committed entry lost: node " << id << " replaces committed entry " << e.index
         << " (term " << committed->second << ") with term " << e.term;
      Fail(os.str());
      return;
    }
  }
}

void InvariantChecker::OnPersistEntries(MemberId id, const std::vector<Entry>& entries,
                                        const MemoryStorage& storage) {
  for (const Entry& e : entries) {
    if (e.index < storage.FirstIndex()) continue;
    auto prev = storage.TermAt(e.index - 1);
    const uint64_t prev_term = prev.ok() ? prev->value() : UINT64_MAX;
    const auto key = std::make_pair(e.index.value(), e.term.value());
    const auto value = std::make_pair(HashEntry(e), prev_term);
    auto [it, inserted] = entries_.emplace(key, value);
    if (inserted) continue;
    const bool prev_known = it->second.second != UINT64_MAX && prev_term != UINT64_MAX;
    if (it->second.first != value.first || (prev_known && it->second.second != prev_term)) {
      std::ostringstream os;
      os << "log matching: node " << id << " holds a different entry (or predecessor) at index "
         << e.index << " term " << e.term;
      Fail(os.str());
      return;
    }
    if (it->second.second == UINT64_MAX) it->second.second = prev_term;
  }
}

void InvariantChecker::OnCommit(MemberId id, Index commit, const MemoryStorage& storage) {
  Index& seen = commit_seen_[id];
  if (commit <= seen) return;
  for (Index i = std::max(seen + 1, storage.FirstIndex()); i <= commit; i = i + 1) {
    auto t = storage.TermAt(i);
    if (!t.ok()) {
      Fail("node persisted a commit index beyond its persisted log");
      return;
    }
    auto [it, inserted] = committed_.emplace(i.value(), *t);
    if (!inserted && it->second != *t) {
      std::ostringstream os;
      os << "state machine safety: index " << i << " committed with term " << it->second
         << " and, on node " << id << ", with term " << *t;
      Fail(os.str());
      return;
    }
  }
  seen = commit;
  max_committed_ = std::max(max_committed_, commit);
}

void InvariantChecker::OnApply(MemberId id, Index index, uint64_t state) {
  auto [it, inserted] = applied_.emplace(index.value(), state);
  if (!inserted && it->second != state) {
    std::ostringstream os;
    os << "state machine safety: node " << id << " applied a different history up to index "
       << index;
    Fail(os.str());
  }
}

void InvariantChecker::OnReadState(MemberId id, Index committed_then, Index read_index) {
  if (read_index < committed_then) {
    std::ostringstream os;
    os << "linearizable read: node " << id << " got read index " << read_index << " though index "
       << committed_then << " was committed before the read began";
    Fail(os.str());
  }
}

}  // namespace dolmen::raft::sim
