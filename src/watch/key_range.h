// The keys one watcher covers, with etcd's range_end rules for watch requests.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace dolmen::watch {

// A single key, [key, end), or every key >= key (end unbounded). Keys compare bytewise.
struct KeyRange {
  std::string key;
  std::string end;         // exclusive; meaningful only when is_range && !unbounded
  bool is_range = false;   // false: exactly `key`
  bool unbounded = false;  // is_range and no upper bound

  bool Contains(std::string_view k) const;
};

// etcd's WatchCreateRequest rules: an empty key means "\0" (the smallest key); an empty
// range_end watches one key; range_end "\0" watches every key >= key; otherwise [key, range_end)
// and key must sort before range_end, else kInvalidArgument with etcd's message
// "mvcc: watcher range is empty".
Result<KeyRange> MakeKeyRange(std::string_view key, std::string_view range_end);

}  // namespace dolmen::watch
