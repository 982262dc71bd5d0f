// Finds the watchers whose keys contain a given key: a hash map for single-key watchers and a
// static interval tree (rebuilt lazily after changes) for ranges, so matching one event costs
// O(1 + log R + matches) with R range watchers. Not thread-safe: the hub guards it.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "watch/watcher.h"

namespace dolmen::watch {

class WatcherIndex {
 public:
  void Add(Watcher* w);
  void Remove(Watcher* w);  // no-op if absent
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Appends every watcher containing `key` to `out` (each once).
  void Match(std::string_view key, std::vector<Watcher*>* out);

  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const auto& [key, set] : keys_) {
      for (Watcher* w : set) fn(w);
    }
    for (Watcher* w : ranges_) fn(w);
  }

 private:
  void Rebuild();
  void Stab(size_t lo, size_t hi, std::string_view key, std::vector<Watcher*>* out) const;

  std::unordered_map<std::string, std::unordered_set<Watcher*>> keys_;
  std::unordered_set<Watcher*> ranges_;
  size_t size_ = 0;

  // The interval tree: range watchers sorted by start key; the node for [lo, hi) is at
  // mid = (lo + hi) / 2 and max_end_[mid] is the largest end in [lo, hi) (or unbounded).
  struct MaxEnd {
    const std::string* end = nullptr;  // null = unbounded
  };
  std::vector<Watcher*> sorted_;
  std::vector<MaxEnd> max_end_;
  bool dirty_ = false;
};

}  // namespace dolmen::watch
