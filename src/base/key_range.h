// etcd's key ranges: the range_end that selects every key starting with a prefix (clientv3's
// GetPrefixRangeEnd, the server's "--prefix"), shared by the API's recipes and the v3
// discovery client.
#pragma once

#include <string>

namespace dolmen {

// The smallest key greater than every key with `prefix`: its last byte below 0xff incremented
// (trailing 0xff bytes dropped); "\0", which etcd reads as "every key", when there is none.
inline std::string PrefixRangeEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

}  // namespace dolmen
