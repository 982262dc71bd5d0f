#include "auth/key_permissions.h"

#include <algorithm>

namespace dolmen::auth {

KeyPermissions::Range KeyPermissions::ToRange(std::string_view key, std::string_view range_end) {
  Range r;
  r.begin = std::string(key);
  if (range_end.empty()) {
    // A single key: [key, key + "\0"), the smallest range that holds only it.
    r.end = r.begin;
    r.end.push_back('\0');
  } else if (range_end == std::string_view("\0", 1)) {
    r.unbounded = true;
  } else {
    r.end = std::string(range_end);
  }
  return r;
}

void KeyPermissions::Add(const authpb::Permission& permission) {
  Range r = ToRange(permission.key(), permission.range_end());
  switch (permission.permtype()) {
    case authpb::Permission::READ:
      read_.push_back(std::move(r));
      break;
    case authpb::Permission::WRITE:
      write_.push_back(std::move(r));
      break;
    case authpb::Permission::READWRITE:
      read_.push_back(r);
      write_.push_back(std::move(r));
      break;
    default:
      break;  // an unknown type grants nothing
  }
}

void KeyPermissions::Finish() {
  Merge(&read_);
  Merge(&write_);
}

void KeyPermissions::Merge(std::vector<Range>* ranges) {
  // An empty range ([a, b) with b <= a) grants nothing.
  std::erase_if(*ranges, [](const Range& r) { return !r.unbounded && r.end <= r.begin; });
  std::sort(ranges->begin(), ranges->end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  std::vector<Range> merged;
  for (Range& r : *ranges) {
    if (!merged.empty()) {
      Range& last = merged.back();
      // Overlapping or touching: one range.
      if (last.unbounded || r.begin <= last.end) {
        if (!last.unbounded && (r.unbounded || r.end > last.end)) {
          last.end = std::move(r.end);
          last.unbounded = r.unbounded;
        }
        continue;
      }
    }
    merged.push_back(std::move(r));
  }
  *ranges = std::move(merged);
}

bool KeyPermissions::Covers(const std::vector<Range>& merged, std::string_view key,
                            std::string_view range_end) {
  const Range want = ToRange(key, range_end);
  // The last merged range that starts at or before the wanted begin must hold all of it.
  auto it = std::upper_bound(merged.begin(), merged.end(), want.begin,
                             [](const std::string& k, const Range& r) { return k < r.begin; });
  if (it == merged.begin()) return false;
  const Range& r = *std::prev(it);
  if (r.unbounded) return true;
  if (want.unbounded) return false;
  // An empty request range ([a, b) with b <= a) asks for nothing within one that holds a.
  return want.begin < r.end && (want.end <= r.end);
}

}  // namespace dolmen::auth
