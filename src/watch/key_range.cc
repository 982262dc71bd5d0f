#include "watch/key_range.h"

namespace dolmen::watch {

bool KeyRange::Contains(std::string_view k) const {
  if (!is_range) return k == key;
  if (k < std::string_view(key)) return false;
  return unbounded || k < std::string_view(end);
}

Result<KeyRange> MakeKeyRange(std::string_view key, std::string_view range_end) {
  KeyRange r;
  r.key = key.empty() ? std::string(1, '\0') : std::string(key);
  if (range_end.empty()) return r;
  r.is_range = true;
  if (range_end == std::string_view("\0", 1)) {
    r.unbounded = true;
    return r;
  }
  r.end = std::string(range_end);
  // etcd compares after replacing an empty key by "\0".
  if (std::string_view(r.key) >= std::string_view(r.end)) {
    return Status(Code::kInvalidArgument, "mvcc: watcher range is empty");
  }
  return r;
}

}  // namespace dolmen::watch
