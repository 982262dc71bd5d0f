#include "mvcc/key_index.h"

#include <algorithm>

#include "base/check.h"

namespace dolmen::mvcc {
namespace {

std::ostream& operator<<(std::ostream& os, RevisionPair r) {
  return os << "{" << r.main << "," << r.sub << "}";
}

}  // namespace

RevisionPair KeyIndex::Latest() const {
  CHECK(!gens_.empty());
  return gens_.back().revs.back();
}

void KeyIndex::Put(RevisionPair rev) {
  if (!gens_.empty()) CHECK_GT(rev, Latest()) << "revisions must grow";
  if (gens_.empty() || gens_.back().tombstoned) {
    gens_.emplace_back().created = Revision(rev.main);
  }
  Generation& g = gens_.back();
  g.revs.push_back(rev);
  ++g.version;
}

void KeyIndex::Tombstone(RevisionPair rev) {
  CHECK(LiveNow()) << "tombstone for a key that is not live at " << rev;
  CHECK_GT(rev, Latest()) << "revisions must grow";
  gens_.back().revs.push_back(rev);
  gens_.back().tombstoned = true;
}

void KeyIndex::RestorePut(RevisionPair rev, Revision created, int64_t version) {
  if (gens_.empty() || gens_.back().tombstoned) {
    gens_.emplace_back().created = created;
  }
  Generation& g = gens_.back();
  g.revs.push_back(rev);
  g.version = version;
}

bool KeyIndex::RestoreTombstone(RevisionPair rev) {
  if (!gens_.empty() && rev <= Latest()) return false;
  // A lone tombstone ends a generation whose puts were all compacted; it hides nothing and
  // compaction would have removed it, so it is simply ignored.
  if (!LiveNow()) return true;
  Tombstone(rev);
  return true;
}

std::optional<KeyIndex::Found> KeyIndex::Get(int64_t at) const {
  for (auto g = gens_.rbegin(); g != gens_.rend(); ++g) {
    if (g->revs.front().main > at) continue;  // born after `at`
    // Newest revision <= at in this generation.
    auto it = std::upper_bound(g->revs.begin(), g->revs.end(), RevisionPair{at, INT64_MAX});
    const size_t i = static_cast<size_t>(it - g->revs.begin()) - 1;
    if (g->tombstoned && i == g->revs.size() - 1) return std::nullopt;  // deleted by `at`
    const int64_t version = g->version - (g->puts() - 1 - static_cast<int64_t>(i));
    return Found{g->revs[i], g->created, version};
  }
  return std::nullopt;
}

std::pair<size_t, int64_t> KeyIndex::CompactionPoint(int64_t at) const {
  size_t gi = 0;
  // Generations whose delete is at or before `at` are entirely invisible from `at` on.
  while (gi < gens_.size() && gens_[gi].tombstoned && gens_[gi].revs.back().main <= at) ++gi;
  if (gi == gens_.size()) return {gi, -1};
  const auto& revs = gens_[gi].revs;
  auto it = std::upper_bound(revs.begin(), revs.end(), RevisionPair{at, INT64_MAX});
  return {gi, static_cast<int64_t>(it - revs.begin()) - 1};
}

void KeyIndex::Keep(int64_t at, std::set<RevisionPair>* keep) const {
  auto [gi, ri] = CompactionPoint(at);
  if (ri >= 0) keep->insert(gens_[gi].revs[static_cast<size_t>(ri)]);
}

bool KeyIndex::Compact(int64_t at, std::set<RevisionPair>* keep) {
  auto [gi, ri] = CompactionPoint(at);
  if (ri >= 0) {
    auto& revs = gens_[gi].revs;
    keep->insert(revs[static_cast<size_t>(ri)]);
    revs.erase(revs.begin(), revs.begin() + ri);
  }
  gens_.erase(gens_.begin(), gens_.begin() + static_cast<std::ptrdiff_t>(gi));
  return gens_.empty();
}

}  // namespace dolmen::mvcc
