#include "watch/watcher_index.h"

#include <algorithm>

namespace dolmen::watch {

void WatcherIndex::Add(Watcher* w) {
  bool inserted =
      w->range.is_range ? ranges_.insert(w).second : keys_[w->range.key].insert(w).second;
  if (!inserted) return;
  ++size_;
  if (w->range.is_range) dirty_ = true;
}

void WatcherIndex::Remove(Watcher* w) {
  if (w->range.is_range) {
    if (ranges_.erase(w) == 0) return;
    dirty_ = true;
  } else {
    auto it = keys_.find(w->range.key);
    if (it == keys_.end() || it->second.erase(w) == 0) return;
    if (it->second.empty()) keys_.erase(it);
  }
  --size_;
}

void WatcherIndex::Match(std::string_view key, std::vector<Watcher*>* out) {
  if (auto it = keys_.find(std::string(key)); it != keys_.end()) {
    out->insert(out->end(), it->second.begin(), it->second.end());
  }
  if (ranges_.empty()) return;
  if (dirty_) Rebuild();
  Stab(0, sorted_.size(), key, out);
}

namespace {

// Unbounded (null) sorts after every key.
bool EndLess(const std::string* a, const std::string* b) {
  if (a == nullptr) return false;
  if (b == nullptr) return true;
  return *a < *b;
}

}  // namespace

void WatcherIndex::Rebuild() {
  sorted_.assign(ranges_.begin(), ranges_.end());
  std::sort(sorted_.begin(), sorted_.end(),
            [](const Watcher* a, const Watcher* b) { return a->range.key < b->range.key; });
  max_end_.assign(sorted_.size(), MaxEnd{});
  // Post-order over the implicit tree: each node's max end from its own and its children's.
  auto build = [this](auto& self, size_t lo, size_t hi) -> const std::string* {
    static const std::string kNothing;  // empty: sorts before every real end
    if (lo >= hi) return &kNothing;
    size_t mid = lo + (hi - lo) / 2;
    const KeyRange& r = sorted_[mid]->range;
    const std::string* best = r.unbounded ? nullptr : &r.end;
    const std::string* left = self(self, lo, mid);
    const std::string* right = self(self, mid + 1, hi);
    if (EndLess(best, left)) best = left;
    if (EndLess(best, right)) best = right;
    max_end_[mid].end = best;
    return best;
  };
  build(build, 0, sorted_.size());
  dirty_ = false;
}

void WatcherIndex::Stab(size_t lo, size_t hi, std::string_view key,
                        std::vector<Watcher*>* out) const {
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const std::string* max_end = max_end_[mid].end;
    if (max_end != nullptr && std::string_view(*max_end) <= key) return;  // all end too early
    Stab(lo, mid, key, out);
    Watcher* w = sorted_[mid];
    if (std::string_view(w->range.key) > key) return;  // this and everything right start later
    if (w->range.Contains(key)) out->push_back(w);
    lo = mid + 1;
  }
}

}  // namespace dolmen::watch
